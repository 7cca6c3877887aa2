// Named network namespaces: a file under <exec-root>/netns bind-mounted over a new namespace (the
// SandboxKey). The addon makes the namespace on a thread of its own that unshares its network namespace,
// bind-mounts /proc/thread-self/ns/net on the file, brings up lo and ends, so no thread berthd keeps ever
// changes namespace. The directory is made a private bind mount of itself first (as `ip netns` does with
// /run/netns), so that the namespace mounts do not propagate into the mount namespaces of containers and
// keep namespaces alive there.
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { host } from './exec';

export class NetnsDir {
  private ready?: Promise<void>;
  constructor(readonly dir: string) {}

  private prepare(): Promise<void> {
    this.ready ??= host.prepareNetnsDir(this.dir).catch((e) => {
      this.ready = undefined;
      throw e;
    });
    return this.ready;
  }

  pathOf(name: string): string {
    return path.join(this.dir, name);
  }

  /** A new namespace on <dir>/<name>; one left mounted there before is detached first. */
  async create(name: string): Promise<string> {
    await this.prepare();
    const p = this.pathOf(name);
    await host.createNetns(p);
    return p;
  }

  async remove(name: string): Promise<void> {
    await host.deleteNetns(this.pathOf(name));
  }

  async list(): Promise<string[]> {
    return (await readdir(this.dir).catch(() => [] as string[]));
  }
}
