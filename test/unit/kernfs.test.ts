// readKernelFile (daemon/lib/kernfs.ts): the kernel's small files read whole into one shared buffer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readKernelFile } from '../../daemon/lib/kernfs';

test('reads /proc files whole, a file larger than its buffer too, and throws ENOENT for one that is gone', () => {
  assert.match(readKernelFile('/proc/self/status'), /^VmRSS:/m);
  assert.equal(readKernelFile('/proc/self/cmdline'), readFileSync('/proc/self/cmdline', 'utf8'));
  const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-kernfs-'));
  try {
    const big = 'line\n'.repeat(50_000); // 250 kB: the buffer grows, and the text after it is still whole
    writeFileSync(path.join(dir, 'big'), big);
    assert.equal(readKernelFile(path.join(dir, 'big')), big);
    writeFileSync(path.join(dir, 'small'), 'after\n');
    assert.equal(readKernelFile(path.join(dir, 'small')), 'after\n');
    assert.throws(() => readKernelFile(path.join(dir, 'gone')), { code: 'ENOENT' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
