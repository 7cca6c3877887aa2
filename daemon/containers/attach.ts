// Attach: a client's connection becomes a pipe to the container. Output (framed unless the container has
// a TTY) is fanned out by berthd from the shim; stdin goes to the shim. Used by the hijacked
// /containers/{id}/attach, by the plain-HTTP fallback and (through attachWebsocket) by /attach/ws.
import type { Socket } from 'node:net';
import type { ContainerService, Live } from './service';
import { streamLogs } from '../logs';
import { invalid } from '../errors/errors';

export interface AttachOptions {
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  stream: boolean;
  logs: boolean;
  /** Docker's detachKeys query (`ctrl-p,ctrl-q` when empty); only a TTY session is scanned for them. */
  detachKeys?: string;
}

function frame(stream: number, data: Buffer): Buffer {
  const h = Buffer.allocUnsafe(8 + data.length);
  h[0] = stream; h[1] = 0; h[2] = 0; h[3] = 0;
  h.writeUInt32BE(data.length, 4);
  data.copy(h, 8);
  return h;
}

export const DEFAULT_DETACH_KEYS = 'ctrl-p,ctrl-q';

/** Parses Docker's detach key notation: comma-separated keys, each one character or `ctrl-<c>` with c
 *  one of a-z @ [ \ ] ^ _. */
export function parseDetachKeys(spec: string | undefined): Buffer {
  const s = spec || DEFAULT_DETACH_KEYS;
  const out: number[] = [];
  for (const part of s.split(',')) {
    const k = part.trim();
    if (k.length === 1) {
      out.push(k.charCodeAt(0));
      continue;
    }
    const m = /^ctrl-(.)$/i.exec(k);
    if (!m) throw invalid(`Invalid detach keys (${s}) provided`);
    const c = m[1].toLowerCase();
    if (c >= 'a' && c <= 'z') out.push(c.charCodeAt(0) - 96);
    else if ('@[\\]^_'.includes(c)) out.push('@[\\]^_'.indexOf(c) === 0 ? 0 : 26 + '@[\\]^_'.indexOf(c));
    else throw invalid(`Invalid detach keys (${s}) provided`);
  }
  return Buffer.from(out);
}

/** Scans a TTY session's stdin for the detach sequence. Bytes that could start the sequence are held
 *  back until it is clear whether they do; bytes of a sequence that did not complete are passed on. */
export class DetachScanner {
  private matched = 0;

  constructor(private readonly keys: Buffer) {}

  /** Returns what to pass to the process, and whether the sequence was typed (then nothing after it). */
  push(data: Buffer): { out: Buffer; detach: boolean } {
    const out: number[] = [];
    for (const b of data) {
      if (b === this.keys[this.matched]) {
        this.matched++;
        if (this.matched === this.keys.length) return { out: Buffer.from(out), detach: true };
        continue;
      }
      // Not the next key: what was held back is ordinary input after all.
      for (let i = 0; i < this.matched; i++) out.push(this.keys[i]);
      this.matched = 0;
      if (b === this.keys[0]) {
        this.matched = 1;
        if (this.keys.length === 1) return { out: Buffer.from(out), detach: true };
      } else {
        out.push(b);
      }
    }
    return { out: Buffer.from(out), detach: false };
  }
}

/** The client side of an attach, whatever carries it (a hijacked socket, a websocket). */
export interface AttachIO {
  /** Whether output is framed (non-TTY on a hijacked stream) or sent as it is. */
  framed: boolean;
  write(data: Buffer): void;
  end(): void;
  isClosed(): boolean;
  onData(fn: (d: Buffer) => void): void;
  /** The client finished its input (half-close) — not "gone". */
  onEnd(fn: () => void): void;
  onClose(fn: () => void): void;
  /** Starts reading input. */
  resume(): void;
}

function socketIO(sock: Socket, framed: boolean): AttachIO {
  let closed = false;
  sock.on('close', () => {
    closed = true;
  });
  sock.on('error', () => {
    closed = true;
  });
  sock.setNoDelay(true);
  return {
    framed,
    write: (d) => void sock.write(d),
    end: () => {
      if (!closed) sock.end();
    },
    isClosed: () => closed,
    onData: (fn) => void sock.on('data', fn),
    onEnd: (fn) => void sock.on('end', fn),
    onClose: (fn) => void sock.once('close', fn),
    resume: () => void sock.resume(),
  };
}

export async function attachSocket(svc: ContainerService, live: Live, sock: Socket, o: AttachOptions): Promise<void> {
  return attachIO(svc, live, socketIO(sock, !live.rec.config.Tty), o);
}

/** A websocket from @fastify/websocket (the `ws` package's WebSocket), kept structural here. */
export interface WsLike {
  readyState: number;
  send(data: Buffer, opts?: { binary?: boolean }): void;
  close(code?: number): void;
  on(ev: 'message', fn: (d: Buffer | ArrayBuffer | Buffer[], isBinary?: boolean) => void): void;
  on(ev: 'close', fn: () => void): void;
  on(ev: 'error', fn: (e: Error) => void): void;
}

/** GET /containers/{id}/attach/ws: output as websocket messages (never framed; binary from API 1.28 on,
 *  text before, as Docker does), every message from the client is stdin. */
export async function attachWebsocket(svc: ContainerService, live: Live, ws: WsLike, o: AttachOptions, binary: boolean): Promise<void> {
  let closed = false;
  const closeFns: Array<() => void> = [];
  ws.on('close', () => {
    closed = true;
    for (const f of closeFns) f();
  });
  ws.on('error', () => {
    closed = true;
  });
  const io: AttachIO = {
    framed: false,
    write: (d) => {
      if (!closed && ws.readyState === 1) ws.send(d, { binary });
    },
    end: () => {
      if (!closed) ws.close(1000);
    },
    isClosed: () => closed,
    onData: (fn) => ws.on('message', (d) => fn(Array.isArray(d) ? Buffer.concat(d) : Buffer.isBuffer(d) ? d : Buffer.from(d))),
    onEnd: () => { /* a websocket has no half-close */ },
    onClose: (fn) => void closeFns.push(fn),
    resume: () => {},
  };
  return attachIO(svc, live, io, o);
}

async function attachIO(svc: ContainerService, live: Live, io: AttachIO, o: AttachOptions): Promise<void> {
  const tty = !!live.rec.config.Tty;
  if (o.logs) {
    await streamLogs(svc.logPath(live.rec.id), { stdout: o.stdout, stderr: o.stderr, follow: false, timestamps: false, tail: -1, sinceNs: 0n, untilNs: 0n },
      // streamLogs frames output unless told it is a TTY's; a websocket gets it unframed.
      !io.framed, (b) => io.write(b), () => false, () => io.isClosed());
  }
  const st = live.rec.state.status;
  // An exited container is attached too, as Docker does: `docker start -a` attaches before it starts, so
  // the stream must wait for the run it is about to start (it ends at that run's exit).
  if (!o.stream || io.isClosed() || (st !== 'created' && st !== 'running' && st !== 'paused' && st !== 'restarting' && st !== 'exited')) {
    io.end();
    return;
  }

  const detach = svc.addAttacher(live, {
    stdout: o.stdout,
    stderr: o.stderr,
    write(stream, data) {
      if (io.isClosed()) return;
      if (stream === 1 && !o.stdout) return;
      if (stream === 2 && !o.stderr) return;
      io.write(io.framed ? frame(stream, data) : data);
    },
    end() {
      io.end();
    },
  });
  io.onClose(detach);

  if (o.stdin && live.rec.config.OpenStdin) {
    // Docker scans for the detach keys only in TTY sessions; the container keeps running.
    const scanner = tty ? new DetachScanner(parseDetachKeys(o.detachKeys)) : null;
    let detached = false;
    io.onData((d: Buffer) => {
      if (detached) return;
      if (scanner) {
        const r = scanner.push(d);
        if (r.out.length) svc.sendStdin(live, r.out);
        if (r.detach) {
          detached = true;
          detach();
          io.end();
        }
        return;
      }
      svc.sendStdin(live, d);
    });
    io.onEnd(() => {
      // The client finished its input (a half-close). Docker closes the container's stdin only for
      // StdinOnce containers; for others the stream stays open for the next attach.
      if (!detached && live.rec.config.StdinOnce) svc.closeStdin(live);
    });
  } else {
    io.onData(() => { /* no stdin wanted: discard */ });
  }
  io.resume();
}
