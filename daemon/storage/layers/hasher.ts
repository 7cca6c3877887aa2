// sha256 off the main thread. A pull hashes every byte twice (the blob digest, then the diff id of the
// uncompressed tar) and that was a third of the main thread's time while the main thread was what limited
// a pull; in a worker thread it runs beside the parsing and writing. One worker, started on first use and
// ended after 30 s without work, serves every hash; chunks are copied and the copies handed over (1 MiB
// at a time: a memcpy costs far less than hashing it).
import { Worker } from 'node:worker_threads';

const WORKER_SRC = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const hashes = new Map();
parentPort.on('message', (m) => {
  if (m.data) {
    let h = hashes.get(m.id);
    if (!h) { h = createHash('sha256'); hashes.set(m.id, h); }
    h.update(m.data);
  } else if (m.end) {
    const h = hashes.get(m.id) ?? createHash('sha256');
    hashes.delete(m.id);
    parentPort.postMessage({ id: m.id, hex: h.digest('hex') });
  } else if (m.drop) {
    hashes.delete(m.id);
  }
});
`;

let worker: Worker | undefined;
let nextId = 1;
const waiting = new Map<number, (hex: string) => void>();
let open = 0;
let idleTimer: NodeJS.Timeout | undefined;

/** Called when no hash is open: the worker is let go (unref'd) and ended after a while of idleness. */
function idle(w: Worker): void {
  w.unref();
  clearTimeout(idleTimer);
  idleTimer = setTimeout(() => {
    if (open === 0 && worker === w) {
      worker = undefined;
      void w.terminate();
    }
  }, 30_000);
  idleTimer.unref();
}

function getWorker(): Worker {
  if (worker) return worker;
  const w = new Worker(WORKER_SRC, { eval: true });
  w.on('message', (m: { id: number; hex: string }) => {
    const r = waiting.get(m.id);
    waiting.delete(m.id);
    r?.(m.hex);
    if (--open === 0) idle(w);
  });
  w.on('error', () => undefined);
  w.on('exit', () => {
    // A worker ended for idleness is no longer `worker`, and had nothing open.
    if (worker !== w) return;
    worker = undefined;
    for (const [, r] of waiting) r('');
    waiting.clear();
    open = 0;
  });
  worker = w;
  return w;
}

/** A sha256 computed in the worker: update() as bytes pass, digest() once at the end. */
export class OffThreadHash {
  private readonly id = nextId++;
  private finished = false;
  private readonly w: Worker;

  constructor() {
    this.w = getWorker();
    clearTimeout(idleTimer);
    if (open++ === 0) this.w.ref();
  }

  update(b: Buffer): void {
    if (!b.length) return;
    // A private copy whose memory is handed over (transferred), not serialised: cloning a Buffer through
    // postMessage cost more than hashing it here.
    const copy = Buffer.allocUnsafeSlow(b.length);
    b.copy(copy);
    this.w.postMessage({ id: this.id, data: copy }, [copy.buffer as ArrayBuffer]);
  }

  /** The hex digest ('' if the worker died, which no digest matches). */
  digest(): Promise<string> {
    this.finished = true;
    return new Promise((resolve) => {
      waiting.set(this.id, resolve);
      this.w.postMessage({ id: this.id, end: true });
    });
  }

  /** Forgets a hash that will not be finished. */
  drop(): void {
    if (this.finished) return;
    this.finished = true;
    this.w.postMessage({ id: this.id, drop: true });
    if (--open === 0) idle(this.w);
  }
}
