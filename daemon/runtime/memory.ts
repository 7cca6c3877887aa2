// Memory back to the kernel once berthd is idle after a burst of work. V8 keeps its young generation at
// the size a burst grew it to (up to twice 16 MiB) and its old generation's emptied pages, and glibc keeps
// the chunks that Buffers freed below the top of its heap; none of it shrinks while the daemon is idle,
// since nothing then runs a collection. At 1,000 containers that was 40-90 MiB of RSS kept after 16
// connections of lists (bench/README.md, "At scale"). Docker's Go runtime returns idle memory to the
// kernel in the background; berthd does it a few seconds after activity ends: when RSS has grown by
// GROWTH since the last release and the event loop was idle for a whole PERIOD, one collection that
// reduces memory and a malloc_trim (addon: releaseMemory). A daemon that stays busy is left alone: the
// collection costs the CPU of one full collection (tens of milliseconds with 1,000 containers), which an
// idle daemon can spend once per burst.
import { performance, type EventLoopUtilization } from 'node:perf_hooks';
import { native } from './native';

/** How often the daemon looks, and how long it must have been idle. */
const PERIOD_MS = 3000;
/** Event loop utilisation under which a period counts as idle (timers, health probes, a stray ping). */
const IDLE_ELU = 0.02;
/** RSS growth since the last release worth a collection. */
const GROWTH = 16 * 1024 * 1024;

export interface MemoryRelease { stop(): void }

/** Starts watching (an unref'd timer); `onRelease` hears the RSS before and after each release. */
export function releaseMemoryWhenIdle(onRelease?: (before: number, after: number) => void): MemoryRelease {
  let floor = process.memoryUsage.rss();
  let last: EventLoopUtilization = performance.eventLoopUtilization();
  let trimTimer: NodeJS.Timeout | undefined;
  const timer = setInterval(() => {
    const now = performance.eventLoopUtilization();
    const idle = performance.eventLoopUtilization(now, last).utilization < IDLE_ELU;
    last = now;
    const rss = process.memoryUsage.rss();
    if (rss < floor) floor = rss;
    if (!idle || rss - floor < GROWTH) return;
    native.releaseMemory();
    // The collection is finished by tasks on the event loop, and V8's sweeper thread frees what it found
    // just after: a second malloc_trim a moment later returns that.
    clearTimeout(trimTimer);
    trimTimer = setTimeout(() => {
      native.mallocTrim();
      floor = process.memoryUsage.rss();
      last = performance.eventLoopUtilization();
      onRelease?.(rss, floor);
    }, 1000);
    trimTimer.unref();
  }, PERIOD_MS);
  timer.unref();
  return {
    stop() {
      clearInterval(timer);
      clearTimeout(trimTimer);
    },
  };
}
