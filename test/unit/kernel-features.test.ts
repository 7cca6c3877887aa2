// What berthd makes of the kernel probe: a warning with the fallback for each missing interface that has
// one, an error naming the commands for one that has none (bpf on cgroup v2), and those commands refused
// with that very sentence before anything touches the host. The probe itself against this kernel and
// under a seccomp filter is in addon/test/overlay-legacy-parser.test.js and test/e2e/kernel-fallbacks.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { Writable } from 'node:stream';
import { KernelFeatures, type KernelFeature } from '../../daemon/runtime/kernel';
import { Runtime } from '../../daemon/runtime/runtime';

const feature = (name: string, since: string, available: boolean): KernelFeature => ({ name, since, available, detail: available ? '' : 'Function not implemented' });

const OLD_KERNEL = [
  feature('fsopen/fsconfig/fsmount/move_mount', '5.2', true),
  feature('overlayfs lowerdir+ through fsconfig', '6.8', false),
  feature('close_range(CLOSE_RANGE_CLOEXEC)', '5.11', false),
  feature('openat2', '5.6', true),
  feature('mount_setattr', '5.12', false),
  feature('bpf', '4.15', false),
];

function logged(k: KernelFeatures): Array<{ level: number; msg: string; feature?: string }> {
  const lines: string[] = [];
  const sink = new Writable({ write(chunk, _enc, cb) { lines.push(chunk.toString()); cb(); } });
  k.log(pino({ level: 'info' }, sink));
  return lines.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

test('each missing interface is logged once with its fallback; bpf only matters on cgroup v2', () => {
  const v1 = logged(new KernelFeatures(OLD_KERNEL, false));
  const warnings = v1.filter((l) => l.level === 40).map((l) => l.feature);
  assert.deepEqual(warnings, ['overlayfs lowerdir+ through fsconfig', 'close_range(CLOSE_RANGE_CLOEXEC)', 'mount_setattr']);
  assert.equal(v1.filter((l) => l.level >= 50).length, 0, 'nothing refused on cgroup v1');
  assert.match(v1.find((l) => l.feature === 'mount_setattr')!.msg, /^kernel lacks mount_setattr \(Linux 5\.12\): a recursively read-only bind is made read-only one submount at a time/);
  assert.equal(new KernelFeatures(OLD_KERNEL, false).refusal('bpf'), undefined);

  const v2 = new KernelFeatures(OLD_KERNEL, true);
  const errors = logged(v2).filter((l) => l.level === 50);
  assert.equal(errors.length, 1);
  const sentence = v2.refusal('bpf')!;
  assert.match(sentence, /^this kernel lacks bpf \(Linux 4\.15\), which docker run, docker start and docker restart .* need$/);
  assert.equal(errors[0].msg, `${sentence}; they will fail with this message`);
  assert.equal(v2.has('openat2'), true);
  assert.equal(v2.has('mount_setattr'), false);
});

test('a start on cgroup v2 without bpf fails with the sentence before any cgroup is made', async () => {
  const rt = new Runtime();
  rt.kernel = new KernelFeatures(OLD_KERNEL, true);
  await assert.rejects(rt.createCgroup('berth-unit-never-made/x', { devices: ['deny a *:* rwm'] }), (e: Error & { kind?: string }) => {
    assert.equal(e.message, rt.kernel!.refusal('bpf'));
    assert.equal(e.kind, 'system');
    return true;
  });
});
