// docker-py against a real berthd: runs test/compat/dockerpy with the machine's python3 (docker 7.1.0,
// under pytest) and with Debian's /usr/bin/python3 (python3-docker 5.0.3, the file's own runner).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { runCmd, REPO } from '../helpers/berthd';
import { berthdForFile } from '../helpers/file';
import { show } from '../helpers/clients';

const SUITE = path.join(REPO, 'test', 'compat', 'dockerpy');
const b = berthdForFile({ fixtures: ['busybox'] });


const env = () => ({ DOCKER_HOST: b.host, PYTHONDONTWRITEBYTECODE: '1' });

test('docker-py 7.1.0 (python3 on PATH, pytest)', async () => {
  const which = await runCmd('python3', ['-c', 'import docker, pytest; print(docker.__version__)']);
  assert.equal(which.code, 0, `python3 lacks docker or pytest\n${show(which)}`);
  const r = await runCmd('python3', ['-m', 'pytest', '-q', '-p', 'no:cacheprovider', SUITE], { env: env(), timeoutMs: 240000 });
  assert.equal(r.code, 0, show(r));
  assert.match(r.stdout, /\b7 passed\b/, show(r));
});

test('docker-py from Debian (/usr/bin/python3, python3-docker)', async () => {
  const which = await runCmd('/usr/bin/python3', ['-c', 'import docker; print(docker.__version__)']);
  assert.equal(which.code, 0, `/usr/bin/python3 has no docker module (apt-get install python3-docker; make apt-deps-test does)\n${show(which)}`);
  const r = await runCmd('/usr/bin/python3', [path.join(SUITE, 'test_basic.py')], { env: env(), timeoutMs: 240000 });
  assert.equal(r.code, 0, show(r));
  assert.match(r.stdout, /7 passed, 0 failed/, show(r));
});
