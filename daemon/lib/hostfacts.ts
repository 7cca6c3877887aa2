// Facts about the host that /info reports and Docker warns about, measured when asked (they can change while
// berthd runs: a sysctl flipped, a module loaded), never assumed.
import { readFileSync, readdirSync, existsSync, statfsSync } from 'node:fs';
import { tools } from './tools';
import path from 'node:path';
import type { CgroupLayout } from '../../addon';

// statfs(2) f_type magics, named as Docker names the backing file system in DriverStatus.
const FS_NAMES: Record<number, string> = {
  0xef53: 'extfs',
  0x58465342: 'xfs',
  0x9123683e: 'btrfs',
  0x01021994: 'tmpfs',
  0x794c7630: 'overlayfs',
  0x2fc12fc1: 'zfs',
  0x6969: 'nfs',
  0xf2f52010: 'f2fs',
  0x858458f6: 'ramfs',
  0x73717368: 'squashfs',
  0x01021997: 'v9fs',
  0x61756673: 'aufs',
  0xf15f: 'ecryptfs',
  0x52654973: 'reiserfs',
  0x3153464a: 'jfs',
  0x65735546: 'fuse',
};

/** The file system the data root lives on (its nearest existing ancestor when it is not made yet). */
export function backingFs(dir: string): { name: string; magic: number } {
  let d = dir;
  while (!existsSync(d) && d !== path.dirname(d)) d = path.dirname(d);
  try {
    const magic = Number(statfsSync(d).type) >>> 0;
    return { name: FS_NAMES[magic] ?? '<unknown>', magic };
  } catch {
    return { name: '<unknown>', magic: 0 };
  }
}

/** Whether directory entries carry their type (overlayfs needs it to see whiteouts). Every backing file
 *  system above has it except xfs formatted with ftype=0, which xfs_info tells. */
export function supportsDType(dir: string, fs: { name: string }): boolean {
  if (fs.name !== 'xfs') return true;
  const out = tools.xfsInfo(dir);
  // Without xfs_info (not installed): new xfs file systems have ftype=1 (the mkfs default since 2015).
  if (out === undefined) return true;
  const m = /ftype=(\d)/.exec(out);
  return m ? m[1] === '1' : true;
}

function readFlag(file: string): boolean | undefined {
  try {
    return readFileSync(file, 'utf8').trim() === '1';
  } catch {
    return undefined;
  }
}

/** net.ipv4.ip_forward of berthd's network namespace: without it no container reaches beyond its host. */
export function ipv4Forwarding(): boolean {
  return readFlag('/proc/sys/net/ipv4/ip_forward') ?? false;
}

/** net.bridge.bridge-nf-call-iptables/ip6tables: undefined when br_netfilter is not loaded (the files do not
 *  exist), which is not a problem for berth's own rules. */
export function bridgeNf(): { iptables?: boolean; ip6tables?: boolean } {
  return {
    iptables: readFlag('/proc/sys/net/bridge/bridge-nf-call-iptables'),
    ip6tables: readFlag('/proc/sys/net/bridge/bridge-nf-call-ip6tables'),
  };
}

export interface CgroupFacts {
  memoryLimit: boolean;
  swapLimit: boolean;
  kernelMemoryTCP: boolean;
  oomKillDisable: boolean;
  cpuCfs: boolean;
  cpuShares: boolean;
  cpuset: boolean;
  pids: boolean;
}

/** What the cgroup controllers of this host can enforce, read from the files the kernel offers. On v2 the
 *  controllers that cgroup.subtree_control of the root can enable; swap needs memory.swap.max, which exists
 *  only when the kernel accounts swap (CONFIG_MEMCG_SWAP and swapaccount not off). */
export function cgroupFacts(layout: CgroupLayout): CgroupFacts {
  if (layout.version === 2) {
    let ctl: string[] = [];
    try {
      ctl = readFileSync(path.join(layout.unified, 'cgroup.controllers'), 'utf8').trim().split(/\s+/);
    } catch {
      /* an unreadable root: report nothing as enforceable */
    }
    const has = (c: string) => ctl.includes(c);
    // memory.swap.max is not in the root cgroup; any child with the memory controller shows whether swap
    // is accounted. The kernel's swap accounting is a boot-time switch, so one child tells for all.
    let swap = false;
    if (has('memory')) {
      try {
        swap = readFileSync(path.join(layout.unified, 'cgroup.subtree_control'), 'utf8').includes('memory') &&
          readdirSync(layout.unified, { withFileTypes: true })
            .some((e) => e.isDirectory() && existsSync(path.join(layout.unified, e.name, 'memory.swap.max')));
      } catch {
        swap = false;
      }
    }
    return { memoryLimit: has('memory'), swapLimit: swap, kernelMemoryTCP: false, oomKillDisable: false, cpuCfs: has('cpu'), cpuShares: has('cpu'), cpuset: has('cpuset'), pids: has('pids') };
  }
  const mem = layout.controllers.memory;
  const memFile = (f: string) => mem !== undefined && existsSync(path.join(mem, f));
  const cpu = layout.controllers.cpu;
  return {
    memoryLimit: memFile('memory.limit_in_bytes'),
    swapLimit: memFile('memory.memsw.limit_in_bytes'),
    kernelMemoryTCP: memFile('memory.kmem.tcp.limit_in_bytes'),
    oomKillDisable: memFile('memory.oom_control'),
    cpuCfs: cpu !== undefined && existsSync(path.join(cpu, 'cpu.cfs_quota_us')),
    cpuShares: cpu !== undefined && existsSync(path.join(cpu, 'cpu.shares')),
    cpuset: 'cpuset' in layout.controllers,
    pids: 'pids' in layout.controllers,
  };
}

/** Docker's /info warnings for what this host lacks, in Docker's words. */
export function hostWarnings(cg: CgroupFacts, forwarding: boolean, nf: { iptables?: boolean; ip6tables?: boolean }): string[] {
  const w: string[] = [];
  if (!cg.memoryLimit) w.push('WARNING: No memory limit support');
  if (!cg.swapLimit) w.push('WARNING: No swap limit support');
  if (!cg.cpuCfs) w.push('WARNING: No cpu cfs quota support', 'WARNING: No cpu cfs period support');
  if (!cg.cpuShares) w.push('WARNING: No cpu shares support');
  if (!cg.cpuset) w.push('WARNING: No cpuset support');
  if (!forwarding) w.push('WARNING: IPv4 forwarding is disabled');
  if (nf.iptables === false) w.push('WARNING: bridge-nf-call-iptables is disabled');
  if (nf.ip6tables === false) w.push('WARNING: bridge-nf-call-ip6tables is disabled');
  return w;
}
