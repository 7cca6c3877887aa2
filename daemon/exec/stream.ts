// The attached side of an exec start: a hijacked connection (or the plain-HTTP fallback) carries the
// process's output to the client, framed unless the start asked for a TTY, and the client's input to
// the process.
import type { Socket } from 'node:net';
import { DetachScanner, parseDetachKeys } from '../containers/attach';
import type { ExecRecord, ExecService } from './service';

function frame(stream: number, data: Buffer): Buffer {
  const h = Buffer.allocUnsafe(8 + data.length);
  h[0] = stream; h[1] = 0; h[2] = 0; h[3] = 0;
  h.writeUInt32BE(data.length, 4);
  data.copy(h, 8);
  return h;
}

/** Runs an attached exec on sock (already answered with 101 or 200). `tty` is the start body's Tty,
 *  which decides the framing as in Docker. Resolves once the process runs or failed to start. */
export async function execOnSocket(svc: ExecService, e: ExecRecord, sock: Socket, tty: boolean): Promise<void> {
  let closed = false;
  sock.setNoDelay(true);
  sock.on('error', () => {
    closed = true;
  });
  sock.on('close', () => {
    closed = true;
    svc.detach(e);
  });
  let detached = false;
  if (e.config.AttachStdin) {
    // In a TTY session the detach keys end the stream and leave the process running, as for attach.
    const scanner = e.config.Tty ? new DetachScanner(parseDetachKeys(e.config.DetachKeys)) : null;
    sock.on('data', (d: Buffer) => {
      if (detached) return;
      if (!scanner) {
        svc.stdin(e, d);
        return;
      }
      const r = scanner.push(d);
      if (r.out.length) svc.stdin(e, r.out);
      if (r.detach) {
        detached = true;
        svc.detach(e);
        sock.end();
      }
    });
    // A half-close: the client's input is over; the output keeps coming until the process exits.
    sock.on('end', () => {
      if (!detached) svc.closeStdin(e);
    });
  } else {
    sock.on('data', () => { /* no stdin wanted */ });
  }
  sock.resume();
  await svc.start(e.id, {
    write(stream, data) {
      if (!closed) sock.write(tty ? data : frame(stream, data));
    },
    end() {
      if (!closed) sock.end();
    },
  });
}
