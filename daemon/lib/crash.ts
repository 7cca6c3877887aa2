// Named crash points: places in multi-step operations where a test kills berthd (SIGKILL, from inside) to
// check that a crash there loses and leaks nothing (test/e2e/crash-points.test.ts). Armed only by the
// environment variable BERTH_CRASH_AT, read once at start; unarmed, a point is one comparison with ''.

const armed = process.env.BERTH_CRASH_AT ?? '';

/** Dies here, at once and without any clean-up, when BERTH_CRASH_AT names this point. */
export function crashPoint(name: string): void {
  if (armed === '' || armed !== name) return;
  // Written synchronously: the test reads it to tell this death from any other.
  try {
    process.stderr.write(`berthd: crash point ${name}: SIGKILL\n`);
  } catch { /* dying anyway */ }
  process.kill(process.pid, 'SIGKILL');
}
