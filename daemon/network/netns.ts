// Named network namespaces: a file under <exec-root>/netns bind-mounted over a new namespace (the
// SandboxKey). `unshare --net=FILE true` makes the namespace and the bind mount in a short-lived helper
// process of util-linux, so no thread of berthd ever changes namespace. The directory is made a private
// bind mount of itself first (as `ip netns` does with /run/netns), so that the namespace mounts do not
// propagate into the mount namespaces of containers and keep namespaces alive there.
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { run } from './exec';

async function isMountPoint(p: string): Promise<boolean> {
  const info = await readFile('/proc/self/mountinfo', 'utf8');
  return info.split('\n').some((l) => l.split(' ')[4] === p);
}

export class NetnsDir {
  private ready?: Promise<void>;
  constructor(readonly dir: string) {}

  private prepare(): Promise<void> {
    this.ready ??= (async () => {
      await mkdir(this.dir, { recursive: true, mode: 0o755 });
      if (!(await isMountPoint(this.dir))) {
        await run('mount', ['--bind', this.dir, this.dir]);
      }
      await run('mount', ['--make-private', this.dir]);
    })().catch((e) => {
      this.ready = undefined;
      throw e;
    });
    return this.ready;
  }

  pathOf(name: string): string {
    return path.join(this.dir, name);
  }

  async create(name: string): Promise<string> {
    await this.prepare();
    const p = this.pathOf(name);
    if (await isMountPoint(p)) await this.remove(name);
    await writeFile(p, '');
    await run('unshare', [`--net=${p}`, 'true']);
    return p;
  }

  async remove(name: string): Promise<void> {
    const p = this.pathOf(name);
    if (await isMountPoint(p)) await run('umount', [p]).catch(() => run('umount', ['-l', p]));
    await rm(p, { force: true });
  }

  async list(): Promise<string[]> {
    return (await readdir(this.dir).catch(() => [] as string[]));
  }
}
