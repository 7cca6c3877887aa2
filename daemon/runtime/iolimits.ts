// --device-read-bps, --device-write-bps, --device-read-iops, --device-write-iops: Docker names a device by
// its path; the kernel's io.max (blkio.throttle.* on v1) by its MAJOR:MINOR, read here from the node.
import { stat } from 'node:fs/promises';
import { invalid } from '../errors/errors';

interface Throttle { Path: string; Rate: number }

export interface ThrottleConfig {
  BlkioDeviceReadBps?: Throttle[] | null;
  BlkioDeviceWriteBps?: Throttle[] | null;
  BlkioDeviceReadIOps?: Throttle[] | null;
  BlkioDeviceWriteIOps?: Throttle[] | null;
}

/** "MAJOR:MINOR rbps=N" lines for the addon's ioLimits; a path that is no block device fails the start
 *  as Docker's does. */
export async function ioLimitsOf(hc: ThrottleConfig): Promise<string[] | undefined> {
  const out: string[] = [];
  const lists: Array<[string, Throttle[] | null | undefined]> = [
    ['rbps', hc.BlkioDeviceReadBps], ['wbps', hc.BlkioDeviceWriteBps], ['riops', hc.BlkioDeviceReadIOps], ['wiops', hc.BlkioDeviceWriteIOps],
  ];
  for (const [key, list] of lists) {
    for (const t of list ?? []) {
      let st;
      try {
        st = await stat(t.Path, { bigint: true });
      } catch (e) {
        throw invalid(`error gathering device information while adding device "${t.Path}": ${(e as Error).message}`);
      }
      if (!st.isBlockDevice()) throw invalid(`"${t.Path}" is not a block device`);
      // glibc's gnu_dev_major/minor: the split of a 64-bit dev_t.
      const major = ((st.rdev >> 8n) & 0xfffn) | ((st.rdev >> 32n) & ~0xfffn);
      const minor = (st.rdev & 0xffn) | ((st.rdev >> 12n) & ~0xffn);
      out.push(`${major}:${minor} ${key}=${Math.max(0, Math.trunc(t.Rate))}`);
    }
  }
  return out.length ? out : undefined;
}
