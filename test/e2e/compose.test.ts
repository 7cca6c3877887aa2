// docker-compose 1.29 (Debian's, on /usr/bin/python3) against a real berthd: `up` of two services that
// reach each other by service name on the project's network, `ps`, then `down`, leaving no container,
// network, veth or namespace behind; and a named volume two services share, with a read-only bind.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, writeFileSync, rmSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { runCmd } from '../helpers/berthd';
import { berthdForFile } from '../helpers/file';
import { waitFor } from '../helpers/clients';

const COMPOSE = '/usr/bin/docker-compose';
const b = berthdForFile({ fixtures: ['busybox'] });
let dir: string;

before(() => {
  if (!existsSync(COMPOSE)) return;
  dir = mkdtempSync(path.join(os.tmpdir(), 'berth-compose-'));
  writeFileSync(path.join(dir, 'docker-compose.yml'), [
    'version: "3"',
    'services:',
    '  srv:',
    '    image: busybox',
    "    command: sh -c 'while true; do echo from-srv | nc -l -p 7000; done'",
    '  cli:',
    '    image: busybox',
    "    command: sh -c 'until nc -w 2 srv 7000; do sleep 0.2; done; sleep 100'",
    '    depends_on: [srv]',
    '',
  ].join('\n'));
});

after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const compose = (...args: string[]) => runCmd(COMPOSE, ['-p', 'bt', ...args], { env: { DOCKER_HOST: b.host, COMPOSE_INTERACTIVE_NO_CLI: '1' }, timeoutMs: 120000 })
  .then((r) => ({ ...r, cwd: dir }));

/** Host links that are ports of `bridge`, or the bridge itself. */
function linksOf(bridge: string): string[] {
  return execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' }).split('\n').filter((l) => l.includes(` master ${bridge} `) || l.includes(` ${bridge}:`));
}

test('compose up: two services reach each other by name; down leaves nothing', async () => {
  assert.ok(existsSync(COMPOSE), `${COMPOSE} is installed by make apt-deps-test (make test)`);
  const cwdArgs = ['-f', path.join(dir, 'docker-compose.yml')];
  let r = await compose(...cwdArgs, 'up', '-d');
  assert.equal(r.code, 0, r.stderr);
  const logs = await waitFor('cli got an answer from srv', async () => {
    const l = await compose(...cwdArgs, 'logs', 'cli');
    return /from-srv/.test(l.stdout) ? l.stdout : undefined;
  }, 30000, 300);
  assert.match(logs, /from-srv/);
  r = await compose(...cwdArgs, 'ps');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.split('\n').filter((l) => /^bt_(srv|cli)_1\s/.test(l)).length, 2, r.stdout);
  const nets = (await b.docker(['network', 'ls', '--format', '{{.Name}}'])).stdout;
  assert.match(nets, /^bt_default$/m);
  const bridge = `br-${JSON.parse((await b.docker(['network', 'inspect', 'bt_default'])).stdout)[0].Id.slice(0, 12)}`;
  assert.equal(linksOf(bridge).length, 3, 'the bridge and two veths');
  r = await compose(...cwdArgs, 'down', '-t', '1');
  assert.equal(r.code, 0, r.stderr);
  assert.equal((await b.docker(['ps', '-aq'])).stdout.trim(), '');
  assert.doesNotMatch((await b.docker(['network', 'ls', '--format', '{{.Name}}'])).stdout, /bt_default/);
  assert.deepEqual(readdirSync(path.join(b.execRoot, 'netns')), []);
  assert.deepEqual(linksOf(bridge), []);
});

test('compose with a named volume shared by two services and a read-only bind; down -v removes the volume', async () => {
  const vdir = mkdtempSync(path.join(os.tmpdir(), 'berth-compose-vol-'));
  try {
    writeFileSync(path.join(vdir, 'greeting'), 'from-the-host\n');
    writeFileSync(path.join(vdir, 'docker-compose.yml'), [
      'version: "3"',
      'services:',
      '  writer:',
      '    image: busybox',
      "    command: sh -c 'cat /conf/greeting > /data/f; sleep 100'",
      '    volumes: ["data:/data", "./:/conf:ro"]',
      '  reader:',
      '    image: busybox',
      "    command: sh -c 'until test -s /data/f; do sleep 0.2; done; cat /data/f; sleep 100'",
      '    volumes: ["data:/data"]',
      'volumes:',
      '  data: {}',
      '',
    ].join('\n'));
    const f = ['-f', path.join(vdir, 'docker-compose.yml')];
    let r = await compose(...f, 'up', '-d');
    assert.equal(r.code, 0, r.stderr);
    await waitFor('reader saw what writer wrote', async () => {
      const l = await compose(...f, 'logs', 'reader');
      return /from-the-host/.test(l.stdout) ? 1 : undefined;
    }, 30000, 300);
    assert.match((await b.docker(['volume', 'ls', '--format', '{{.Name}}'])).stdout, /^bt_data$/m);
    r = await compose(...f, 'down', '-v', '-t', '1');
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch((await b.docker(['volume', 'ls', '--format', '{{.Name}}'])).stdout, /bt_data/);
    assert.equal((await b.docker(['ps', '-aq'])).stdout.trim(), '');
  } finally {
    rmSync(vdir, { recursive: true, force: true });
  }
});
