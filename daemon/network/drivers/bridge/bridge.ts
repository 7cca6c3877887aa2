// The bridge driver: a Linux bridge per network with the gateway address on it, and per endpoint a veth
// pair whose host end is a port of the bridge and whose other end is eth<N> in the container's namespace.
import { randomBytes } from 'node:crypto';
import { ipBatch, linkExists, run, type Step } from '../../exec';

export async function ensureBridge(name: string, gatewayCidr: string | undefined, mtu?: number): Promise<void> {
  if (!(await linkExists(name))) {
    await ipBatch([`link add name ${name} type bridge${mtu ? ` mtu ${mtu}` : ''}`]).catch(async (e) => {
      if (!(await linkExists(name))) throw e;
    });
  }
  const lines = [`link set dev ${name} up`];
  if (gatewayCidr) lines.unshift(`addr replace ${gatewayCidr} dev ${name}`);
  await ipBatch(lines);
}

export async function deleteBridge(name: string): Promise<void> {
  if (await linkExists(name)) await run('ip', ['link', 'del', 'dev', name]);
}

export interface VethSpec {
  bridge: string;
  netns: string;      // namespace file
  ifname: string;     // eth0, eth1 …
  address: string;    // a.b.c.d/prefix
  mac: string;
  gateway?: string;   // default route via this address
}

export const newHostIfName = () => `veth${randomBytes(4).toString('hex').slice(0, 7)}`;

/** The steps that attach one endpoint; `hostIf` names the host end. */
export function vethSteps(s: VethSpec, hostIf: string): Step[] {
  return [
    {
      name: 'veth pair',
      do: () => ipBatch([`link add name ${hostIf} type veth peer name ${s.ifname} netns ${s.netns}`]).then(() => undefined),
      undo: () => run('ip', ['link', 'del', 'dev', hostIf]).then(() => undefined),
    },
    {
      name: 'bridge port',
      do: () => ipBatch([`link set dev ${hostIf} master ${s.bridge}`, `link set dev ${hostIf} up`]).then(() => undefined),
      undo: async () => {},
    },
    {
      name: 'container interface',
      do: () => ipBatch([
        'link set dev lo up',
        `link set dev ${s.ifname} address ${s.mac}`,
        `addr add ${s.address} dev ${s.ifname}`,
        `link set dev ${s.ifname} up`,
        ...(s.gateway ? [`route replace default via ${s.gateway} dev ${s.ifname}`] : []),
      ], s.netns).then(() => undefined),
      undo: async () => {},
    },
  ];
}

export async function deleteLink(name: string): Promise<void> {
  if (name && (await linkExists(name))) await run('ip', ['link', 'del', 'dev', name]).catch(() => {});
}
