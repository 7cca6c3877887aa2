// docker stats against a real berthd: one-shot and streaming objects with the fields the CLI computes its
// percentages from, read from the container's cgroup (v1 or v2).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { berthdForFile } from '../helpers/file';
import { api, dockerCli } from '../helpers/clients';

const b = berthdForFile({ fixtures: ['busybox'] });

const { ok } = dockerCli(() => b, { trim: true });


/** The first `n` objects of a stats stream. */
function streamObjects(path: string, n: number): Promise<Array<Record<string, any>>> { // eslint-disable-line @typescript-eslint/no-explicit-any
  return new Promise((resolve, reject) => {
    const out: Array<Record<string, any>> = []; // eslint-disable-line @typescript-eslint/no-explicit-any
    let buf = '';
    const req = http.request({ socketPath: b.sock, method: 'GET', path }, (res) => {
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        buf += c;
        let i;
        while ((i = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, i);
          buf = buf.slice(i + 1);
          if (line.trim()) out.push(JSON.parse(line));
          if (out.length === n) {
            req.destroy();
            resolve(out);
          }
        }
      });
      res.on('end', () => resolve(out));
    });
    req.on('error', (e) => (out.length >= n ? undefined : reject(e)));
    req.end();
  });
}

test('stats stream=0 fills precpu; stream=1 starts with zero precpu and gives one object a second', async () => {
  const id = await ok('run', '-d', '--name', 'st-a', '--memory', '64m', 'busybox', 'sh', '-c', 'while true; do i=0; while [ $i -lt 2000 ]; do i=$((i+1)); done; sleep 0.05; done');
  const t0 = Date.now();
  const r = await api(b, 'GET', '/containers/st-a/stats?stream=0');
  assert.ok(Date.now() - t0 >= 900, 'stream=0 waits about a second');
  assert.equal(r.status, 200);
  const s = r.json();
  assert.equal(s.id, id);
  assert.equal(s.name, '/st-a');
  assert.ok(s.cpu_stats.cpu_usage.total_usage > 0);
  assert.ok(s.cpu_stats.system_cpu_usage > s.precpu_stats.system_cpu_usage, 'system usage moved');
  assert.ok(s.cpu_stats.cpu_usage.total_usage >= s.precpu_stats.cpu_usage.total_usage);
  assert.ok(s.cpu_stats.online_cpus >= 1);
  assert.ok(s.memory_stats.usage > 0);
  assert.equal(s.memory_stats.limit, 64 * 1024 * 1024);
  assert.equal(typeof s.memory_stats.stats, 'object');
  assert.ok(s.pids_stats.current >= 1);
  assert.ok(Array.isArray(s.blkio_stats.io_service_bytes_recursive));
  assert.notEqual(s.preread, '0001-01-01T00:00:00Z');

  const one = (await api(b, 'GET', '/containers/st-a/stats?stream=0&one-shot=1')).json();
  assert.equal(one.preread, '0001-01-01T00:00:00Z');

  const objs = await streamObjects('/containers/st-a/stats?stream=1', 2);
  assert.equal(objs.length, 2);
  assert.equal(objs[0].preread, '0001-01-01T00:00:00Z');
  assert.equal(objs[0].precpu_stats.cpu_usage.total_usage, 0);
  assert.equal(objs[1].preread, objs[0].read);
  assert.equal(objs[1].precpu_stats.cpu_usage.total_usage, objs[0].cpu_stats.cpu_usage.total_usage);

  const cli = await ok('stats', '--no-stream', '--format', '{{.Name}} {{.CPUPerc}} {{.MemUsage}} {{.PIDs}}', 'st-a');
  assert.match(cli, /^st-a \d+\.\d+% [\d.]+[KMG]?i?B \/ 64MiB \d+$/);
  await ok('stop', '-t', '0', 'st-a');
  const stopped = (await api(b, 'GET', '/containers/st-a/stats?stream=0')).json();
  assert.equal(stopped.read, '0001-01-01T00:00:00Z');
  await ok('rm', 'st-a');
});
