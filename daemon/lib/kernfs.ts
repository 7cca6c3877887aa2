// Reads of the kernel's small text files (/proc, /sys/fs/cgroup): a few hundred bytes to a few KiB, made in
// memory by the kernel when read, so a read never waits on a disk.
//
// fs.promises.readFile cannot know their length (they report st_size 0 or 4096), so it reads them into a
// fresh 64 KiB buffer on the thread pool. `docker stats --no-stream` of 1,000 containers asks for about 14 of
// them per container, twice, all at once: hundreds of MiB of short-lived buffers that malloc keeps as berthd's
// RSS afterwards (bench/README.md, "At scale"). Read synchronously into one buffer instead: a few
// microseconds each, nothing left behind.
import { closeSync, openSync, readSync } from 'node:fs';

const SIZE = 64 * 1024;
let buf = Buffer.allocUnsafe(SIZE);

/** The whole file as text; throws as readFileSync does (ENOENT for a cgroup or process that is gone). */
export function readKernelFile(file: string): string {
  const fd = openSync(file, 'r');
  try {
    let len = 0;
    for (;;) {
      if (len === buf.length) {
        const bigger = Buffer.allocUnsafe(buf.length * 2);
        buf.copy(bigger, 0, 0, len);
        buf = bigger;
      }
      const n = readSync(fd, buf, len, buf.length - len, null);
      if (n === 0) break;
      len += n;
    }
    return buf.toString('utf8', 0, len);
  } finally {
    closeSync(fd);
    // A larger file (a container with thousands of interfaces in /proc/<pid>/net/dev) must not leave
    // berthd holding a larger buffer for good.
    if (buf.length > SIZE) buf = Buffer.allocUnsafe(SIZE);
  }
}
