// Log drivers with the docker CLI: json-file (attributes, rotation as Docker names it, gzipped rotated
// files), local (rotated, compressed, read back), none (nothing written; `docker logs` refused as Docker
// refuses it), syslog (to a UDP port and a unix socket this test listens on, with tag, facility and
// format; a local cache for `docker logs`), unknown drivers and options refused at create with nothing
// made, and daemon.json's log-driver/log-opts as defaults.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { berthdForFile } from '../helpers/file';
import { api, dockerCli, show, spawnDocker, waitFor } from '../helpers/clients';

const b = berthdForFile({ fixtures: ['busybox'] });
const { ok, fails } = dockerCli(() => b, { trim: true });

let work: string;
before(() => {
  work = mkdtempSync(path.join(os.tmpdir(), 'berth-logdrv-'));
});
after(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

const dirOf = (id: string) => path.join(b.dataRoot, 'containers', id);
/** docker run -d, then docker wait: the container's ID once it has exited. */
async function runToEnd(...args: string[]): Promise<string> {
  const id = await ok('run', '-d', ...args);
  await ok('wait', id);
  return id;
}
const lines = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => `line-${from + i}`);
/** A busybox shell loop printing line-0 … line-(n-1), `pause` seconds apart (0: as fast as it can). */
const printLoop = (n: number, pause = '0') =>
  `i=0; while [ $i -lt ${n} ]; do echo line-$i; ${pause === '0' ? '' : `sleep ${pause};`} i=$((i+1)); done`;

/** Every entry of a log file the shim wrote (gunzipped when it is a .gz), as parsed JSON. */
function entries(file: string): Array<{ log: string; stream: string; time: string; attrs?: Record<string, string> }> {
  let data = readFileSync(file);
  if (file.endsWith('.gz')) data = zlib.gunzipSync(data);
  return data.toString('utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

/** The numbers of the line-N lines in `text`, checked to be one run without gaps ending at `last`. */
function run(text: string, last: number): number[] {
  const got = text.split('\n').filter(Boolean).map((l) => Number(/^line-(\d+)$/.exec(l)?.[1] ?? NaN));
  assert.ok(got.length > 0 && got.every((n, k) => n === got[0] + k), `one run of lines: ${text.slice(0, 400)}`);
  assert.equal(got[got.length - 1], last);
  return got;
}

test('json-file: labels, env and tag as attrs (shown by --details); rotation named as Docker names it', async () => {
  const id = await ok('run', '--name', 'jf', '--label', 'team=infra', '--label', 'other=x', '-e', 'STAGE=prod', '-e', 'SECRET=no',
    '--log-opt', 'max-size=1k', '--log-opt', 'max-file=3', '--log-opt', 'labels=team', '--log-opt', 'env=STAGE',
    '--log-opt', 'tag={{.Name}}/{{.ID}}', '-d', 'busybox', 'sh', '-c', printLoop(200));
  await ok('wait', id);
  const dir = dirOf(id);
  const base = `${id}-json.log`;
  const files = readdirSync(dir).filter((f) => f.startsWith(base)).sort();
  assert.deepEqual(files, [base, `${base}.1`, `${base}.2`], 'max-file=3 keeps the file and two rotated ones');
  for (const f of files) {
    assert.ok(readFileSync(path.join(dir, f)).length <= 1000, `${f} is within max-size (1k = 1000 bytes, as Docker's units)`);
    for (const e of entries(path.join(dir, f))) {
      assert.deepEqual(e.attrs, { team: 'infra', STAGE: 'prod', tag: `jf/${id.slice(0, 12)}` });
      assert.equal(e.stream, 'stdout');
    }
  }
  // The files hold one run of lines, oldest in .2, and docker logs gives back exactly that run.
  const onDisk = [`${base}.2`, `${base}.1`, base].flatMap((f) => entries(path.join(dir, f)).map((e) => e.log)).join('');
  const got = run(await ok('logs', 'jf'), 199);
  assert.ok(got[0] > 0, 'older lines were rotated away');
  assert.equal(onDisk.trimEnd(), (await ok('logs', 'jf')));
  const details = (await ok('logs', '--details', '--tail', '1', 'jf'));
  assert.equal(details, `STAGE=prod,tag=jf%2F${id.slice(0, 12)},team=infra line-199`);
  assert.equal(JSON.parse(await ok('inspect', '-f', '{{json .LogPath}}', 'jf')), path.join(dir, base));
  await ok('rm', 'jf');
});

test('json-file with compress: rotated files are gzipped as <id>-json.log.N.gz and read back', async () => {
  const id = await ok('run', '--name', 'jfz', '--log-opt', 'max-size=1k', '--log-opt', 'max-file=4', '--log-opt', 'compress=true',
    '-d', 'busybox', 'sh', '-c', printLoop(300));
  await ok('wait', id);
  const dir = dirOf(id);
  const base = `${id}-json.log`;
  // The newest rotated file is compressed in the background: wait until its plain copy is gone.
  const files = await waitFor('compressed rotated files', () => {
    const fs = readdirSync(dir).filter((f) => f.startsWith(base)).sort();
    return fs.length === 4 && !fs.includes(`${base}.1`) ? fs : null;
  });
  assert.deepEqual(files, [base, `${base}.1.gz`, `${base}.2.gz`, `${base}.3.gz`]);
  const onDisk = [`${base}.3.gz`, `${base}.2.gz`, `${base}.1.gz`, base].flatMap((f) => entries(path.join(dir, f)).map((e) => e.log));
  const all = await ok('logs', 'jfz');
  assert.equal(all, onDisk.join('').trimEnd());
  const got = run(all, 299);
  assert.ok(got[0] > 0);
  // --tail reaches back into the compressed files.
  const tail = await ok('logs', '--tail', String(got.length - 2), 'jfz');
  assert.deepEqual(tail.split('\n'), lines(got[0] + 2, 300));
  await ok('rm', 'jfz');
});

test('local: rotated, compressed files that docker logs reads, also with -f across rotations', async () => {
  const id = await ok('create', '--name', 'loc', '--log-driver', 'local', '--log-opt', 'max-size=2k', '--log-opt', 'max-file=3',
    'busybox', 'sh', '-c', `sleep 1; ${printLoop(300, '0.01')}`);
  const ins = JSON.parse(await ok('inspect', 'loc'))[0];
  assert.equal(ins.HostConfig.LogConfig.Type, 'local');
  assert.equal(ins.LogPath, '', 'the local driver\'s files are not an interface: no LogPath, as Docker');
  await ok('start', 'loc');
  // Following from the start: every line arrives once and in order although the files rotate about ten
  // times and only three are kept, and -f ends when the container does.
  const f = spawnDocker(b, ['logs', '-f', 'loc']);
  const end = await Promise.race([f.exited, new Promise<null>((r) => setTimeout(() => r(null), 60000))]);
  assert.ok(end, 'docker logs -f ended with the container');
  assert.equal(end!.code, 0, f.stderr());
  assert.deepEqual(f.stdout().trimEnd().split('\n'), lines(0, 300));
  const dir = path.join(dirOf(id), 'local-logs');
  const files = await waitFor('compressed local files', () => {
    const fs = readdirSync(dir).sort();
    return fs.length === 3 && !fs.includes('container.log.1') ? fs : null;
  });
  assert.deepEqual(files, ['container.log', 'container.log.1.gz', 'container.log.2.gz']);
  assert.ok(!existsSync(path.join(dirOf(id), `${id}-json.log`)), 'no json-file log besides');
  const got = run(await ok('logs', 'loc'), 299);
  assert.ok(got[0] > 0);
  assert.equal(await ok('logs', '--tail', '2', 'loc'), 'line-298\nline-299');
  await ok('rm', 'loc');
});

test('local: defaults of 20 MB, 5 files, compressed; refuses compression with one file', async () => {
  const id = await runToEnd('--name', 'locd', '--log-driver', 'local', 'busybox', 'sh', '-c', 'echo out; echo err >&2');
  assert.deepEqual(readdirSync(path.join(dirOf(id), 'local-logs')), ['container.log']);
  const r = await b.docker(['logs', 'locd']);
  assert.equal(r.code, 0, show(r));
  assert.equal(r.stdout, 'out\n');
  assert.equal(r.stderr, 'err\n');
  await ok('rm', 'locd');
  await fails(/compression cannot be enabled when max file count is 1/, 'create', '--log-driver', 'local', '--log-opt', 'max-file=1', 'busybox');
});

test('none: nothing is written, and docker logs answers as Docker does', async () => {
  const id = await runToEnd('--name', 'nolog', '--log-driver', 'none', 'busybox', 'sh', '-c', printLoop(100));
  const dir = dirOf(id);
  const logs = readdirSync(dir).filter((f) => /log/.test(f));
  assert.deepEqual(logs, [], 'no log file of any driver');
  await fails(/Error response from daemon: configured logging driver does not support reading/, 'logs', 'nolog');
  const r = await api(b, 'GET', '/containers/nolog/logs?stdout=1');
  assert.equal(r.status, 501);
  assert.equal(r.json().message, 'configured logging driver does not support reading');
  assert.equal(await ok('inspect', '-f', '{{.HostConfig.LogConfig.Type}}|{{.LogPath}}', 'nolog'), 'none|');
  await ok('rm', 'nolog');
});

/** A syslog receiver: UDP on a loopback port, or a unix stream socket (newline-framed). */
interface Receiver {
  address: string;
  messages(): string[];
  close(): Promise<void>;
}

async function udpReceiver(): Promise<Receiver> {
  const sock = dgram.createSocket('udp4');
  const got: string[] = [];
  sock.on('message', (m) => got.push(m.toString('utf8')));
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  return {
    address: `udp://127.0.0.1:${sock.address().port}`,
    messages: () => got,
    close: () => new Promise<void>((r) => sock.close(() => r())),
  };
}

/** A stream receiver (newline-framed messages): on a unix socket path, or on a loopback TCP port. */
async function unixReceiver(p: string): Promise<Receiver> {
  return streamReceiver(p);
}

async function streamReceiver(p?: string): Promise<Receiver> {
  let buf = '';
  const conns = new Set<net.Socket>();
  const srv = net.createServer((c) => {
    conns.add(c);
    c.on('data', (d) => { buf += d.toString('utf8'); });
    c.on('close', () => conns.delete(c));
    c.on('error', () => {});
  });
  await new Promise<void>((r) => (p ? srv.listen(p, () => r()) : srv.listen(0, '127.0.0.1', () => r())));
  return {
    address: p ? `unix://${p}` : `tcp://127.0.0.1:${(srv.address() as net.AddressInfo).port}`,
    messages: () => buf.split(/(?<=\n)/).filter((m) => m.endsWith('\n')),
    close: () => new Promise<void>((r) => {
      for (const c of conns) c.destroy();
      srv.close(() => r());
    }),
  };
}

test('syslog over UDP: facility, tag, severity per stream; the shim keeps sending while berthd is down', async () => {
  const rx = await udpReceiver();
  try {
    const id = await ok('run', '-d', '--name', 'sl', '--log-driver', 'syslog', '--log-opt', `syslog-address=${rx.address}`,
      '--log-opt', 'syslog-facility=local3', '--log-opt', 'tag=web-{{.Name}}',
      'busybox', 'sh', '-c', 'echo out-line; echo err-line >&2; sleep 4; echo after-restart');
    // local3 = 19: info (stdout) is <158>, err (stderr) <155>; Docker's default format has no hostname.
    const form = (pri: number, text: string) => new RegExp(`^<${pri}>[A-Z][a-z]{2} [ \\d]\\d \\d\\d:\\d\\d:\\d\\d web-sl\\[\\d+\\]: ${text}\\n$`);
    await waitFor('two syslog messages', () => rx.messages().length >= 2 || null);
    const [m1, m2] = [...rx.messages()].sort((a, c) => (a.includes('out-line') ? -1 : c.includes('out-line') ? 1 : 0));
    assert.match(m1, form(158, 'out-line'));
    assert.match(m2, form(155, 'err-line'));
    // berthd goes away; the container's shim still sends.
    await b.stop();
    try {
      await waitFor('a message sent while berthd is down', () => rx.messages().some((m) => m.includes('after-restart')) || null, 15000);
    } finally {
      await b.restart();
    }
    await ok('wait', id);
    assert.match(rx.messages().find((m) => m.includes('after-restart'))!, form(158, 'after-restart'));
    // The local cache keeps docker logs working (Docker's dual logging).
    const r = await b.docker(['logs', 'sl']);
    assert.equal(r.stdout, 'out-line\nafter-restart\n', show(r));
    assert.equal(r.stderr, 'err-line\n');
    assert.equal(await ok('inspect', '-f', '{{.LogPath}}', 'sl'), '');
    await ok('rm', 'sl');
  } finally {
    await rx.close();
  }
});

test('syslog over a unix socket: rfc5424 with the short ID as tag; cache-disabled makes docker logs refuse', async () => {
  const rx = await unixReceiver(path.join(work, 'syslog.sock'));
  try {
    const id = await runToEnd('--name', 'slu', '--log-driver', 'syslog', '--log-opt', `syslog-address=${rx.address}`,
      '--log-opt', 'syslog-format=rfc5424', '--log-opt', 'cache-disabled=true', 'busybox', 'sh', '-c', 'echo one; echo two');
    const short = id.slice(0, 12);
    await waitFor('two syslog messages', () => rx.messages().length >= 2 || null);
    // daemon (3): info is <30>. RFC 5424: version 1, timestamp, host, APP-NAME and MSGID both the tag.
    const form = (text: string) => new RegExp(`^<30>1 \\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d(Z|[+-]\\d\\d:\\d\\d) ${os.hostname()} ${short} \\d+ ${short} - ${text}\\n$`);
    assert.match(rx.messages()[0], form('one'));
    assert.match(rx.messages()[1], form('two'));
    await fails(/configured logging driver does not support reading/, 'logs', 'slu');
    assert.ok(!readdirSync(dirOf(id)).some((f) => /log/.test(f)), 'no cache file when it is disabled');
    await ok('rm', 'slu');
    // A path that exists at create but where nobody listens at start: the start fails, as Docker's.
    const dead = path.join(work, 'dead.sock');
    writeFileSync(dead, '');
    await ok('create', '--name', 'sld', '--log-driver', 'syslog', '--log-opt', `syslog-address=unix://${dead}`, 'busybox', 'echo', 'never');
    await fails(/failed to initialize logging driver: dial unix .*dead\.sock: connect: connection refused/, 'start', 'sld');
    assert.equal(await ok('inspect', '-f', '{{.State.Running}}', 'sld'), 'false');
    await ok('rm', 'sld');
  } finally {
    await rx.close();
  }
});

test('syslog over TCP: rfc5424micro, stderr with severity err, name tag', async () => {
  const rx = await streamReceiver();
  try {
    await runToEnd('--name', 'slt', '--log-driver', 'syslog', '--log-opt', `syslog-address=${rx.address}`, '--log-opt', 'syslog-format=rfc5424micro',
      '--log-opt', 'syslog-facility=user', '--log-opt', 'tag={{.Name}}', 'busybox', 'sh', '-c', 'echo to-err >&2');
    await waitFor('a syslog message over TCP', () => rx.messages().length >= 1 || null);
    // user (1), err (3): <11>.
    assert.match(rx.messages()[0], new RegExp(`^<11>1 \\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d(\\.\\d{1,6})?(Z|[+-]\\d\\d:\\d\\d) \\S+ slt \\d+ slt - to-err\\n$`));
    await ok('rm', 'slt');
  } finally {
    await rx.close();
  }
});

test('unknown drivers, options and values are refused at create with Docker\'s messages, and nothing is made', async () => {
  const before = await ok('ps', '-aq');
  await fails(/logger: no log driver named 'nosuch' is registered/, 'run', '--log-driver', 'nosuch', 'busybox', 'true');
  await fails(/unknown log opt 'foo' for json-file log driver/, 'run', '--log-opt', 'foo=bar', 'busybox', 'true');
  await fails(/unknown log opt 'max-size' for syslog log driver/, 'create', '--log-driver', 'syslog', '--log-opt', 'max-size=1m', 'busybox');
  await fails(/unknown log opt 'bogus' for log driver local/, 'create', '--log-driver', 'local', '--log-opt', 'bogus=1', 'busybox');
  await fails(/compress cannot be true when max-file is less than 2 or max-size is not set/, 'create', '--log-opt', 'compress=true', 'busybox');
  await fails(/max-file cannot be less than 1/, 'create', '--log-opt', 'max-file=0', '--log-opt', 'max-size=1m', 'busybox');
  await fails(/invalid syslog facility/, 'create', '--log-driver', 'syslog', '--log-opt', 'syslog-facility=nope', 'busybox');
  await fails(/Invalid syslog format/, 'create', '--log-driver', 'syslog', '--log-opt', 'syslog-format=json', 'busybox');
  await fails(/syslog-address should be in form proto:\/\/address, got 127.0.0.1:514/, 'create', '--log-driver', 'syslog',
    '--log-opt', 'syslog-address=127.0.0.1:514', 'busybox');
  await fails(/stat \/nonexistent\/log.sock: no such file or directory/, 'create', '--log-driver', 'syslog',
    '--log-opt', 'syslog-address=unix:///nonexistent/log.sock', 'busybox');
  await fails(/logger: logging mode not supported: sometimes/, 'create', '--log-opt', 'mode=sometimes', 'busybox');
  const r = await api(b, 'POST', '/containers/create?name=badlog', { body: { Image: 'busybox', HostConfig: { LogConfig: { Type: 'gelfish', Config: {} } } } });
  assert.equal(r.status, 400);
  assert.equal(r.json().message, "logger: no log driver named 'gelfish' is registered");
  assert.equal(await ok('ps', '-aq'), before, 'no container was made');
  assert.equal((await api(b, 'GET', '/containers/badlog/json')).status, 404);
});

describe('daemon.json log-driver and log-opts', () => {
  const d = berthdForFile({ fixtures: ['busybox'], start: { daemonJson: { 'log-driver': 'local', 'log-opts': { 'max-size': '1k', 'max-file': '2', compress: 'false' } } } });

  test('are the defaults of containers, shown by docker info and inspect; another driver does not take them', async () => {
    const dk = dockerCli(() => d, { trim: true });
    assert.equal(await dk.ok('info', '-f', '{{.LoggingDriver}}'), 'local');
    const id = await dk.ok('run', '-d', '--name', 'dflt', 'busybox', 'sh', '-c', printLoop(100));
    await dk.ok('wait', id);
    const lc = JSON.parse(await dk.ok('inspect', '-f', '{{json .HostConfig.LogConfig}}', 'dflt'));
    assert.deepEqual(lc, { Type: 'local', Config: { 'max-size': '1k', 'max-file': '2', compress: 'false' } });
    const dir = path.join(d.dataRoot, 'containers', id, 'local-logs');
    assert.deepEqual(readdirSync(dir).sort(), ['container.log', 'container.log.1'], 'max-file=2 from daemon.json, uncompressed');
    run(await dk.ok('logs', 'dflt'), 99);
    // Another driver named at create does not inherit the local driver's options.
    const jf = await dk.ok('run', '-d', '--name', 'jf2', '--log-driver', 'json-file', 'busybox', 'echo', 'hi');
    await dk.ok('wait', jf);
    assert.deepEqual(JSON.parse(await dk.ok('inspect', '-f', '{{json .HostConfig.LogConfig}}', 'jf2')), { Type: 'json-file', Config: {} });
    assert.ok(existsSync(path.join(d.dataRoot, 'containers', jf, `${jf}-json.log`)));
    assert.equal(await dk.ok('logs', 'jf2'), 'hi');
    await dk.ok('rm', 'dflt', 'jf2');
  });
});
