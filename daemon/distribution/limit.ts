// A counting semaphore for parallel downloads and uploads: at most `n` tasks run; a task that has to wait
// is told so once (pull shows "Waiting").
export function limiter(n: number): <T>(fn: () => Promise<T>, onWait?: () => void) => Promise<T> {
  let running = 0;
  const queue: (() => void)[] = [];
  return async <T>(fn: () => Promise<T>, onWait?: () => void): Promise<T> => {
    if (running >= n) {
      onWait?.();
      await new Promise<void>((r) => queue.push(r));
    } else running++;
    try {
      return await fn();
    } finally {
      const next = queue.shift();
      if (next) next();
      else running--;
    }
  };
}
