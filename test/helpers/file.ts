// One berthd for a test file (or a describe block): started in before() with the fixtures loaded, and
// destroyed in after(), also when before() failed half-way. Call it at the top level of the file (or of the
// describe block). after() hooks run in the order they were registered; so do before() hooks in a describe
// block, but Node 20 starts a file's top-level before() hooks at once without waiting for earlier ones:
// what must follow the start at the top level goes into `setup`.
import { before, after } from 'node:test';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startBerthd, type Berthd, type StartOptions } from './berthd';
import { loadFixtures } from './clients';
import { reapDir } from './reaper';
import type { TestNetns } from './netns';

export interface FileBerthdOptions {
  /** Options for startBerthd; a function is called in before(), for options known only then: it may make
   *  them itself (ports, certificates) or, in a describe block, read what an earlier before() made (a
   *  registry's address). */
  start?: StartOptions | (() => StartOptions | Promise<StartOptions>);
  /** A network namespace of the file's own for the daemon: made (with `make`'s options) before the start,
   *  the daemon run in it, and removed once the daemon is gone (the namespace takes its links with it). */
  netns?: { ns: TestNetns; make?: Parameters<TestNetns['make']>[0] };
  /** Fixture images (build/fixtures/<name>.tar) to load; none unless given. */
  fixtures?: string[];
  /** Runs in the same before(), once the fixtures are loaded (containers the whole file uses, …). */
  setup?: (b: Berthd) => void | Promise<void>;
  /** Runs in after() before the daemon and its root are removed (e.g. to stop a server whose socket is
   *  in the root); the daemon is destroyed even when it throws. */
  teardown?: () => void | Promise<void>;
}

/** Registers the hooks and returns a stand-in for the daemon: every field and method goes to the instance
 *  started in before() (it throws when used before that, or when starting failed). */
export function berthdForFile(o: FileBerthdOptions = {}): Berthd {
  let inst: Berthd | undefined;
  before(async () => {
    if (o.netns) await o.netns.ns.make(o.netns.make);
    const opts = typeof o.start === 'function' ? await o.start() : o.start;
    inst = await startBerthd(o.netns ? { ...opts, netns: o.netns.ns.file } : opts);
    await loadFixtures(inst, o.fixtures ?? []);
    await o.setup?.(inst);
  });
  after(async () => {
    try {
      await o.teardown?.();
    } finally {
      try {
        await inst?.destroy();
      } finally {
        await o.netns?.ns.remove();
      }
    }
  });
  const get = (): Berthd => {
    if (!inst) throw new Error('berthd is not running: before() did not start it');
    return inst;
  };
  return {
    get root() { return get().root; },
    get sock() { return get().sock; },
    get host() { return get().host; },
    get dataRoot() { return get().dataRoot; },
    get execRoot() { return get().execRoot; },
    get cgroupParent() { return get().cgroupParent; },
    get net() { return get().net; },
    get proc() { return get().proc; },
    docker: (args, opts) => get().docker(args, opts),
    stop: () => get().stop(),
    kill9: () => get().kill9(),
    restart: () => get().restart(),
    destroy: () => get().destroy(),
  };
}

/** A temporary directory of a test file (or of a describe block: call it there), made now and removed in
 *  after() with whatever the test mounted in it, or when the test process is ended before that
 *  (reaper.ts). Returns its path. */
export function scratchDir(prefix: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  const reap = reapDir(dir);
  after(() => reap.run());
  return dir;
}
