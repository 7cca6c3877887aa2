// How berth changes the host's network: links, addresses, routes, namespaces and sysctls through the addon
// (rtnetlink on a raw NETLINK_ROUTE socket, off the event loop; see addon/src/net/), and nftables through
// the `nft` tool. Why netlink and not iproute2: a container start and stop used to run about eight `ip`,
// `nsenter`, `unshare` and `umount` processes, a few ms each; netlink messages take microseconds. Why `nft`
// stays a tool: `nft -f` applies a whole table atomically from the text firewall/ generates, and that text
// is what `nft list ruleset` shows a person or a test. It runs at most once per container start or stop.
import { execFile } from 'node:child_process';
import { BerthError } from '../errors/errors';
import { native } from '../runtime/native';

export class ToolError extends BerthError {
  constructor(readonly tool: string, readonly args: string[], readonly stderr: string) {
    super('system', `${tool} ${args.join(' ')}: ${stderr.trim() || 'failed'}`);
  }
}

export function run(tool: string, args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(tool, args, { timeout: 30_000, maxBuffer: 16 * 1024 * 1024, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) reject(new ToolError(tool, args, stderr || err.message));
      else resolve(stdout);
    });
    if (input !== undefined) child.stdin!.end(input);
    else child.stdin!.end();
  });
}

/** An addon error (code, errno, the kernel's words) as a system error that says what berth was doing. */
export class NetlinkError extends BerthError {
  readonly code: string;
  constructor(what: string, cause: unknown) {
    super('system', `${what}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.code = (cause as { code?: string })?.code ?? '';
  }
}

async function wrap<T>(what: string, p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (e) {
    throw new NetlinkError(what, e);
  }
}

/** The host operations the bridge driver and the namespace directory use, typed by addon/index.d.ts. */
export const host = {
  prepareNetnsDir: (dir: string) => wrap(`prepare ${dir}`, native.netnsPrepareDir(dir)),
  createNetns: (file: string) => wrap(`create network namespace ${file}`, native.netnsCreate(file)),
  deleteNetns: (file: string) => wrap(`remove network namespace ${file}`, native.netnsDelete(file)),
  sysctl: (key: string, value: string, netns?: string) => wrap(`sysctl ${key}=${value}`, native.sysctlWrite(key, value, netns)),
  addBridge: (name: string, mtu?: number) => wrap(`create bridge ${name}`, native.linkAddBridge(name, mtu ? { mtu } : undefined)),
  addVeth: (spec: Parameters<typeof native.linkAddVeth>[0]) => wrap(`create veth ${spec.name}`, native.linkAddVeth(spec)),
  setLink: (change: Parameters<typeof native.linkSet>[0]) => wrap(`set link ${change.name}`, native.linkSet(change)),
  deleteLink: (name: string, netns?: string) => wrap(`delete link ${name}`, native.linkDelete(name, netns)),
  links: (netns?: string) => wrap('list links', native.linkList(netns)),
  addAddress: (spec: Parameters<typeof native.addrAdd>[0]) => wrap(`add address ${spec.address} to ${spec.name}`, native.addrAdd(spec)),
  defaultRoute: (spec: Parameters<typeof native.routeReplaceDefault>[0]) => wrap(`default route via ${spec.gateway}`, native.routeReplaceDefault(spec)),
};

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
