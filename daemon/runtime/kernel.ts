// The newer kernel interfaces berth relies on, probed once when berthd starts (in berthd's own process, so
// under whatever seccomp filter or kernel it really has): what each missing one costs, said in the log,
// and the sentence the commands that cannot do without it fail with.
import type { Logger } from 'pino';
import type { KernelFeature } from '../../addon/index';
import { native } from './native';

export type { KernelFeature };

interface Need {
  /** What berth does instead, and what that costs; absent: there is no way around it. */
  fallback?: string;
  /** Only on cgroup v2 hosts (the device filter). */
  v2Only?: boolean;
  /** The commands that cannot work without it (no fallback). */
  commands?: string;
}

const NEEDS: Record<string, Need> = {
  'fsopen/fsconfig/fsmount/move_mount': { fallback: 'overlay mounts go through mount(2)' },
  'overlayfs lowerdir+ through fsconfig': {
    fallback: 'overlay mounts go through mount(2), whose options must fit in one page: each layer is passed as a short '
      + '/proc/self/fd path, so images of up to about 200 layers run (Docker allows 128)',
  },
  'close_range(CLOSE_RANGE_CLOEXEC)': {
    fallback: "every container start and exec walks /proc/self/fd to keep the shim's descriptors out of the container",
  },
  openat2: { fallback: "paths inside a container's root are resolved one component at a time (an O_PATH walk)" },
  mount_setattr: { fallback: 'a recursively read-only bind is made read-only one submount at a time (a remount each)' },
  pidfd_open: {
    fallback: "processes are signalled by pid, and berthd's children (shims, nft) are started with node's fork, "
      + 'whose cost grows with berthd\'s memory (runtime/spawn.ts)',
  },
  clone3: { fallback: 'the C library creates threads with clone' },
  faccessat2: { fallback: 'the C library checks access with faccessat' },
  bpf: {
    v2Only: true,
    commands: 'docker run, docker start and docker restart (cgroup v2 restricts devices with a BPF program; '
      + 'the kernel needs CONFIG_BPF_SYSCALL)',
  },
};

export class KernelFeatures {
  private readonly missing = new Map<string, KernelFeature>();

  constructor(readonly all: KernelFeature[], private readonly cgroupV2: boolean) {
    for (const f of all) if (!f.available) this.missing.set(f.name, f);
  }

  static async probe(scratch: string, cgroupV2: boolean): Promise<KernelFeatures> {
    return new KernelFeatures(await native.kernelFeatures(scratch), cgroupV2);
  }

  has(name: string): boolean {
    return !this.missing.has(name);
  }

  /** The sentence for a missing feature without a fallback: what lacks it and which commands need it. */
  refusal(name: string): string | undefined {
    const f = this.missing.get(name);
    const need = NEEDS[name];
    if (!f || !need?.commands || (need.v2Only && !this.cgroupV2)) return undefined;
    return `this kernel lacks ${f.name} (Linux ${f.since}), which ${need.commands} need`;
  }

  /** One line per missing feature: a warning with its fallback, or an error naming the commands that will fail. */
  log(log: Logger): void {
    for (const f of this.missing.values()) {
      const need = NEEDS[f.name] ?? {};
      const refusal = this.refusal(f.name);
      if (refusal) log.error({ feature: f.name, since: f.since, detail: f.detail }, `${refusal}; they will fail with this message`);
      else if (need.fallback) log.warn({ feature: f.name, since: f.since, detail: f.detail }, `kernel lacks ${f.name} (Linux ${f.since}): ${need.fallback}`);
    }
    const have = this.all.filter((f) => f.available).map((f) => f.name);
    log.info({ available: have, missing: [...this.missing.keys()] }, 'kernel features probed');
  }
}
