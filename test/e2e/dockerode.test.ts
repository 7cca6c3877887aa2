// dockerode (npm) against a real berthd: the container lifecycle through the API as a Node program
// drives it, multiplexed streams demuxed by docker-modem, and error objects with Docker's status codes.
import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough, type Readable } from 'node:stream';
import Docker from 'dockerode';
import { berthdForFile } from '../helpers/file';
import { dockerode, waitFor } from '../helpers/clients';

let docker: Docker;
const b = berthdForFile({ fixtures: ['busybox'], setup: (d) => { docker = dockerode(d); } });

/** Splits a multiplexed stream with docker-modem and collects stdout and stderr until it ends. */
function demux(stream: Readable): Promise<{ stdout: string; stderr: string }> {
  const out = new PassThrough();
  const err = new PassThrough();
  let stdout = '';
  let stderr = '';
  out.on('data', (c: Buffer) => { stdout += c.toString('utf8'); });
  err.on('data', (c: Buffer) => { stderr += c.toString('utf8'); });
  docker.modem.demuxStream(stream, out, err);
  return new Promise((resolve, reject) => {
    stream.on('end', () => resolve({ stdout, stderr }));
    stream.on('close', () => resolve({ stdout, stderr }));
    stream.on('error', reject);
  });
}

/** Awaits a promise that must reject with a dockerode error carrying `status`; returns its message. */
async function rejectsWith(p: Promise<unknown>, status: number, re?: RegExp): Promise<void> {
  await assert.rejects(p, (e: { statusCode?: number; message?: string; json?: { message?: string } }) => {
    assert.equal(e.statusCode, status, `expected HTTP ${status}, got ${e.statusCode}: ${e.message}`);
    if (re) assert.match(e.json?.message ?? e.message ?? '', re);
    return true;
  });
}

describe('dockerode', () => {
  const made: string[] = [];
  after(async () => {
    for (const id of made) await docker.getContainer(id).remove({ force: true }).catch(() => {});
  });

  test('ping and version', async () => {
    const pong = await docker.ping();
    assert.equal(Buffer.isBuffer(pong) ? pong.toString() : String(pong), 'OK');
    const v = await docker.version();
    assert.equal(v.ApiVersion, '1.52');
    assert.equal(v.Os, 'linux');
  });

  test('createContainer + start + wait + logs, stdout and stderr demuxed', async () => {
    const c = await docker.createContainer({
      name: 'dode-run',
      Image: 'busybox',
      Cmd: ['sh', '-c', 'echo out1; echo err1 >&2; echo out2; exit 2'],
      Labels: { suite: 'dockerode' },
    });
    made.push(c.id);
    assert.match(c.id, /^[0-9a-f]{64}$/);
    // Before start the wait must ask for the next exit: the default condition (not-running) is already
    // met by a created container, and Docker answers it at once.
    const waiting = c.wait({ condition: 'next-exit' });
    await c.start();
    const res = await waiting;
    assert.equal(res.StatusCode, 2);

    const logStream = (await c.logs({ follow: true, stdout: true, stderr: true })) as unknown as Readable;
    const { stdout, stderr } = await demux(logStream);
    assert.equal(stdout, 'out1\nout2\n');
    assert.equal(stderr, 'err1\n');

    // Not following: one buffer of frames; stdout only means no stderr frames.
    const buf = (await c.logs({ follow: false, stdout: true, stderr: false })) as unknown as Buffer;
    assert.ok(Buffer.isBuffer(buf));
    assert.equal(buf[0], 1, 'first frame is not stdout');
    assert.equal(buf.readUInt32BE(4), 'out1\n'.length);
    assert.equal(buf.subarray(8, 13).toString(), 'out1\n');
    for (let off = 0; off < buf.length; off += 8 + buf.readUInt32BE(off + 4)) assert.equal(buf[off], 1, 'a stderr frame in a stdout-only log');
  });

  test('attach before start receives the output as frames', async () => {
    const c = await docker.createContainer({ Image: 'busybox', Cmd: ['sh', '-c', 'echo a-out; echo a-err >&2'], AttachStdout: true, AttachStderr: true });
    made.push(c.id);
    const stream = (await c.attach({ stream: true, stdout: true, stderr: true })) as unknown as Readable;
    const collected = demux(stream);
    await c.start();
    assert.equal((await c.wait()).StatusCode, 0);
    const { stdout, stderr } = await collected;
    assert.equal(stdout, 'a-out\n');
    assert.equal(stderr, 'a-err\n');
  });

  test('listContainers and inspect', async () => {
    const all = await docker.listContainers({ all: true });
    const row = all.find((x) => x.Names.includes('/dode-run'));
    assert.ok(row, `dode-run not listed: ${JSON.stringify(all.map((x) => x.Names))}`);
    assert.equal(row.Image, 'busybox');
    assert.equal(row.State, 'exited');
    assert.match(row.Status, /^Exited \(2\) /);
    assert.equal(row.Command, 'sh -c echo out1; echo err1 >&2; echo out2; exit 2');
    assert.deepEqual(row.Labels, { suite: 'dockerode' });
    assert.ok(Number.isInteger(row.Created) && Math.abs(row.Created - Date.now() / 1000) < 600);
    const running = await docker.listContainers();
    assert.ok(!running.some((x) => x.Names.includes('/dode-run')), 'an exited container listed without all');
    const filtered = await docker.listContainers({ all: true, filters: { label: ['suite=dockerode'] } });
    assert.deepEqual(filtered.map((x) => x.Names[0]), ['/dode-run']);

    const info = await docker.getContainer('dode-run').inspect();
    assert.equal(info.Name, '/dode-run');
    assert.equal(info.State.Status, 'exited');
    assert.equal(info.State.ExitCode, 2);
    assert.deepEqual(info.Config.Cmd, ['sh', '-c', 'echo out1; echo err1 >&2; echo out2; exit 2']);
  });

  test('a running container: start twice is 304, remove is 409, stop, remove', async () => {
    const c = await docker.createContainer({ name: 'dode-sleep', Image: 'busybox', Cmd: ['sleep', '1000'] });
    made.push(c.id);
    await c.start();
    const info = await c.inspect();
    assert.equal(info.State.Running, true);
    assert.ok(info.State.Pid > 0);
    await rejectsWith(c.start(), 304);
    await rejectsWith(c.remove(), 409, /cannot remove a running container/);
    await rejectsWith(c.kill({ signal: 'NOSUCHSIG' }), 400, /Invalid signal/);
    await c.stop({ t: 1 });
    assert.equal((await c.inspect()).State.ExitCode, 137);
    await rejectsWith(c.stop(), 304);
    await c.remove();
    await rejectsWith(c.inspect(), 404, /No such container/);
    await rejectsWith(c.remove(), 404);
  });

  test('errors carry Docker\'s status codes: 404 unknown container or image, 409 duplicate name, 400 bad name', async () => {
    await rejectsWith(docker.getContainer('nosuch-dode').inspect(), 404, /No such container: nosuch-dode/);
    await rejectsWith(docker.getContainer('nosuch-dode').start(), 404);
    await rejectsWith(docker.createContainer({ Image: 'nosuch-image-dode', Cmd: ['true'] }), 404, /No such image/);
    await rejectsWith(docker.createContainer({ name: 'dode-run', Image: 'busybox', Cmd: ['true'] }), 409, /is already in use/);
    await rejectsWith(docker.createContainer({ name: 'bad name', Image: 'busybox', Cmd: ['true'] }), 400, /Invalid container name/);
  });

  test('eight containers created and started at once all run, then go at once', async () => {
    const cs = await Promise.all(Array.from({ length: 8 }, (_, i) =>
      docker.createContainer({ name: `dode-par-${i}`, Image: 'busybox', Cmd: ['sleep', '1000'] })));
    made.push(...cs.map((c) => c.id));
    await Promise.all(cs.map((c) => c.start()));
    const infos = await Promise.all(cs.map((c) => c.inspect()));
    for (const i of infos) assert.equal(i.State.Running, true, `${i.Name} not running`);
    assert.equal(new Set(infos.map((i) => i.State.Pid)).size, 8);
    await Promise.all(cs.map((c) => c.remove({ force: true })));
    const left = await docker.listContainers({ all: true });
    assert.ok(!left.some((x) => x.Names.some((n) => n.startsWith('/dode-par-'))), 'removed containers still listed');
  });

  test('a versioned client (v1.41) works the same', async () => {
    const old = new Docker({ socketPath: b.sock, version: 'v1.41' });
    const c = await old.createContainer({ Image: 'busybox', Cmd: ['sh', '-c', 'echo versioned'] });
    made.push(c.id);
    await c.start();
    assert.equal((await c.wait()).StatusCode, 0);
    const { stdout } = await demux((await c.logs({ follow: true, stdout: true, stderr: true })) as unknown as Readable);
    assert.equal(stdout, 'versioned\n');
    await c.remove();
    await waitFor('the removed container to be gone', async () => !(await old.listContainers({ all: true })).some((x) => x.Id === c.id));
  });
});
