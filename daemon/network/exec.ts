// How berth changes the host's network: links, addresses, routes, namespaces and sysctls through the
// addon (rtnetlink on a raw NETLINK_ROUTE socket, off the event loop: addon/src/net/, runtime/net.ts), and
// nftables through the `nft` tool. Why netlink and not iproute2: a container start and stop used to run
// about eight `ip`, `nsenter`, `unshare` and `umount` processes, a few ms each; netlink requests take
// microseconds. Why `nft` stays a tool: `nft -f` applies a whole table atomically from the text firewall/
// generates, and that text is what `nft list ruleset` shows a person or a test. The network service runs
// it at most once per container start or stop, and not at all for a container without published ports on
// a network whose rules do not name containers. The tools themselves are run by lib/tools.ts.
import { host } from '../runtime/net';

export { ToolError } from '../lib/tools';
export { host, NetlinkError } from '../runtime/net';

/** Host links with their kind and bridge, for the clean-up sweep. */
export async function hostLinks(): Promise<Array<{ name: string; master: string; kind: string }>> {
  return (await host.links()).map((l) => ({ name: l.name, master: l.master, kind: l.kind }));
}

/** Steps of a setup, each with its undo: run in order, and on a failure undo the done ones in reverse. */
export interface Step {
  name: string;
  do: () => Promise<void>;
  undo: () => Promise<void>;
}

export async function runSteps(steps: Step[]): Promise<() => Promise<void>> {
  const done: Step[] = [];
  const undoAll = async () => {
    for (const s of done.reverse()) await s.undo().catch(() => {});
  };
  try {
    for (const s of steps) {
      await s.do();
      done.push(s);
    }
  } catch (e) {
    await undoAll();
    throw e;
  }
  return undoAll;
}
