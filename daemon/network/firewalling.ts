// This berthd's nftables table and iptables chains, changed one job at a time.
import type { NetworkRow } from './store';
import { applyTable, portElements, renderElements, renderNetworkAdd, renderTable, type ElementChange, type FwNetwork, type FwPort, type PortElements } from './firewall/nft';
import { dnatCarried, type Binding } from './ports/ports';
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

/** What the kernel's table holds, as far as the incremental changes need to know: the networks whose rules
 *  it has; each container's port bindings (by binding key) and icc=false veths (bridge, veth) in the maps
 *  and sets; and how many bindings share each `dst` element. */
export interface FwState {
  nets: Set<string>;
  ports: Map<string, Map<string, PortElements>>;
  dst: Map<string, number>;
  icc: Map<string, Array<[string, string]>>;
  /** Which container's binding holds each binding key (proto/host address/port) in the maps. */
  owner: Map<string, string>;
}

const bindingKey = (b: FwPort) => `${b.proto}/${b.hostIp}/${b.hostPort}`;
const dstKey = (e: PortElements) => `${e.family} ${e.dst}`;

/** The bindings of the container the DNAT maps carry, and its veths on icc=false networks. */
function wanted(svc: NetworkService, containerId: string): { ports: Map<string, PortElements>; icc: Array<[string, string]> } {
  const ports = new Map<string, PortElements>();
  for (const b of svc.ports.ofContainer(containerId)) if (dnatCarried(b)) ports.set(bindingKey(b), portElements(b));
  const icc: Array<[string, string]> = [];
  for (const e of svc.endpointsOfContainer(containerId)) {
    const n = svc.nets.get(e.networkId);
    if (e.hostIf && n && n.driver === 'bridge' && n.options[ICC_OPT] === 'false' && !svc.fwExclude.has(n.id)) icc.push([n.bridge, e.hostIf]);
  }
  return { ports, icc };
}

export async function fullFirewall(svc: NetworkService): Promise<void> {
  const nets = [...svc.nets.values()].filter((n) => n.driver === 'bridge' && !svc.fwExclude.has(n.id));
  const bindings = svc.ports.rules() as Binding[];
  svc.fwState = undefined;
  await applyTable(renderTable(svc.table, nets.map((n) => fwNetwork(svc, n)), bindings));
  const st: FwState = { nets: new Set(nets.map((n) => n.id)), ports: new Map(), dst: new Map(), icc: new Map(), owner: new Map() };
  for (const b of bindings) {
    const el = portElements(b);
    st.owner.set(bindingKey(b), b.containerId);
    (st.ports.get(b.containerId) ?? st.ports.set(b.containerId, new Map()).get(b.containerId)!).set(bindingKey(b), el);
    st.dst.set(dstKey(el), (st.dst.get(dstKey(el)) ?? 0) + 1);
  }
  for (const n of nets) {
    if (n.options[ICC_OPT] !== 'false') continue;
    for (const e of svc.endpointsOf(n.id)) {
      if (e.hostIf) (st.icc.get(e.containerId) ?? st.icc.set(e.containerId, []).get(e.containerId)!).push([n.bridge, e.hostIf]);
    }
  }
  svc.fwState = st;
  await syncHostFirewall(svc);
}

/** Brings the table's elements for a container (its published ports, its veths on icc=false networks) in
 *  step with its rows: after its ports are mapped at start, after they are unmapped at exit, at a connect
 *  or disconnect on an icc=false network. Requests that come while a batch waits its turn join it, so
 *  concurrent starts share one `nft` run. Only the containers' own elements change; a change the kernel
 *  refuses (the table not as known) rewrites the table whole. */
export function syncContainer(svc: NetworkService, containerId: string): Promise<void> {
  if (!svc.firewallOn) return Promise.resolve();
  svc.fwDirty.add(containerId);
  if (!svc.fwBatch) {
    svc.fwBatch = fwJob(svc, async () => {
      svc.fwBatch = undefined;
      const ids = [...svc.fwDirty];
      svc.fwDirty.clear();
      await syncElements(svc, ids);
    });
  }
  return svc.fwBatch;
}

async function syncElements(svc: NetworkService, ids: string[]): Promise<void> {
  const st = svc.fwState;
  if (!st) return fullFirewall(svc);
  const ch: ElementChange = { addPorts: [], delPorts: [], addDst: [], delDst: [], addIcc: [], delIcc: [] };
  const count = (e: PortElements, by: number) => {
    const k = dstKey(e);
    const n = (st.dst.get(k) ?? 0) + by;
    if (n > 0) st.dst.set(k, n); else st.dst.delete(k);
    if (by > 0 && n === 1) ch.addDst.push([e.family, e.dst]);
    if (by < 0 && n === 0) ch.delDst.push([e.family, e.dst]);
  };
  for (const id of ids) {
    const want = wanted(svc, id);
    const have = st.ports.get(id) ?? new Map<string, PortElements>();
    for (const [k, e] of have) {
      const w = want.ports.get(k);
      if (w && w.value === e.value && w.map === e.map && w.family === e.family) continue;
      ch.delPorts.push(e);
      count(e, -1);
      have.delete(k);
      if (st.owner.get(k) === id) st.owner.delete(k);
    }
    for (const [k, w] of want.ports) {
      if (have.has(k)) continue;
      // The host port was another container's, whose own change has not come yet: its element goes first
      // (a map refuses a second value for a key).
      const other = st.owner.get(k);
      const theirs = other !== undefined ? st.ports.get(other) : undefined;
      const old = theirs?.get(k);
      if (other !== undefined && theirs && old) {
        ch.delPorts.push(old);
        count(old, -1);
        theirs.delete(k);
        if (!theirs.size) st.ports.delete(other);
      }
      ch.addPorts.push(w);
      count(w, +1);
      have.set(k, w);
      st.owner.set(k, id);
    }
    if (have.size) st.ports.set(id, have); else st.ports.delete(id);
    const icc = st.icc.get(id) ?? [];
    const same = (a: [string, string], b: [string, string]) => a[0] === b[0] && a[1] === b[1];
    ch.delIcc.push(...icc.filter((x) => !want.icc.some((y) => same(x, y))));
    ch.addIcc.push(...want.icc.filter((x) => !icc.some((y) => same(x, y))));
    if (want.icc.length) st.icc.set(id, want.icc); else st.icc.delete(id);
  }
  const text = renderElements(svc.table, ch);
  if (!text) return;
  svc.fwState = undefined;
  try {
    await applyTable(text);
  } catch (e) {
    svc.d.log.warn({ err: e }, 'changing the elements of published ports failed; rewriting the table');
    return fullFirewall(svc);
  }
  svc.fwState = st;
}

/** A new network's rules: only added to the table when it holds exactly the other networks' rules, else the
 *  table is regenerated (so for IPv6 and icc=false networks, whose rules renderNetworkAdd does not make). */
export function addNetworkFirewall(svc: NetworkService, n: NetworkRow): Promise<void> {
  return fwJob(svc, async () => {
    const others = [...svc.nets.values()].filter((o) => o.driver === 'bridge' && o.id !== n.id && !svc.fwExclude.has(o.id));
    const st = svc.fwState;
    if (!st || st.nets.has(n.id) || n.ipv6 || n.options[ICC_OPT] === 'false' || others.some((o) => o.ipv6) || st.nets.size !== others.length || others.some((o) => !st.nets.has(o.id))) {
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
