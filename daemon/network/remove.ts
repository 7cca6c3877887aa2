// docker network rm.
import { BerthError } from '../errors/errors';
import type { NetworkRow } from './store';
import { deleteBridge } from './drivers/bridge/bridge';
import { crashPoint } from '../lib/crash';
import { PREDEFINED, type NetworkService } from './service';
import { v6WarningKey } from './addresses';
import { embeddedServers } from './names';

export function remove(svc: NetworkService, ref: string): Promise<void> {
  return svc.admin(async () => {
    const n = svc.lookup(ref);
    await svc.locks.with([{ key: `net:${n.id}`, exclusive: true }], () => removeLocked(svc, n));
  });
}

export async function removeLocked(svc: NetworkService, n: NetworkRow): Promise<void> {
  if (PREDEFINED.includes(n.name)) throw new BerthError('forbidden', `${n.name} is a pre-defined network and cannot be removed`);
  // A container still starting has its veth (hostIf) before it counts as running.
  const active = svc.endpointsOf(n.id).filter((e) => e.hostIf || svc.d.containers.isRunningId(e.containerId));
  if (active.length) {
    throw new BerthError('forbidden', `error while removing network: network ${n.name} id ${n.id} has active endpoints`);
  }
  for (const gw of embeddedServers(n)) svc.dns.close(gw);
  svc.bridgesUp.delete(n.id);
  // The bridge and the rules go side by side (the kernel takes tens of ms for each); the row goes after.
  svc.fwExclude.add(n.id);
  try {
    const [br, fw] = await Promise.allSettled([deleteBridge(n.bridge), svc.applyFirewall()]);
    if (br.status === 'rejected') {
      svc.fwExclude.delete(n.id);
      await svc.applyFirewall().catch(() => {});
      throw br.reason;
    }
    crashPoint('network-rm.after-bridge');
    svc.store.deleteNetwork(n.id);
    svc.overlapWarnings.delete(n.id);
    svc.overlapWarnings.delete(v6WarningKey(n.id));
    svc.networkGone(n.id);
    if (fw.status === 'rejected') throw fw.reason;
  } finally {
    svc.fwExclude.delete(n.id);
  }
  svc.d.events.emit('network', 'destroy', n.id, { name: n.name, type: n.driver });
}
