// The healthcheck probe as an exec in the container (what Docker does): output of both streams collected,
// the exit code read once the exec has ended, and the process killed when it outlives the timeout
// (reported to the monitor as exit code -2).
import type { ExecDeps } from '../exec/service';
import type { Live } from './service';

export async function execProbe(d: ExecDeps, live: Live, cmd: string[], timeoutMs: number): Promise<{ exitCode: number; output: string }> {
  // Loaded lazily: the exec service imports the container service.
  const { execService } = await import('../exec/service');
  const ex = execService(d);
  const { Id } = ex.create(live.rec.id, { Cmd: cmd, AttachStdout: true, AttachStderr: true });
  const chunks: Buffer[] = [];
  let size = 0;
  let ended!: () => void;
  const done = new Promise<void>((r) => (ended = r));
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    ex.get(Id).conn?.signal(9);
  }, timeoutMs);
  try {
    await ex.start(Id, {
      write: (_s, b) => {
        if (size < 8192) chunks.push(b);
        size += b.length;
      },
      end: () => ended(),
    });
    await done;
  } finally {
    clearTimeout(timer);
  }
  const code = ex.get(Id).exitCode ?? -1;
  return { exitCode: timedOut ? -2 : code, output: Buffer.concat(chunks).toString('utf8') };
}
