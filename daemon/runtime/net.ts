// The addon's networking calls (addon/src/net/: rtnetlink on a raw NETLINK_ROUTE socket, namespaces,
// sysctls; all off the event loop) as network/ uses them: each failure becomes a system error that says
// what berth was doing, keeping the addon's error (code such as 'EEXIST', errno, the kernel's words) as
// its cause. Like every use of the addon, it lives in runtime/.
import { BerthError } from '../errors/errors';
import { native } from './native';

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
