// A container's terminal: attachers, stdin and resize.
import { conflict } from '../errors/errors';
import type { Live, Attacher } from './live';
import type { ContainerService } from './service';

export function addAttacher(svc: ContainerService, live: Live, a: Attacher): () => void {
  live.attachers.add(a);
  if (live.attachers.size === 1) live.conn?.subscribe(true);
  return () => {
    if (live.attachers.delete(a) && live.attachers.size === 0) live.conn?.subscribe(false);
  };
}

export function sendStdin(svc: ContainerService, live: Live, data: Buffer): void {
  if (live.conn) live.conn.stdin(data);
  else if (live.rec.state.status === 'created') live.pendingStdin.push(data);
}

export function closeStdin(svc: ContainerService, live: Live): void {
  if (live.conn) live.conn.closeStdin();
  else if (live.rec.state.status === 'created') live.pendingStdinClose = true;
}

export function resize(svc: ContainerService, ref: string, rows: number, cols: number): void {
  const live = svc.lookup(ref);
  if (!svc.isRunning(live)) throw conflict(`Container ${live.rec.id} is not running`);
  live.conn!.resize(rows, cols);
}

export function emitAttach(svc: ContainerService, live: Live): void {
  svc.emit(live, 'attach');
}
