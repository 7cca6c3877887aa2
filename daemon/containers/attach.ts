// Attach: a client's connection becomes a pipe to the container. Output (framed unless the container has
// a TTY) is fanned out by berthd from the shim; stdin goes to the shim. Used by the hijacked
// /containers/{id}/attach and by the plain-HTTP fallback.
import type { Socket } from 'node:net';
import type { ContainerService, Live } from './service';
import { streamLogs } from './logs';

export interface AttachOptions {
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  stream: boolean;
  logs: boolean;
}

function frame(stream: number, data: Buffer): Buffer {
  const h = Buffer.allocUnsafe(8 + data.length);
  h[0] = stream; h[1] = 0; h[2] = 0; h[3] = 0;
  h.writeUInt32BE(data.length, 4);
  data.copy(h, 8);
  return h;
}

export async function attachSocket(svc: ContainerService, live: Live, sock: Socket, o: AttachOptions): Promise<void> {
  const tty = !!live.rec.config.Tty;
  let closed = false;
  sock.on('close', () => {
    closed = true;
  });
  sock.on('error', () => {
    closed = true;
  });
  sock.setNoDelay(true);

  if (o.logs) {
    await streamLogs(svc.logPath(live.rec.id), { stdout: o.stdout, stderr: o.stderr, follow: false, timestamps: false, tail: -1, sinceNs: 0n, untilNs: 0n },
      tty, (b) => void sock.write(b), () => false, () => closed);
  }
  const st = live.rec.state.status;
  if (!o.stream || closed || (st !== 'created' && st !== 'running' && st !== 'paused' && st !== 'restarting')) {
    sock.end();
    return;
  }

  const detach = svc.addAttacher(live, {
    stdout: o.stdout,
    stderr: o.stderr,
    write(stream, data) {
      if (closed) return;
      if (stream === 1 && !o.stdout) return;
      if (stream === 2 && !o.stderr) return;
      sock.write(tty ? data : frame(stream, data));
    },
    end() {
      if (!closed) sock.end();
    },
  });
  sock.once('close', detach);

  if (o.stdin && live.rec.config.OpenStdin) {
    sock.on('data', (d: Buffer) => svc.sendStdin(live, d));
    sock.on('end', () => {
      // The client finished its input (a half-close). Docker closes the container's stdin only for
      // StdinOnce containers; for others the stream stays open for the next attach.
      if (live.rec.config.StdinOnce) svc.closeStdin(live);
    });
  } else {
    sock.on('data', () => { /* no stdin wanted: discard */ });
  }
  sock.resume();
}
