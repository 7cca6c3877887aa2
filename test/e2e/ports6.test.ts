// Published ports of containers without IPv6, as Docker 28 has them (issue 11): `-p 8080:80` is published
// on 0.0.0.0 and on [::] with one port number, and [::]'s connections and datagrams are relayed by berthd to
// the container's IPv4 address (Docker's docker-proxy does that), UDP answers from the address the client
// sent to. Not with daemon.json "userland-proxy": false (nothing relays then, as Docker starts no
// docker-proxy), nor on a host without IPv6. And the relay under clients that misbehave: idle, half-closing,
// resetting, or opening connections without end, against a berthd with a low open-file limit; stop ends its
// listeners and connections.
//
// berthd runs in a network namespace this file makes, with a peer namespace standing in for another host on
// an IPv6 link: every listener and client lives in those two namespaces.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { berthdForFile } from '../helpers/file';
import { dockerCli, show, waitFor } from '../helpers/clients';
import { runCmd } from '../helpers/berthd';
import { TestNetns } from '../helpers/netns';

const host = new TestNetns('berth-p6');
const peer = new TestNetns('berth-p6p');
const nsFile = host.file;
const peerFile = peer.file;
/** The link between berthd's namespace (HOST6) and the other host (PEER6). */
const HOST6 = 'fd00:b6:0:1::1';
const PEER6 = 'fd00:b6:0:1::2';

async function must(cmd: string, args: string[]): Promise<void> {
  const r = await runCmd(cmd, args);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${show(r)}`);
}

const b = berthdForFile({
  fixtures: ['busybox'],
  start: async () => {
    await host.make();
    await peer.make();
    // The veth is made inside berthd's namespace and its peer end moved straight to the other host's: the
    // machine's own namespace never holds either end.
    await must('ip', ['-n', host.name, 'link', 'add', 'p6h', 'type', 'veth', 'peer', 'name', 'p6p', 'netns', peer.name]);
    await must('ip', ['-n', host.name, 'addr', 'add', `${HOST6}/64`, 'dev', 'p6h', 'nodad']);
    await must('ip', ['-n', peer.name, 'addr', 'add', `${PEER6}/64`, 'dev', 'p6p', 'nodad']);
    await must('ip', ['-n', host.name, 'link', 'set', 'p6h', 'up']);
    await must('ip', ['-n', peer.name, 'link', 'set', 'p6p', 'up']);
    return { netns: nsFile };
  },
});
// Registered after berthdForFile's: runs once the daemon is gone.
after(async () => {
  await host.remove();
  await peer.remove();
});

const { ok, fails } = dockerCli(() => b);
const inspect = async (name: string) => JSON.parse(await ok('inspect', name))[0];
const portsOf = async (name: string, key: string) =>
  ((await inspect(name)).NetworkSettings.Ports[key] as Array<{ HostIp: string; HostPort: string }> | null ?? []).map((p) => `${p.HostIp}|${p.HostPort}`);
const logTail = () => { try { return readFileSync(path.join(b.root, 'berthd.log'), 'utf8').slice(-3000); } catch { return ''; } };

/** The clients, run by node inside a namespace (node speaks IPv6 literals and UDP; busybox's wget crashes
 *  on this machine and its nc has no UDP). */
const CLIENT = String.raw`
const net = require('net'), dgram = require('dgram'), http = require('http');
const [mode, ...a] = process.argv.slice(2);
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const opened = (host, port) => new Promise((res) => {
  const s = net.connect({ host, port });
  s.on('connect', () => res(s));
  s.on('error', () => res(undefined));
});
if (mode === 'get') {
  http.get(a[0], { timeout: 4000 }, (r) => { let d = ''; r.on('data', (c) => d += c); r.on('end', () => out({ body: d })); })
    .on('timeout', function () { this.destroy(new Error('timeout')); }).on('error', (e) => out({ error: e.code || e.message }));
} else if (mode === 'udp') {
  const s = dgram.createSocket(a[0].includes(':') ? 'udp6' : 'udp4');
  let n = 0;
  const send = () => { if (n++ === 10) { out({ error: 'no answer' }); process.exit(0); } s.send(a[2], Number(a[1]), a[0]); };
  s.on('message', (m) => { out({ body: String(m) }); process.exit(0); });
  send(); setInterval(send, 500);
} else if (mode === 'udpfrom') {
  // host port text: the answer and the address it came from.
  const s = dgram.createSocket(a[0].includes(':') ? 'udp6' : 'udp4');
  let n = 0;
  const send = () => { if (n++ === 10) { out({ error: 'no answer' }); process.exit(0); } s.send(a[2], Number(a[1]), a[0]); };
  s.on('message', (m, r) => { out({ body: String(m), from: r.address + ' ' + r.port }); process.exit(0); });
  send(); setInterval(send, 500);
} else if (mode === 'udpflood') {
  // host port n: one datagram from each of n sockets (n client addresses to the relay), answers counted.
  const [host, port, n] = [a[0], Number(a[1]), Number(a[2])];
  // Sent 20 at a time, so that the datagrams reach the relay rather than overflow its socket's buffer. The
  // sockets stay open to the end: a port closed early could be taken again by a later one, which would be
  // the same client address to the relay.
  let answered = 0;
  (async () => {
    for (let i = 0; i < n; i++) {
      const s = dgram.createSocket('udp6');
      s.once('message', () => { answered++; });
      s.on('error', () => {});
      s.send('flow-' + i, port, host);
      if (i % 20 === 19) await new Promise((r) => setTimeout(r, 20));
    }
    setTimeout(() => { out({ answered }); process.exit(0); }, 2000);
  })();
} else if (mode === 'hostile') {
  // host port deadPort idle flood: idle connections stay open until the relay ends them; the others run
  // one after the other and are counted.
  const [host, port, deadPort, idleN, floodN] = [a[0], Number(a[1]), Number(a[2]), Number(a[3]), Number(a[4])];
  (async () => {
    const idle = (await Promise.all(Array.from({ length: idleN }, () => opened(host, port)))).filter(Boolean);
    let idleClosed = 0;
    for (const s of idle) s.on('close', () => { if (++idleClosed === idle.length) { out({ phase: 'idle-closed' }); process.exit(0); } });
    // Half-close: the request, then FIN; the answer must still come back.
    const halfClose = await new Promise((res) => {
      const s = net.connect({ host, port, allowHalfOpen: true }, () => s.end('GET / HTTP/1.0\r\n\r\n'));
      let d = ''; s.on('data', (c) => d += c); s.on('end', () => { s.end(); res(d); }); s.on('error', (e) => res('error ' + e.code));
    });
    // Resets in the middle of a request.
    for (let i = 0; i < 50; i++) {
      const s = await opened(host, port);
      if (!s) continue;
      s.write('GET / HT');
      await new Promise((r) => setTimeout(r, 2));
      s.resetAndDestroy();
    }
    // Many at once: each either stays open (relayed) or is reset by the relay; counted once that settles.
    const flood = await Promise.all(Array.from({ length: floodN }, () => opened(host, port)));
    const live = new Set(flood.filter(Boolean));
    for (const s of live) { s.on('error', () => {}); s.on('close', () => live.delete(s)); }
    let last = -1;
    for (let i = 0; i < 40 && live.size !== last; i++) { last = live.size; await new Promise((r) => setTimeout(r, 500)); }
    const held = live.size, connected = flood.filter(Boolean).length;
    // Held open until the test has looked at berthd (a line on stdin).
    out({ phase: 'flooded', held, connected });
    await new Promise((r) => process.stdin.once('data', r));
    for (const s of live) s.destroy();
    // A port whose container side refuses: the relay must close each client connection.
    const dead = (await Promise.all(Array.from({ length: 100 }, () => opened(host, deadPort)))).filter(Boolean);
    const deadClosed = await Promise.all(dead.map((s) => new Promise((r) => { s.on('error', () => {}); s.on('close', () => r(1)); setTimeout(() => r(0), 10000); })));
    out({ phase: 'ready', idle: idle.length, halfClose, deadOpened: dead.length, deadClosed: deadClosed.reduce((x, y) => x + y, 0) });
  })();
  setTimeout(() => { out({ phase: 'timeout' }); process.exit(0); }, 120000);
}
`;

const clientFile = () => path.join(b.root, 'client.js');
function writeClient(): void {
  writeFileSync(clientFile(), CLIENT);
}

/** Runs the client once in a namespace and returns its one JSON line. */
async function client(nsf: string, ...args: string[]): Promise<{ body?: string; error?: string }> {
  writeClient();
  const r = await runCmd('nsenter', [`--net=${nsf}`, '--', process.execPath, clientFile(), ...args], { timeoutMs: 20000 });
  if (r.code !== 0) throw new Error(`client ${args.join(' ')}: ${show(r)}`);
  return JSON.parse(r.stdout.trim().split('\n')[0]);
}

const want = /hello from [0-9a-f]{12}/;
async function get(nsf: string, url: string): Promise<string> {
  const r = await client(nsf, 'get', url);
  if (r.error !== undefined) throw new Error(`GET ${url} from ${nsf}: ${r.error}\n--- berthd.log\n${logTail()}`);
  return r.body!;
}

const HTTPD = ['sh', '-c', 'mkdir -p /www && echo "hello from $(hostname)" > /www/index.html && exec httpd -f -p 80 -h /www'];
/** An IPv4-only UDP echo, by the host's python (busybox has no UDP server), read-only through a bind. */
const UDP_ECHO = ['-v', '/:/host:ro', 'busybox', 'chroot', '/host', '/usr/bin/python3', '-c',
  'import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ns.bind(("0.0.0.0", 5300))\n' +
  'while True:\n    d, a = s.recvfrom(2048)\n    s.sendto(b"echo:" + d, a)\n'];

/** berthd's open descriptors, by its /proc (nsenter execs berthd, so the child's pid is berthd's). */
const fdsOfBerthd = () => readdirSync(`/proc/${b.proc.pid}/fd`).length;

describe('an IPv4-only container published without a host address', () => {
  test('-p 18080:80 and -p 80: 0.0.0.0 and [::] with one port number each; [::1] and an IPv6 client outside reach it, TCP and UDP; a restart keeps the relay', async () => {
    await ok('run', '-d', '--name', 'web4', '-p', '18080:80', '-p', '80', '-p', '[::]:18083:80', 'busybox', ...HTTPD);
    const c = await inspect('web4');
    assert.equal(c.NetworkSettings.Networks.bridge.GlobalIPv6Address, '', 'the default bridge has no IPv6 here');
    const ports = await portsOf('web4', '80/tcp');
    const random = ports.find((p) => p.startsWith('0.0.0.0|') && p !== '0.0.0.0|18080')!.split('|')[1];
    assert.deepEqual(ports.sort(), ['0.0.0.0|18080', `0.0.0.0|${random}`, '::|18080', `::|${random}`, '::|18083'].sort(), ports.join(' '));
    // As the CLI shows them (docker port, docker ps).
    const dp = (await ok('port', 'web4', '80')).trim().split('\n').sort();
    assert.deepEqual(dp, ['0.0.0.0:18080', `0.0.0.0:${random}`, '[::]:18080', `[::]:${random}`, '[::]:18083'].sort(), dp.join(' '));
    const ps = await ok('ps', '--filter', 'name=web4', '--format', '{{.Ports}}');
    assert.match(ps, /\[::\]:18080->80\/tcp/, ps);
    assert.match(ps, /0\.0\.0\.0:18080->80\/tcp/, ps);
    // The [::] listener is v6-only, in berthd's namespace.
    const ss = await runCmd('nsenter', [`--net=${nsFile}`, '--', 'ss', '-Hltn', 'sport = :18080']);
    assert.match(ss.stdout, /\[::\]:18080/, show(ss));
    assert.match(ss.stdout, /0\.0\.0\.0:18080/, show(ss));

    await waitFor('httpd answers', async () => want.test(await get(nsFile, 'http://127.0.0.1:18080/').catch(() => '')), 15000, 200);
    assert.match(await get(nsFile, 'http://[::1]:18080/'), want);
    assert.match(await get(nsFile, `http://[::1]:${random}/`), want);
    assert.match(await get(nsFile, `http://[${HOST6}]:18080/`), want);
    assert.match(await get(peerFile, `http://[${HOST6}]:18080/`), want, 'an IPv6 client on another host');
    assert.match(await get(peerFile, `http://[${HOST6}]:${random}/`), want);
    assert.match(await get(peerFile, `http://[${HOST6}]:18083/`), want, '-p [::]:18083:80, IPv6 only');
    assert.equal((await client(nsFile, 'get', 'http://127.0.0.1:18083/')).error, 'ECONNREFUSED');

    await ok('run', '-d', '--name', 'echo4', '-p', '15300:5300/udp', ...UDP_ECHO);
    assert.deepEqual((await portsOf('echo4', '5300/udp')).sort(), ['0.0.0.0|15300', '::|15300']);
    const u1 = await waitFor('UDP echo over [::1]', async () => (await client(nsFile, 'udp', '::1', '15300', 'hi6')).body, 20000, 200);
    assert.equal(u1, 'echo:hi6');
    assert.equal((await client(peerFile, 'udp', HOST6, '15300', 'from-peer')).body, 'echo:from-peer');
    assert.equal((await client(nsFile, 'udp', '127.0.0.1', '15300', 'hi4')).body, 'echo:hi4');

    // A restart of berthd (the containers live on): the [::] relays are held again.
    await b.stop();
    await b.restart();
    assert.match(await get(peerFile, `http://[${HOST6}]:18080/`), want);
    assert.equal((await client(peerFile, 'udp', HOST6, '15300', 'again')).body, 'echo:again');

    // A port of [::] another program holds: the start fails as Docker's does, and nothing stays mapped.
    writeClient();
    const squat = spawn('nsenter', [`--net=${nsFile}`, '--', process.execPath, '-e',
      "require('net').createServer().listen({ host: '::', port: 18082, ipv6Only: true }, () => console.log('up'))"], { stdio: ['ignore', 'pipe', 'ignore'] });
    try {
      await new Promise((r) => squat.stdout!.once('data', r));
      const r = await fails(/failed to bind host port for \[::\]:18082:172\.\d+\.\d+\.\d+:80\/tcp: address already in use/, 'run', '-d', '--name', 'squatted', '-p', '18082:80', 'busybox', ...HTTPD);
      assert.ok(r.code !== 0);
      assert.equal((await inspect('squatted')).State.Running, false);
      const held = await runCmd('nsenter', [`--net=${nsFile}`, '--', 'ss', '-Hltn', 'sport = :18082']);
      assert.doesNotMatch(held.stdout, /0\.0\.0\.0:18082/, 'the IPv4 half was let go: ' + show(held));
      // A range takes its first port free on both families: 18082 is held on [::] by that program, 18083 on
      // [::] by web4.
      await ok('run', '-d', '--name', 'ranged', '-p', '18082-18084:80', 'busybox', ...HTTPD);
      assert.deepEqual((await portsOf('ranged', '80/tcp')).sort(), ['0.0.0.0|18084', '::|18084']);
    } finally {
      squat.kill('SIGKILL');
    }
    await ok('rm', '-f', 'squatted', 'ranged');

    await ok('rm', '-f', 'web4', 'echo4');
    const gone = await client(nsFile, 'get', 'http://[::1]:18080/');
    assert.equal(gone.error, 'ECONNREFUSED', 'the [::] listener went with the container');
  });
});

describe('UDP answers', () => {
  test('the relay answers from the host address and port the client sent to, whichever of the interface\'s two addresses that is', async () => {
    // With a second address on the link, the kernel's own choice for answers to the peer is the newer
    // address: a datagram to the first one must still be answered from the first one.
    const second = 'fd00:b6:0:1::3';
    await must('ip', ['-n', host.name, 'addr', 'add', `${second}/64`, 'dev', 'p6h', 'nodad']);
    try {
      await ok('run', '-d', '--name', 'echoaddr', '-p', '15320:5300/udp', ...UDP_ECHO);
      const first = await waitFor('UDP echo', async () => { const r = await client(peerFile, 'udpfrom', HOST6, '15320', 'one') as { body?: string; from?: string }; return r.body ? r : undefined; }, 20000, 200);
      assert.deepEqual(first, { body: 'echo:one', from: `${HOST6} 15320` });
      const r = await client(peerFile, 'udpfrom', second, '15320', 'two') as { body?: string; from?: string };
      assert.deepEqual(r, { body: 'echo:two', from: `${second} 15320` }, 'from the address the datagram was sent to, not the one the kernel picks');
      const lo = await client(nsFile, 'udpfrom', '::1', '15320', 'three') as { body?: string; from?: string };
      assert.deepEqual(lo, { body: 'echo:three', from: '::1 15320' });
      await ok('rm', '-f', 'echoaddr');
    } finally {
      await must('ip', ['-n', host.name, 'addr', 'del', `${second}/64`, 'dev', 'p6h']);
    }
  });
});

describe('the relay under clients that misbehave', () => {
  test('idle, half-closing, resetting and flooding clients on a berthd limited to 1024 open files: it answers throughout, holds no descriptor after, and stop ends the idle connections and the listener', async (t) => {
    const pid = b.proc.pid!;
    const limits = readFileSync(`/proc/${pid}/limits`, 'utf8');
    const soft = /^Max open files\s+(\d+)/m.exec(limits)![1];
    // The relays may take half of it: 512 descriptors, 256 connections.
    await must('prlimit', ['--pid', String(pid), '--nofile=1024:']);
    try {
      await ok('run', '-d', '--name', 'hostile', '-p', '18090:80', '-p', '18091:81', 'busybox', ...HTTPD);
      await waitFor('httpd answers', async () => want.test(await get(nsFile, 'http://[::1]:18090/').catch(() => '')), 15000, 200);
      const base = fdsOfBerthd();

      writeClient();
      const cl = spawn('nsenter', [`--net=${nsFile}`, '--', process.execPath, clientFile(), 'hostile', '::1', '18090', '18091', '20', '400'],
        { stdio: ['pipe', 'pipe', 'pipe'] });
      let text = '';
      cl.stdout!.on('data', (d) => { text += d; });
      cl.stderr!.on('data', (d) => { text += d; });
      const line = (phase: string) => waitFor(`client phase ${phase}`, () => text.split('\n').filter(Boolean).map((l) => { try { return JSON.parse(l); } catch { return {}; } })
        .find((o) => o.phase === phase || o.phase === 'timeout'), 90000, 100);
      try {
        // The flood: the kernel completes every handshake; the relay keeps what its budget allows (the 20
        // idle ones count too) and resets the rest. While they are held, berthd answers its API and keeps
        // below its limit.
        const f = await line('flooded');
        assert.equal(f.phase, 'flooded', text);
        assert.equal(f.connected, 400);
        assert.ok(f.held > 0 && f.held <= 256 - 20, `held ${f.held} of 400`);
        const inFlood = fdsOfBerthd();
        assert.ok(inFlood <= base + 512, `berthd holds ${inFlood} descriptors in the flood, ${base} before`);
        await ok('ps');
        assert.equal((await inspect('hostile')).State.Running, true);
        cl.stdin!.write('go\n');
        const r = await line('ready');
        assert.equal(r.phase, 'ready', text);
        t.diagnostic(`client: ${JSON.stringify({ ...f, ...r, halfClose: String(r.halfClose).length })}; berthd: ${base} descriptors before, ${inFlood} in the flood`);
        assert.equal(r.idle, 20);
        assert.match(r.halfClose, want, 'a client that half-closes still gets its answer');
        assert.equal(r.deadClosed, r.deadOpened, 'each connection to a refusing container port was closed');
        // berthd answers, and holds the idle connections' descriptors and no others.
        assert.match(await get(nsFile, 'http://[::1]:18090/'), want);
        const during = await waitFor('descriptors back', () => { const n = fdsOfBerthd(); return n <= base + 2 * 20 + 4 ? n : undefined; }, 15000, 200)
          .catch(() => fdsOfBerthd());
        assert.ok(during <= base + 2 * 20 + 4, `berthd holds ${during} descriptors, ${base} before`);

        await ok('stop', '-t', '1', 'hostile');
        const closed = await line('idle-closed');
        assert.equal(closed.phase, 'idle-closed', text);
        assert.equal((await client(nsFile, 'get', 'http://[::1]:18090/')).error, 'ECONNREFUSED');
        const afterStop = await waitFor('descriptors released', () => { const n = fdsOfBerthd(); return n <= base ? n : undefined; }, 15000, 200)
          .catch(() => fdsOfBerthd());
        assert.ok(afterStop <= base, `berthd holds ${afterStop} descriptors after stop, ${base} before`);
      } finally {
        if (cl.exitCode === null) cl.kill('SIGKILL');
      }
      await ok('rm', '-f', 'hostile');
    } finally {
      await must('prlimit', ['--pid', String(pid), `--nofile=${soft}:`]);
    }
  });

  test('UDP from many client addresses on a berthd limited to 1024 open files: the flows stay within its budget, the API answers, and stop releases every flow', async (t) => {
    const pid = b.proc.pid!;
    const soft = /^Max open files\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'))![1];
    await must('prlimit', ['--pid', String(pid), '--nofile=1024:']);
    try {
      await ok('run', '-d', '--name', 'udpflood', '-p', '15310:5300/udp', ...UDP_ECHO);
      await waitFor('UDP echo over [::1]', async () => (await client(nsFile, 'udp', '::1', '15310', 'hi')).body, 20000, 200);
      // That first flow lives on for a minute (a UDP flow ends when it goes quiet): it is in the baseline.
      const base = fdsOfBerthd();
      const r = await client(nsFile, 'udpflood', '::1', '15310', '700') as { answered?: number };
      const inFlood = fdsOfBerthd();
      t.diagnostic(`answered ${r.answered} of 700; berthd: ${base} descriptors before, ${inFlood} with the flows`);
      // A flow takes one descriptor: at most 512 - 1 more flows, the other clients' datagrams dropped.
      assert.ok(r.answered! > 0 && r.answered! <= 511, `answered ${r.answered} of 700`);
      assert.ok(inFlood <= base + 511, `berthd holds ${inFlood} descriptors with the flows, ${base} before`);
      await ok('ps');
      await ok('stop', '-t', '1', 'udpflood');
      const afterStop = await waitFor('flows released', () => { const n = fdsOfBerthd(); return n < base ? n : undefined; }, 15000, 200)
        .catch(() => fdsOfBerthd());
      assert.ok(afterStop < base, `berthd holds ${afterStop} descriptors after stop, ${base} with one flow before`);
      await ok('rm', 'udpflood');
    } finally {
      await must('prlimit', ['--pid', String(pid), `--nofile=${soft}:`]);
    }
  });
});

describe('daemon.json "userland-proxy": false starts no relay, as Docker then starts no docker-proxy', () => {
  /** berthd again with this daemon.json (the file's own settings: none but these). */
  const withConfig = async (cfg: object) => {
    await b.stop();
    writeFileSync(path.join(b.root, 'daemon.json'), JSON.stringify(cfg));
    await b.restart();
  };
  const refused = async (nsf: string, url: string) => {
    const r = await client(nsf, 'get', url);
    assert.ok(r.error !== undefined && r.body === undefined, `GET ${url}: ${JSON.stringify(r)}`);
  };

  test('an IPv6 container: [::1] and [::] are not relayed (DNAT alone carries [::] from outside); with "iptables": false too, nothing carries a published port', async () => {
    await withConfig({ 'userland-proxy': false });
    await ok('network', 'create', '--ipv6', '--subnet', 'fd00:b6:0:20::/64', 'np6');
    await ok('run', '-d', '--name', 'np6web', '--network', 'np6', '-p', '18120:80', '-p', '[::1]:18121:80', 'busybox', ...HTTPD);
    assert.deepEqual((await portsOf('np6web', '80/tcp')).sort(), ['0.0.0.0|18120', '::1|18121', '::|18120']);
    await waitFor('httpd answers', async () => want.test(await get(nsFile, 'http://127.0.0.1:18120/').catch(() => '')), 15000, 200);
    assert.match(await get(peerFile, `http://[${HOST6}]:18120/`), want, 'an IPv6 client outside, by DNAT');
    // The host's own [::1] has no DNAT (IPv6 has no route_localnet) and no relay: the ports are held only.
    await refused(nsFile, 'http://[::1]:18121/');
    await refused(nsFile, 'http://[::1]:18120/');
    await ok('rm', '-f', 'np6web');
    await ok('network', 'rm', 'np6');

    await withConfig({ 'userland-proxy': false, iptables: false });
    await ok('run', '-d', '--name', 'nonat', '-p', '18130:80', 'busybox', ...HTTPD);
    const ip = (await inspect('nonat')).NetworkSettings.Networks.bridge.IPAddress as string;
    assert.deepEqual(await portsOf('nonat', '80/tcp'), ['0.0.0.0|18130']);
    await waitFor('httpd answers on its own address', async () => want.test(await get(nsFile, `http://${ip}/`).catch(() => '')), 15000, 200);
    await refused(nsFile, 'http://127.0.0.1:18130/');
    await ok('rm', '-f', 'nonat');
    await withConfig({});
  });

  test('a restart that turns it off drops the relays of running containers (the [::] binding of an IPv4-only one goes, a [::1] one stops relaying); turning it on again brings them back', async () => {
    await ok('network', 'create', '--ipv6', '--subnet', 'fd00:b6:0:21::/64', 'tog6net');
    await ok('run', '-d', '--name', 'tog4', '-p', '18140:80', 'busybox', ...HTTPD);
    await ok('run', '-d', '--name', 'tog6', '--network', 'tog6net', '-p', '[::1]:18141:80', 'busybox', ...HTTPD);
    await waitFor('httpd answers', async () => want.test(await get(nsFile, 'http://[::1]:18140/').catch(() => '')), 15000, 200);
    await waitFor('httpd answers', async () => want.test(await get(nsFile, 'http://[::1]:18141/').catch(() => '')), 15000, 200);

    await withConfig({ 'userland-proxy': false });
    assert.deepEqual(await portsOf('tog4', '80/tcp'), ['0.0.0.0|18140']);
    assert.equal((await client(nsFile, 'get', 'http://[::1]:18140/')).error, 'ECONNREFUSED', 'the [::] listener is gone');
    assert.match(await get(nsFile, 'http://127.0.0.1:18140/'), want);
    assert.deepEqual(await portsOf('tog6', '80/tcp'), ['::1|18141']);
    await refused(nsFile, 'http://[::1]:18141/');

    await withConfig({});
    assert.deepEqual((await portsOf('tog4', '80/tcp')).sort(), ['0.0.0.0|18140', '::|18140'], 'the same host port on [::]');
    assert.match(await get(nsFile, 'http://[::1]:18140/'), want);
    assert.match(await get(peerFile, `http://[${HOST6}]:18140/`), want);
    assert.match(await get(nsFile, 'http://[::1]:18141/'), want);
    await ok('rm', '-f', 'tog4', 'tog6');
    await ok('network', 'rm', 'tog6net');
  });
});

describe('where Docker leaves [::] out', () => {
  test('daemon.json "userland-proxy": false: IPv4 only, and a [::1] binding of an IPv4-only container is skipped with a log line, not an error', async () => {
    await b.stop();
    writeFileSync(path.join(b.root, 'daemon.json'), JSON.stringify({ 'userland-proxy': false }));
    await b.restart();
    await ok('run', '-d', '--name', 'noproxy', '-p', '18100:80', '-p', '[::1]:18101:80', 'busybox', ...HTTPD);
    assert.deepEqual(await portsOf('noproxy', '80/tcp'), ['0.0.0.0|18100']);
    assert.equal((await ok('port', 'noproxy', '80')).trim(), '0.0.0.0:18100');
    await waitFor('httpd answers', async () => want.test(await get(nsFile, 'http://127.0.0.1:18100/').catch(() => '')), 15000, 200);
    assert.equal((await client(nsFile, 'get', 'http://[::1]:18100/')).error, 'ECONNREFUSED');
    assert.equal((await client(nsFile, 'get', 'http://[::1]:18101/')).error, 'ECONNREFUSED');
    assert.match(logTail(), /Cannot map from IPv6 to an IPv4-only container because the userland proxy is disabled/);
    await ok('rm', '-f', 'noproxy');
    await b.stop();
    writeFileSync(path.join(b.root, 'daemon.json'), '{}');
    await b.restart();
  });

  test('a host without IPv6 (switched off in the namespace): the IPv4 binding alone, no error', async () => {
    await b.stop();
    await must('nsenter', [`--net=${nsFile}`, '--', 'sysctl', '-q', '-w', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1', 'net.ipv6.conf.lo.disable_ipv6=1']);
    await b.restart();
    await ok('run', '-d', '--name', 'nov6', '-p', '18110:80', 'busybox', ...HTTPD);
    // An IPv6 address asked for by name cannot be bound there: Docker's error, and nothing mapped.
    await fails(/failed to bind host port for \[::1\]:18111:172\.\d+\.\d+\.\d+:80\/tcp: cannot assign requested address/,
      'run', '-d', '--name', 'nov6b', '-p', '[::1]:18111:80', 'busybox', ...HTTPD);
    await ok('rm', '-f', 'nov6b');
    assert.deepEqual(await portsOf('nov6', '80/tcp'), ['0.0.0.0|18110']);
    await waitFor('httpd answers', async () => want.test(await get(nsFile, 'http://127.0.0.1:18110/').catch(() => '')), 15000, 200);
    await ok('rm', '-f', 'nov6');
  });
});
