// This berthd's nftables table and iptables chains, changed one job at a time.
import type { NetworkRow } from './store';
import { applyTable, renderNetworkAdd, renderTable, type FwNetwork } from './firewall/nft';
import { backends as iptablesBackends, chainNames, removeChains, syncChains } from './firewall/iptables';
import { ICC_OPT, type NetworkService } from './service';

/** Berth's chains in the host's iptables filter table (firewall/iptables.ts) list exactly the bridges of
 *  its networks; removed when there is none. Checked at every network change, so a firewall that came
 *  after berthd (Docker installed meanwhile) is caught up with at the next one. */
export async function syncHostFirewall(svc: NetworkService): Promise<void> {
  if (!svc.firewallOn) return;
  const chains = chainNames(svc.d.config.bridge);
  const bridges = [...svc.nets.values()].filter((n) => n.driver === 'bridge' && !svc.fwExclude.has(n.id))
    .map((n) => ({ bridge: n.bridge, dns: n.name !== 'bridge' ? n.gateway : undefined, dns6: n.name !== 'bridge' && n.ipv6 ? n.gateway6 : undefined }));
  const key = JSON.stringify(bridges);
  if (svc.hostFw?.key === key) return;
  svc.hostFw = undefined;
  const found = await iptablesBackends(chains);
  for (const be of found) {
    if (bridges.length && be.drops) {
      await syncChains(be, chains, bridges);
      svc.d.log.debug({ backend: be.name, family: be.family, bridges: bridges.length }, 'iptables chains synced');
    } else if (be.ours) {
      await removeChains(be, chains);
    }
  }
  svc.hostFw = { backends: found, key };
}

export function fwNetwork(svc: NetworkService, n: NetworkRow): FwNetwork {
  return {
    bridge: n.bridge, subnet: n.subnet, subnet6: n.ipv6 ? n.subnet6 : '', internal: n.internal, icc: n.options[ICC_OPT] !== 'false',
    masquerade: n.options['com.docker.network.bridge.enable_ip_masquerade'] !== 'false',
    ports: svc.endpointsOf(n.id).filter((e) => e.hostIf).map((e) => e.hostIf),
    dns: n.name !== 'bridge' ? n.gateway : undefined,
    dns6: n.name !== 'bridge' && n.ipv6 ? n.gateway6 : undefined,
  };
}

/** The table regenerated whole from the networks and ports (one `nft -f`, queued behind earlier changes). */
export function applyFirewall(svc: NetworkService): Promise<void> {
  return fwJob(svc, () => fullFirewall(svc));
}

export function fwJob(svc: NetworkService, fn: () => Promise<void>): Promise<void> {
  if (!svc.firewallOn) return Promise.resolve();
  const next = svc.fwQueue.then(fn);
  svc.fwQueue = next.catch(() => undefined);
  return next;
}

export async function fullFirewall(svc: NetworkService): Promise<void> {
  const nets = [...svc.nets.values()].filter((n) => n.driver === 'bridge' && !svc.fwExclude.has(n.id));
  const rules = svc.ports.rules();
  svc.fwState = undefined;
  await applyTable(renderTable(svc.table, nets.map((n) => fwNetwork(svc, n)), rules));
  svc.fwState = { nets: new Set(nets.map((n) => n.id)), ports: rules.length > 0 };
  await syncHostFirewall(svc);
}

/** A new network's rules: only added to the table when it holds exactly the other networks' rules and no
 *  port rules (whose masquerade rules list every subnet), else the table is regenerated. */
export function addNetworkFirewall(svc: NetworkService, n: NetworkRow): Promise<void> {
  return fwJob(svc, async () => {
    const others = [...svc.nets.values()].filter((o) => o.driver === 'bridge' && o.id !== n.id && !svc.fwExclude.has(o.id));
    const st = svc.fwState;
    // renderNetworkAdd knows the IPv4 table only: with IPv6 networks the tables are rewritten whole.
    if (!st || st.ports || svc.ports.rules().length || st.nets.has(n.id) || n.ipv6 || others.some((o) => o.ipv6) || st.nets.size !== others.length || others.some((o) => !st.nets.has(o.id))) {
      return fullFirewall(svc);
    }
    svc.fwState = undefined;
    try {
      await applyTable(renderNetworkAdd(svc.table, fwNetwork(svc, n), others.map((o) => fwNetwork(svc, o))));
    } catch (e) {
      svc.d.log.warn({ err: e, network: n.name }, 'adding the rules of a network failed; rewriting the table');
      return fullFirewall(svc);
    }
    st.nets.add(n.id);
    svc.fwState = st;
    await syncHostFirewall(svc);
  });
}

/** Whether the container is on a network whose rules name its veths (icc=false). */
export function needsPortRules(svc: NetworkService, containerId: string): boolean {
  return svc.endpointsOfContainer(containerId).some((e) => svc.nets.get(e.networkId)?.options[ICC_OPT] === 'false');
}
