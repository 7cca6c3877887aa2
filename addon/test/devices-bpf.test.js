'use strict';
// The cgroup v2 device filter against the real kernel. The work is done by a standalone program,
// build/devices-bpf-test (addon/test/devices_bpf_test.cc, `make devices-bpf-test`): it attaches filters to
// fresh cgroup2 directories and has a child inside each open and mknod devices. This file builds it when
// missing or stale (make decides) and requires its PASS. A kernel that refuses the BPF program, or a host
// without a cgroup2 mount, is a failure, with the reason in the message.
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { isRoot } = require('./support');

const repo = path.join(__dirname, '..', '..');
const program = path.join(repo, 'build', 'devices-bpf-test');

test('a cgroup v2 device filter allows and denies as its rules say', { skip: isRoot ? false : 'needs root' }, (t) => {
  const make = spawnSync('make', ['-s', 'devices-bpf-test'], { cwd: repo, encoding: 'utf8' });
  assert.equal(make.status, 0, `make devices-bpf-test failed:\n${make.stdout}${make.stderr}`);

  const run = spawnSync(program, [], { encoding: 'utf8', timeout: 120000 });
  assert.equal(run.error, undefined, `running ${program}: ${run.error}`);
  const out = `${run.stdout}${run.stderr}`;
  for (const line of out.trimEnd().split('\n')) t.diagnostic(line);
  assert.equal(run.status, 0, `${program} exited ${run.status ?? run.signal}:\n${out}`);
  assert.match(run.stdout, /^PASS \(0 failed\)$/m);
  assert.doesNotMatch(run.stdout, /FAIL/);
});
