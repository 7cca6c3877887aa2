// Docker's default seccomp profile is compiled when berthd starts (into <exec-root>/seccomp/, the cache
// the shims read), so the first `docker run` loads it instead of compiling it; a restart finds it there.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { berthdForFile } from '../helpers/file';
import { dockerCli } from '../helpers/clients';

const b = berthdForFile({ fixtures: ['busybox'] });
const { ok } = dockerCli(() => b);

function compiled(): Array<{ name: string; mtimeMs: number; size: number }> {
  const dir = path.join(b.execRoot, 'seccomp');
  return readdirSync(dir).filter((n) => n.endsWith('.bpf')).map((n) => ({ name: n, ...statSync(path.join(dir, n)) }));
}

test('the default profile is compiled before the first container starts, and that start uses it', async () => {
  const before = compiled();
  assert.equal(before.length, 1, 'one compiled profile right after the start');
  assert.ok(before[0].size > 1000, 'a filter of Docker\'s allow list is more than a few instructions');
  assert.ok(!readdirSync(path.join(b.execRoot, 'seccomp')).some((n) => n.endsWith('.json')), 'the profile file given to the shim is gone');
  await ok('run', '--rm', 'busybox', 'true');
  const after = compiled();
  assert.deepEqual(after.map((f) => [f.name, f.mtimeMs]), before.map((f) => [f.name, f.mtimeMs]), 'the start read the cache, wrote nothing new');
  // The filter is in force.
  await ok('run', '--rm', 'busybox', 'sh', '-c', 'grep -q "^Seccomp:.*2" /proc/self/status');
  // A restart keeps the compiled file as it is.
  await b.stop();
  await b.restart();
  assert.deepEqual(compiled().map((f) => [f.name, f.mtimeMs]), before.map((f) => [f.name, f.mtimeMs]));
});
