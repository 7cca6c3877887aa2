// sha256 off the main thread. A pull hashes every byte twice (the blob digest, then the diff id of the
// uncompressed tar) and that was a third of the main thread's time while the main thread was what limited
// a pull; in a worker thread it runs beside the parsing and writing. One worker, started on first use and
// ended after 30 s without work, serves every hash.
//
// The bytes reach the worker through shared memory: a ring of slots in one SharedArrayBuffer, each filled
// by a memcpy here and handed back by the worker once hashed. Handing over a fresh copy per chunk (as this
// did first) allocated a new ArrayBuffer for every MiB hashed, 600 MiB per 300 MiB pulled; V8 counts
// those as external memory and ran a full mark of the heap every 64 MiB or so, which cost more CPU than
// the hashing itself. When every slot is in use (a burst of many hashes at once) a chunk goes the old way:
// a private copy whose memory is transferred.
import { Worker } from 'node:worker_threads';

const SLOT = 1 << 20;
const SLOTS = 24;

const WORKER_SRC = `
const { parentPort, workerData } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const shared = workerData.shared;
const SLOT = workerData.slot;
const hashes = new Map();
const get = (id) => {
  let h = hashes.get(id);
  if (!h) { h = createHash('sha256'); hashes.set(id, h); }
  return h;
};
parentPort.on('message', (m) => {
  if (m.slot !== undefined) {
    get(m.id).update(new Uint8Array(shared, m.slot * SLOT, m.len));
    parentPort.postMessage({ free: m.slot });
  } else if (m.data) {
    get(m.id).update(m.data);
    // The copy's memory goes back to be reused (a buffer transferred here would otherwise wait for this
    // thread's garbage collector, which hardly ever runs: it allocates next to nothing).
    parentPort.postMessage({ back: m.data }, [m.data.buffer]);
  } else if (m.end) {
    const h = hashes.get(m.id) ?? createHash('sha256');
    hashes.delete(m.id);
    parentPort.postMessage({ id: m.id, hex: h.digest('hex') });
  } else if (m.drop) {
    hashes.delete(m.id);
  }
});
`;

interface HashWorker {
  w: Worker;
  shared: SharedArrayBuffer;
  /** Slots not lent to the worker. */
  free: number[];
  /** Copies (SLOT bytes each) back from the worker, for the next time every slot is busy. */
  spare: Buffer[];
}

/** Copies kept for reuse at most. */
const MAX_SPARE = 16;

let worker: HashWorker | undefined;
let nextId = 1;
const waiting = new Map<number, (hex: string) => void>();
let open = 0;
let idleTimer: NodeJS.Timeout | undefined;

/** Called when no hash is open: the worker is let go (unref'd) and ended after a while of idleness. */
function idle(hw: HashWorker): void {
  hw.w.unref();
  clearTimeout(idleTimer);
  idleTimer = setTimeout(() => {
    if (open === 0 && worker === hw) {
      worker = undefined;
      void hw.w.terminate();
    }
  }, 30_000);
  idleTimer.unref();
}

function getWorker(): HashWorker {
  if (worker) return worker;
  const shared = new SharedArrayBuffer(SLOT * SLOTS);
  const w = new Worker(WORKER_SRC, { eval: true, workerData: { shared, slot: SLOT } });
  const hw: HashWorker = { w, shared, free: Array.from({ length: SLOTS }, (_, i) => SLOTS - 1 - i), spare: [] };
  w.on('message', (m: { id: number; hex: string } | { free: number } | { back: Uint8Array }) => {
    if ('free' in m) {
      hw.free.push(m.free);
      return;
    }
    if ('back' in m) {
      if (hw.spare.length < MAX_SPARE && m.back.buffer.byteLength === SLOT) hw.spare.push(Buffer.from(m.back.buffer));
      return;
    }
    const r = waiting.get(m.id);
    waiting.delete(m.id);
    r?.(m.hex);
    if (--open === 0) idle(hw);
  });
  w.on('error', () => undefined);
  w.on('exit', () => {
    // A worker ended for idleness is no longer `worker`, and had nothing open.
    if (worker !== hw) return;
    worker = undefined;
    for (const [, r] of waiting) r('');
    waiting.clear();
    open = 0;
  });
  worker = hw;
  return hw;
}

/** A sha256 computed in the worker: update() as bytes pass, digest() once at the end. */
export class OffThreadHash {
  private readonly id = nextId++;
  private finished = false;
  private readonly hw: HashWorker;

  constructor() {
    this.hw = getWorker();
    clearTimeout(idleTimer);
    if (open++ === 0) this.hw.w.ref();
  }

  /** Hashes `b` (the caller may reuse `b` as soon as this returns). */
  update(b: Buffer): void {
    for (let off = 0; off < b.length; off += SLOT) {
      const part = off === 0 && b.length <= SLOT ? b : b.subarray(off, Math.min(b.length, off + SLOT));
      const slot = this.hw.free.pop();
      if (slot !== undefined) {
        new Uint8Array(this.hw.shared, slot * SLOT, part.length).set(part);
        this.hw.w.postMessage({ id: this.id, slot, len: part.length });
        continue;
      }
      // No slot free: a private copy whose memory is handed over (transferred), not serialised, and
      // comes back once hashed.
      const mem = this.hw.spare.pop() ?? Buffer.allocUnsafeSlow(SLOT);
      part.copy(mem);
      const copy = mem.subarray(0, part.length);
      this.hw.w.postMessage({ id: this.id, data: copy }, [mem.buffer as ArrayBuffer]);
    }
  }

  /** The hex digest ('' if the worker died, which no digest matches). */
  digest(): Promise<string> {
    this.finished = true;
    return new Promise((resolve) => {
      waiting.set(this.id, resolve);
      this.hw.w.postMessage({ id: this.id, end: true });
    });
  }

  /** Forgets a hash that will not be finished. */
  drop(): void {
    if (this.finished) return;
    this.finished = true;
    this.hw.w.postMessage({ id: this.id, drop: true });
    if (--open === 0) idle(this.hw);
  }
}
