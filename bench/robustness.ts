// berthd's resident memory under clients that misbehave (issue 10): idle, then through a storm of clients
// that break off every streaming route mid-body (cp out of a running and a stopped container, export,
// save, logs, attach with logs, exec, events), then through a burst of bad bodies (JSON creates far over
// api-max-json-body, with and without a Content-Length, and invalid JSON), then after a pause. Goal: within
// 64 MiB of idle throughout, and back near idle afterwards. Also checks that berthd is still up.
//   node dist/bench/robustness.js                (BENCH_ROUNDS=20, BENCH_PARALLEL=8, BENCH_BAD=40)
import net from 'node:net';
import { readFileSync, readdirSync } from 'node:fs';
import { benchBerthd, intEnv } from './lib';
import { api, sleep } from '../test/helpers/clients';

const rssKiB = (pid: number): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
const fdCount = (pid: number): number => {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return -1;
  }
};
const mib = (kib: number) => `${(kib / 1024).toFixed(1)} MiB`;

/** Samples VmRSS every 20 ms while `fn` runs; returns the peak. */
async function peakDuring(pid: number, fn: () => Promise<void>): Promise<number> {
  let peak = rssKiB(pid);
  const t = setInterval(() => {
    peak = Math.max(peak, rssKiB(pid));
  }, 20);
  try {
    await fn();
  } finally {
    clearInterval(t);
  }
  return Math.max(peak, rssKiB(pid));
}

/** Sends a request and drops the connection after `after` bytes of answer (or when it ends). */
function cutAfter(sock: string, head: string, after: number): Promise<void> {
  return new Promise((resolve) => {
    const s = net.connect(sock);
    let got = 0;
    const done = () => {
      s.destroy();
      resolve();
    };
    s.on('error', done);
    s.on('connect', () => s.write(head));
    s.on('data', (c: Buffer) => {
      got += c.length;
      if (got >= after) done();
    });
    s.on('end', done);
    setTimeout(done, 10000);
  });
}

/** Sends a JSON create of `bytes` bytes (chunked or with a length) and waits for the answer. */
function hugeCreate(sock: string, bytes: number, chunked: boolean): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(sock);
    let answer = '';
    s.on('data', (c: Buffer) => {
      answer += c.toString();
    });
    s.on('error', () => undefined);
    s.on('close', () => resolve(answer.split('\r\n')[0] ?? ''));
    const h = chunked ? 'Transfer-Encoding: chunked' : `Content-Length: ${bytes}`;
    s.write(`POST /containers/create HTTP/1.1\r\nHost: berth\r\nContent-Type: application/json\r\n${h}\r\nConnection: close\r\n\r\n`);
    const piece = Buffer.alloc(1 << 20, 0x61);
    piece.write('{"Image":"busybox","Labels":{"big":"', 0);
    let sent = 0;
    const more = () => {
      while (sent < bytes && !s.destroyed) {
        const part = piece.subarray(0, Math.min(piece.length, bytes - sent));
        sent += part.length;
        const ok = s.write(chunked ? Buffer.concat([Buffer.from(`${part.length.toString(16)}\r\n`), part, Buffer.from('\r\n')]) : part);
        if (!ok) return void s.once('drain', more);
      }
      if (chunked && !s.destroyed) s.write('0\r\n\r\n');
    };
    more();
  });
}

async function main(): Promise<void> {
  const rounds = intEnv('BENCH_ROUNDS', 20);
  const parallel = intEnv('BENCH_PARALLEL', 8);
  const bad = intEnv('BENCH_BAD', 40);
  const b = await benchBerthd();
  try {
    const pid = b.proc.pid!;
    const run = async (args: string[]) => {
      const r = await b.docker(args);
      if (r.code !== 0) throw new Error(`docker ${args.join(' ')}: ${r.stderr}`);
    };
    await run(['run', '-d', '--name', 'rb-run', 'busybox', 'sh', '-c',
      'dd if=/dev/urandom of=/big bs=1M count=32 2>/dev/null; i=0; while [ $i -lt 20000 ]; do echo "line $i of the log, padded out to be long enough"; i=$((i+1)); done; sleep 100000']);
    await run(['run', '--name', 'rb-stop', 'busybox', 'sh', '-c', 'dd if=/dev/urandom of=/big bs=1M count=32 2>/dev/null']);
    await sleep(3000);
    const idle = rssKiB(pid);
    const fds0 = fdCount(pid);
    console.log(`idle: VmRSS ${mib(idle)}, ${fds0} fds`);

    const exec = async (): Promise<string> => {
      const r = await api(b, 'POST', '/containers/rb-run/exec', { body: { Cmd: ['cat', '/big'], AttachStdout: true } });
      const body = '{"Detach":false,"Tty":false}';
      return `POST /exec/${r.json().Id}/start HTTP/1.1\r\nHost: berth\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n${body}`;
    };
    const get = (p: string, extra = '') => async () => `GET ${p} HTTP/1.1\r\nHost: berth\r\n${extra}\r\n`;
    const kinds: Array<() => Promise<string>> = [
      get('/containers/rb-run/archive?path=/big'), get('/containers/rb-stop/archive?path=/big'),
      get('/containers/rb-stop/export'), get('/containers/rb-run/export'), get('/images/busybox/get'),
      get('/containers/rb-run/logs?stdout=1'), get('/events?since=0'),
      async () => `POST /containers/rb-run/attach?logs=1&stream=1&stdout=1 HTTP/1.1\r\nHost: berth\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n`,
      exec,
    ];
    const storm = await peakDuring(pid, async () => {
      for (let r = 0; r < rounds; r++) {
        const batch: Promise<void>[] = [];
        for (let i = 0; i < parallel; i++) {
          const k = kinds[(r * parallel + i) % kinds.length];
          batch.push(k().then((head) => cutAfter(b.sock, head, [0, 300, 64 << 10, 1 << 20][(r + i) % 4])));
        }
        await Promise.all(batch);
      }
    });
    console.log(`disconnect storm (${rounds} rounds of ${parallel} clients breaking off ${kinds.length} kinds of stream): peak VmRSS ${mib(storm)}, +${mib(storm - idle)} over idle`);

    const badPeak = await peakDuring(pid, async () => {
      const answers = new Map<string, number>();
      for (let i = 0; i < bad; i += 4) {
        const got = await Promise.all([
          hugeCreate(b.sock, 50 << 20, false), hugeCreate(b.sock, 50 << 20, true),
          api(b, 'POST', '/containers/create', { body: '{"Image": "busybox", "Labels": {' }).then((r) => `HTTP/1.1 ${r.status}`),
          api(b, 'POST', '/networks/create', { body: Buffer.alloc(1 << 20, 0x5b), headers: { 'Content-Type': 'application/json' } }).then((r) => `HTTP/1.1 ${r.status}`),
        ]);
        for (const a of got) answers.set(a, (answers.get(a) ?? 0) + 1);
      }
      console.log(`  answers: ${[...answers].map(([k, v]) => `${v}× ${k}`).join(', ')}`);
    });
    console.log(`bad bodies (${bad}: 50 MiB creates with and without a length, invalid JSON): peak VmRSS ${mib(badPeak)}, +${mib(badPeak - idle)} over idle`);

    await sleep(intEnv('BENCH_SETTLE_MS', 10000));
    const ping = await api(b, 'GET', '/_ping');
    const afterRss = rssKiB(pid);
    console.log(`after ${intEnv('BENCH_SETTLE_MS', 10000) / 1000} s: VmRSS ${mib(afterRss)} (${afterRss >= idle ? '+' : ''}${mib(afterRss - idle)} against idle), ${fdCount(pid)} fds (idle ${fds0}), /_ping ${ping.status} ${ping.body}`);
    const worst = Math.max(storm, badPeak) - idle;
    console.log(`goal: within 64 MiB of idle throughout (worst +${mib(worst)}: ${worst <= 64 * 1024 ? 'met' : 'NOT met'}), and back afterwards`);
  } finally {
    await b.destroy();
  }
}

main().catch((e) => {
  console.error(e instanceof Error ? e.stack : e);
  process.exit(1);
});
