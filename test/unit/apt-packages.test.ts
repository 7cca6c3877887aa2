// The packages berth's set-up installs: `make run` only what berthd needs, `make test` what the tests need
// on top, both without recommends, and neither ever Docker Engine, containerd or runc (docker-compose, a
// test dependency, recommends docker.io). Checked with apt-get's own resolver in simulation (-s) against
// an empty package status, i.e. as on a machine that has nothing installed yet, whatever this one has.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';

const REPO = path.resolve(__dirname, '..', '..', '..');
const FORBIDDEN = ['docker.io', 'containerd', 'runc', 'docker-ce', 'containerd.io'];

const list = (target: string): string[] =>
  execFileSync('make', ['-s', '--no-print-directory', '-C', REPO, target], { encoding: 'utf8' }).trim().split(/\s+/).filter(Boolean);

/** The packages apt-get would install for `pkgs` on a machine with nothing installed. */
function simulate(pkgs: string[], recommends: boolean): string[] {
  const out = execFileSync('apt-get', ['install', '-s', '-o', 'Dir::State::status=/dev/null', '-o', 'Debug::NoLocking=1',
    ...(recommends ? ['--install-recommends'] : ['--no-install-recommends']), ...pkgs], { encoding: 'utf8', maxBuffer: 64 << 20 });
  return out.split('\n').filter((l) => l.startsWith('Inst ')).map((l) => l.split(' ')[1]);
}

test('the run list is what berthd needs, and the test list adds the test tools', () => {
  const run = list('apt-list-run');
  const tests = list('apt-list-test');
  for (const p of ['build-essential', 'libseccomp-dev', 'nlohmann-json3-dev', 'libdeflate-dev', 'nftables']) assert.ok(run.includes(p), `run needs ${p}`);
  for (const p of ['docker-compose', 'docker-registry', 'python3-docker', 'apache2-utils', 'tmux', 'busybox-static']) {
    assert.ok(tests.includes(p), `tests need ${p}`);
    assert.ok(!run.includes(p), `${p} is a test dependency, not berthd's`);
  }
});

test('make run and make test install without recommends', () => {
  const recipe = execFileSync('make', ['-n', '--no-print-directory', '-C', REPO, 'apt-deps-test'], { encoding: 'utf8' });
  const installs = recipe.split('\n').filter((l) => l.includes('apt-get install'));
  assert.equal(installs.length, 2, recipe);
  for (const l of installs) assert.match(l, /apt-get install -y -qq --no-install-recommends /);
});

test('neither list brings Docker Engine, containerd or runc onto a fresh machine', () => {
  const run = list('apt-list-run');
  const all = [...run, ...list('apt-list-test')];
  const forRun = simulate(run, false);
  const forTest = simulate(all, false);
  assert.ok(forRun.includes('nftables') && forTest.includes('docker-compose'), 'the simulation resolved the lists');
  for (const p of FORBIDDEN) {
    assert.ok(!forRun.includes(p), `make run would install ${p}`);
    assert.ok(!forTest.includes(p), `make test would install ${p}`);
  }
  // What the check guards against: with recommends, the test list does pull Docker Engine in.
  assert.ok(simulate(all, true).includes('docker.io'), 'docker-compose recommends docker.io');
});
