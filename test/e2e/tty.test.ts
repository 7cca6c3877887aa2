// Interactive use as a person has it (issue 4): the docker CLI runs in a real terminal (tmux, on a tmux
// server of this test's own, stopped in after()), keys are typed and the screen is read back. Covers
// `docker run -it`, window sizes, detaching with ctrl-p ctrl-q and --detach-keys, `docker attach` to TTY
// and non-TTY containers, `exec -it`, `-i` without `-t`, and attach over a websocket.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { DOCKER } from '../helpers/berthd';
import { berthdForFile } from '../helpers/file';
import { api, spawnDocker, waitFor, sleep, show } from '../helpers/clients';

let tmuxSock = '';
let sessions = 0;

// A tmux server of the file's own, its socket in the daemon's root: stopped before destroy() removes that.
const b = berthdForFile({
  fixtures: ['busybox'],
  setup: (d) => {
    tmuxSock = path.join(d.root, 'tmux.sock');
    // A session that lives as long as the file: tmux's server exits with its last session, and a command
    // that reaches it while it shuts down fails ("server exited unexpectedly") — between two tests'
    // terminals that happened now and then on a loaded machine.
    execFileSync('tmux', ['-S', tmuxSock, 'new-session', '-d', '-s', 'keep', 'sleep 3600']);
  },
  teardown: () => {
    if (tmuxSock) {
      try { execFileSync('tmux', ['-S', tmuxSock, 'kill-server'], { stdio: 'ignore' }); } catch { /* not running */ }
    }
  },
});

/** A terminal of cols x rows running one docker command; the pane stays after the command ends and
 *  shows `EXIT=<code>`. */
class Term {
  readonly name: string;

  constructor(args: string[], cols = 100, rows = 30) {
    this.name = `t${++sessions}`;
    const quoted = args.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
    const cmd = `DOCKER_HOST=${b.host} DOCKER_CONFIG=${path.join(b.root, 'docker-config')} ${DOCKER} ${quoted}; echo EXIT=$?; sleep 600`;
    this.tmux('new-session', '-d', '-s', this.name, '-x', String(cols), '-y', String(rows), cmd);
  }

  private tmux(...args: string[]): string {
    return execFileSync('tmux', ['-S', tmuxSock, ...args], { encoding: 'utf8' });
  }

  /** Types text (literally) and, unless told otherwise, Enter. */
  type(text: string, enter = true): void {
    this.tmux('send-keys', '-t', this.name, '-l', text);
    if (enter) this.tmux('send-keys', '-t', this.name, 'Enter');
  }

  keys(...keys: string[]): void {
    this.tmux('send-keys', '-t', this.name, ...keys);
  }

  screen(): string {
    return this.tmux('capture-pane', '-p', '-t', this.name, '-S', '-200');
  }

  resize(cols: number, rows: number): void {
    this.tmux('resize-window', '-t', this.name, '-x', String(cols), '-y', String(rows));
  }

  /** Types `line` again every half second until `re` is on the screen (a resize reaches the container's
   *  terminal a moment after the client's window changes). */
  async typeUntil(line: string, re: RegExp, ms = 15000): Promise<void> {
    await waitFor(`${re} after typing ${line}`, async () => {
      this.type(line);
      await sleep(500);
      return re.test(this.screen()) ? 1 : undefined;
    }, ms, 0).catch((e) => {
      throw new Error(`${e.message}\n--- screen\n${this.screen()}`);
    });
  }

  async waitFor(re: RegExp, ms = 15000): Promise<string> {
    return waitFor(`${re} on the screen`, () => (re.test(this.screen()) ? this.screen() : ''), ms).catch((e) => {
      throw new Error(`${e.message}\n--- screen\n${this.screen()}`);
    });
  }

  close(): void {
    try { this.tmux('kill-session', '-t', this.name); } catch { /* gone */ }
  }
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
async function state(ref: string): Promise<any> {
  return (await api(b, 'GET', `/containers/${ref}/json`)).json().State;
}

/** A hijacked attach on a raw socket: returns the socket and what it received so far. */
async function rawAttach(ref: string, query: string): Promise<{ sock: net.Socket; data: () => string; closed: Promise<void> }> {
  const sock = net.createConnection(b.sock);
  let buf = '';
  sock.on('data', (d) => { buf += d.toString('latin1'); });
  const closed = new Promise<void>((r) => sock.on('close', () => r()));
  await new Promise<void>((r) => sock.once('connect', () => r()));
  sock.write(`POST /v1.43/containers/${ref}/attach?${query} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n`);
  await waitFor('101', () => buf.includes('\r\n\r\n'));
  assert.match(buf, /^HTTP\/1.1 101 UPGRADED\r\n/);
  return { sock, data: () => buf.slice(buf.indexOf('\r\n\r\n') + 4), closed };
}

describe('TTY and attach', () => {
  test('docker run -it: a real shell, the window size, resizes, exit code', async () => {
    const t = new Term(['run', '-it', '--name', 'it1', 'busybox', 'sh']);
    try {
      await t.waitFor(/\/ #/);
      t.type('echo typed-$((6*7))');
      await t.waitFor(/^typed-42$/m);
      t.type('stty size; tty');
      await t.waitFor(/^30 100$/m);
      await t.waitFor(/^\/dev\/pts\/0$/m);
      t.resize(120, 40);
      await t.typeUntil('stty size', /^40 120$/m);
      t.type('exit 5');
      await t.waitFor(/^EXIT=5$/m);
      assert.equal((await state('it1')).ExitCode, 5);
    } finally {
      t.close();
    }
  });

  test('the first output is laid out for the client window (ConsoleSize)', async () => {
    const t = new Term(['run', '-it', '--rm', 'busybox', 'stty', 'size'], 90, 25);
    try {
      await t.waitFor(/^25 90\r?$/m);
      await t.waitFor(/^EXIT=0$/m);
    } finally {
      t.close();
    }
  });

  test('ctrl-p ctrl-q detaches, docker attach re-attaches, the container keeps running', async () => {
    const t = new Term(['run', '-it', '--name', 'it2', 'busybox', 'sh']);
    try {
      await t.waitFor(/\/ #/);
      // `docker run` ends quietly with 0 on the detach keys (`docker attach` says "read escape sequence").
      t.keys('C-p', 'C-q');
      await t.waitFor(/^(\/ # )?EXIT=0$/m);
      assert.equal((await state('it2')).Running, true);
    } finally {
      t.close();
    }
    const a = new Term(['attach', 'it2']);
    try {
      await sleep(500);
      a.type('echo attached-$((1+1))');
      await a.waitFor(/^attached-2$/m);
      a.keys('C-p', 'C-q');
      await a.waitFor(/read escape sequence/);
      assert.equal((await state('it2')).Running, true);
    } finally {
      a.close();
    }
    const c = new Term(['attach', '--detach-keys', 'ctrl-x,x', 'it2']);
    try {
      await sleep(500);
      c.type('echo again-$((2+2))');
      await c.waitFor(/^again-4$/m);
      c.keys('C-x', 'x');
      await c.waitFor(/^EXIT=/m);
      assert.equal((await state('it2')).Running, true);
    } finally {
      c.close();
    }
  });

  test('server-side detachKeys: the attach closes, the container keeps running', async () => {
    const r = await b.docker(['run', '-dit', '--name', 'it3', 'busybox', 'sh']);
    assert.equal(r.code, 0, show(r));
    const a = await rawAttach('it3', 'stream=1&stdin=1&stdout=1&stderr=1&detachKeys=ctrl-a,ctrl-b');
    a.sock.write('echo raw-$((3*3))\r');
    await waitFor('echo output', () => a.data().includes('raw-9'));
    // An unrelated ctrl-a is passed on; then the sequence detaches.
    a.sock.write(Buffer.from([0x01, 0x41, 0x01, 0x02]));
    await a.closed;
    assert.equal((await state('it3')).Running, true);
    // Badly formed keys are refused before the upgrade.
    const sock = net.createConnection(b.sock);
    let resp = '';
    sock.on('data', (d) => { resp += d.toString(); });
    sock.write('POST /containers/it3/attach?stream=1&stdin=1&detachKeys=ctrl-%3F%3F HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n');
    await waitFor('400', () => resp.includes('\r\n\r\n'));
    assert.match(resp, /^HTTP\/1.1 400/);
    sock.destroy();
  });

  test('docker exec -it: a shell inside, -e and -w, window size, exit code', async () => {
    const r = await b.docker(['run', '-d', '--name', 'ex1', 'busybox', 'sleep', '3600']);
    assert.equal(r.code, 0, show(r));
    const t = new Term(['exec', '-it', '-e', 'FOO=bar', '-w', '/tmp', 'ex1', 'sh']);
    try {
      await t.waitFor(/\/tmp #/);
      t.type('echo in-exec $FOO $PWD');
      await t.waitFor(/^in-exec bar \/tmp$/m);
      t.type('stty size; echo term=$TERM');
      await t.waitFor(/^30 100$/m);
      await t.waitFor(/^term=xterm$/m);
      t.resize(110, 35);
      await t.typeUntil('stty size', /^35 110$/m);
      t.type('exit 2');
      await t.waitFor(/^EXIT=2$/m);
    } finally {
      t.close();
    }
  });

  test('-i without -t: stdin ends with the client input (StdinOnce)', async () => {
    let r = await b.docker(['run', '-i', '--rm', 'busybox', 'cat'], { input: 'hello\n' });
    assert.equal(r.code, 0, show(r));
    assert.equal(r.stdout, 'hello\n');
    r = await b.docker(['run', '-i', '--name', 'i2', 'busybox', 'sh', '-c', 'cat; echo end'], { input: 'one\ntwo\n' });
    assert.equal(r.code, 0, show(r));
    assert.equal(r.stdout, 'one\ntwo\nend\n');
  });

  test('docker attach to a non-TTY container', async () => {
    const r = await b.docker(['run', '-d', '--name', 'nt', 'busybox', 'sh', '-c', 'while true; do echo tick; echo tock >&2; sleep 0.2; done']);
    assert.equal(r.code, 0, show(r));
    const a = spawnDocker(b, ['attach', '--sig-proxy=false', 'nt']);
    try {
      await a.waitForStdout(/tick\ntick\n/);
      await waitFor('stderr', () => a.stderr().includes('tock'));
    } finally {
      a.kill();
      await a.exited;
    }
    assert.equal((await state('nt')).Running, true);
  });

  test('attach over a websocket', async () => {
    const r = await b.docker(['run', '-di', '--name', 'wsc', 'busybox', 'sh', '-c', 'echo ready; cat']);
    assert.equal(r.code, 0, show(r));
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const WebSocket = require('ws');
    const ws = new WebSocket(`ws+unix://${b.sock}:/v1.45/containers/wsc/attach/ws?stream=1&stdin=1&stdout=1&stderr=1&logs=1`);
    let got = '';
    const binaries: boolean[] = [];
    ws.on('message', (d: Buffer, isBinary: boolean) => { got += d.toString(); binaries.push(isBinary); });
    await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
    await waitFor('logs replayed', () => got.includes('ready\n'));
    ws.send('over-ws\n');
    await waitFor('echo of stdin', () => got.includes('over-ws\n'));
    assert.ok(!got.includes('\u0001\u0000\u0000\u0000'), 'output is not framed');
    assert.ok(binaries.every(Boolean), 'binary messages from API 1.28 on');
    const closed = new Promise((resolve) => ws.once('close', resolve));
    await b.docker(['kill', 'wsc']);
    await closed;
  });
});
