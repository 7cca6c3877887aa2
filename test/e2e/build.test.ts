// docker build (classic builder, as CLI 28 uses it without buildx) against a real berthd: single- and
// multi-stage builds, build args, the build cache, a failing RUN, -q, a Dockerfile on stdin, a hostile
// context, and what history/run show of the result. berthd is destroyed in after(), also on failure.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { RunResult } from '../helpers/berthd';
import { berthdForFile } from '../helpers/file';
import { show, dockerCli } from '../helpers/clients';
import { packTar } from '../fixtures/tar';
import { startRegistry } from '../helpers/registry';

const LONG = { timeoutMs: 180000 };


describe('docker build through the docker CLI', () => {
  const b = berthdForFile({ fixtures: ['busybox'] });
  const { ok } = dockerCli(() => b, LONG);
  let scratch: string;

  /** A context directory with these files. */
  function context(name: string, files: Record<string, string>): string {
    const dir = path.join(scratch, name);
    mkdirSync(dir, { recursive: true });
    for (const [f, text] of Object.entries(files)) {
      mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
      writeFileSync(path.join(dir, f), text);
    }
    return dir;
  }

  async function docker(args: string[], input?: string | Buffer): Promise<RunResult> {
    return b.docker(args, { ...LONG, input });
  }

  async function containerCount(): Promise<number> {
    return (await ok('ps', '-a', '-q')).split('\n').filter(Boolean).length;
  }

  before(() => {
    scratch = mkdtempSync(path.join(os.tmpdir(), 'berth-build-'));
  });
  after(() => {
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  const single = {
    'Dockerfile': [
      '# a comment',
      'FROM busybox',
      'ENV GREETING=hello \\',
      '    OTHER="two words"',
      'WORKDIR /app',
      'COPY app.txt ./',
      'RUN echo "$GREETING from run" > /app/run.txt && \\',
      '    cat app.txt',
      'EXPOSE 8080',
      'CMD ["cat", "/app/run.txt"]',
      '',
    ].join('\n'),
    'app.txt': 'the app file\n',
  };

  test('a single-stage build: steps, RUN output, the image runs, history shows the steps', async () => {
    const dir = context('single', single);
    const before = await containerCount();
    const out = await ok('build', '-t', 'app:1', dir);
    assert.match(out, /^Step 1\/7 : FROM busybox$/m);
    assert.match(out, /^Step 5\/7 : RUN echo "\$GREETING from run" > \/app\/run.txt && {5}cat app.txt$/m);
    assert.match(out, /^ ---> Running in [0-9a-f]{12}$/m);
    assert.match(out, /^the app file$/m, 'RUN output is streamed');
    assert.match(out, /^Removing intermediate container [0-9a-f]{12}$/m);
    assert.match(out, /^Successfully built [0-9a-f]{12}$/m);
    assert.match(out, /^Successfully tagged app:1$/m);
    assert.equal(await containerCount(), before, 'intermediate containers are removed');

    assert.equal((await ok('run', '--rm', 'app:1')).trim(), 'hello from run');
    assert.equal((await ok('run', '--rm', 'app:1', 'sh', '-c', 'pwd; echo $OTHER; cat app.txt')).trim(), '/app\ntwo words\nthe app file');
    const cfg = JSON.parse(await ok('image', 'inspect', '--format', '{{json .Config}}', 'app:1'));
    assert.equal(cfg.WorkingDir, '/app');
    assert.deepEqual(cfg.Cmd, ['cat', '/app/run.txt']);
    assert.ok(cfg.Env.includes('GREETING=hello'));
    assert.deepEqual(Object.keys(cfg.ExposedPorts), ['8080/tcp']);

    const history = await ok('history', '--no-trunc', '--format', '{{.CreatedBy}}', 'app:1');
    const lines = history.split('\n');
    assert.equal(lines[0], '/bin/sh -c #(nop)  CMD ["cat" "/app/run.txt"]');
    assert.equal(lines[1], '/bin/sh -c #(nop)  EXPOSE 8080/tcp');
    assert.match(lines[2], /^\/bin\/sh -c echo "\$GREETING from run"/);
    assert.match(lines[3], /^\/bin\/sh -c #\(nop\) COPY file:[0-9a-f]{64} in \.\/ $/);
    assert.equal(lines[4], '/bin/sh -c #(nop) WORKDIR /app');
    assert.equal(lines[5], '/bin/sh -c #(nop)  ENV GREETING=hello OTHER=two words');

    // The second build takes every step from the cache; --no-cache makes a new image.
    const again = await ok('build', '-t', 'app:2', dir);
    assert.equal((again.match(/^ ---> Using cache$/mg) ?? []).length, 6, again);
    const id1 = (await ok('image', 'inspect', '--format', '{{.Id}}', 'app:1')).trim();
    assert.equal((await ok('image', 'inspect', '--format', '{{.Id}}', 'app:2')).trim(), id1);
    const fresh = await ok('build', '--no-cache', '-t', 'app:3', dir);
    assert.doesNotMatch(fresh, /Using cache/);
    assert.notEqual((await ok('image', 'inspect', '--format', '{{.Id}}', 'app:3')).trim(), id1);

    // A changed file in the context misses the cache from its COPY on.
    writeFileSync(path.join(dir, 'app.txt'), 'changed\n');
    const changed = await ok('build', '-t', 'app:4', dir);
    assert.equal((changed.match(/^ ---> Using cache$/mg) ?? []).length, 2, changed);
    assert.equal((await ok('run', '--rm', 'app:4', 'cat', 'app.txt')).trim(), 'changed');
  });

  test('multi-stage: build args, COPY --from, --target, -f, --label', async () => {
    const dir = context('multi', {
      'build.Dockerfile': [
        'ARG BASE=busybox',
        'FROM ${BASE} AS builder',
        'ARG MSG=default',
        'RUN mkdir /out && echo "$MSG" > /out/msg',
        '',
        'FROM $BASE AS other',
        'RUN echo other > /other',
        '',
        'FROM busybox',
        'COPY --from=builder /out/msg /msg',
        'CMD ["cat", "/msg"]',
      ].join('\n'),
    });
    const out = await ok('build', '-f', path.join(dir, 'build.Dockerfile'), '--build-arg', 'MSG=custom', '--label', 'team=berth', '--label', 'a=$x', '-t', 'multi:1', dir);
    assert.match(out, /^Step 1\/10 : FROM \$\{BASE\} AS builder$/m);
    assert.match(out, /^Step 9\/10 : LABEL a=\$x$/m);
    assert.match(out, /^Step 10\/10 : LABEL team=berth$/m);
    assert.equal((await ok('image', 'inspect', '--format', '{{index .Config.Labels "a"}}', 'multi:1')).trim(), '$x');
    assert.equal((await ok('run', '--rm', 'multi:1')).trim(), 'custom');
    assert.equal((await ok('image', 'inspect', '--format', '{{index .Config.Labels "team"}}', 'multi:1')).trim(), 'berth');
    const r = await docker(['run', '--rm', 'multi:1', 'ls', '/other']);
    assert.notEqual(r.code, 0, 'the other stage is not in the final image');

    await ok('build', '-f', path.join(dir, 'build.Dockerfile'), '--target', 'other', '-t', 'multi:other', dir);
    assert.equal((await ok('run', '--rm', 'multi:other', 'cat', '/other')).trim(), 'other');
    // The builder stage's RUN saw the build arg; its history says so, as Docker's does.
    await ok('build', '-f', path.join(dir, 'build.Dockerfile'), '--build-arg', 'MSG=custom', '--target', 'builder', '-t', 'multi:builder', dir);
    const history = await ok('history', '--no-trunc', '--format', '{{.CreatedBy}}', 'multi:builder');
    assert.match(history, /^\|1 MSG=custom \/bin\/sh -c mkdir \/out/m);
  });

  test('a failing RUN: the exit code, the message, no image, no tag, no container left', async () => {
    const dir = context('fail', { 'Dockerfile.fail': 'FROM busybox\nRUN echo failing && exit 3\n' });
    const before = await containerCount();
    const r = await docker(['build', '-f', path.join(dir, 'Dockerfile.fail'), '-t', 'fail:1', dir]);
    assert.equal(r.code, 3, show(r));
    assert.match(r.stdout, /^failing$/m, show(r));
    assert.match(r.stderr, /The command '\/bin\/sh -c echo failing && exit 3' returned a non-zero code: 3/, show(r));
    assert.equal((await ok('images', '-q', 'fail')).trim(), '');
    assert.equal(await containerCount(), before);
  });

  test('-q prints only the image id; a Dockerfile from stdin builds', async () => {
    const dir = context('quiet', single);
    const out = (await ok('build', '-q', '-t', 'quiet:1', dir)).trim();
    assert.match(out, /^sha256:[0-9a-f]{64}$/);
    assert.equal((await ok('image', 'inspect', '--format', '{{.Id}}', 'quiet:1')).trim(), out);
    // --iidfile: the CLI writes the id from the aux message.
    const iid = path.join(scratch, 'iid');
    await ok('build', '--iidfile', iid, dir);
    assert.equal(readFileSync(iid, 'utf8'), out);

    const r = await docker(['build', '-t', 'stdin:1', '-'], 'FROM busybox\nRUN ["sh", "-c", "echo from-stdin > /stdin.txt"]\n');
    assert.equal(r.code, 0, show(r));
    assert.equal((await ok('run', '--rm', 'stdin:1', 'cat', '/stdin.txt')).trim(), 'from-stdin');
  });

  test('ADD <url> downloads through berthd: redirects, mode 0600, Last-Modified as mtime, cache by content', async () => {
    let body = 'remote content v1\n';
    const modified = new Date('2024-03-05T06:07:08Z');
    const server = http.createServer((req, res) => {
      if (req.url === '/redir') {
        res.writeHead(302, { Location: '/files/remote.txt' });
        return res.end();
      }
      if (req.url === '/files/remote.txt') {
        res.writeHead(200, { 'Content-Type': 'text/plain', 'Last-Modified': modified.toUTCString() });
        return res.end(body);
      }
      res.writeHead(404);
      res.end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as { port: number }).port;
    try {
      const dir = context('add-url', {
        'Dockerfile': `FROM busybox\nADD http://127.0.0.1:${port}/files/remote.txt /r/\nADD http://127.0.0.1:${port}/redir /named.txt\n`,
      });
      const r = await docker(['build', '-t', 'addurl:1', dir]);
      assert.equal(r.code, 0, show(r));
      assert.equal(await ok('run', '--rm', 'addurl:1', 'cat', '/r/remote.txt', '/named.txt'), body + body);
      assert.equal((await ok('run', '--rm', 'addurl:1', 'stat', '-c', '%a %u %Y', '/r/remote.txt')).trim(), `600 0 ${modified.getTime() / 1000}`);
      // The same content again: the cache holds; new content: a new layer.
      const again = await docker(['build', '-t', 'addurl:2', dir]);
      assert.equal(again.code, 0, show(again));
      assert.match(again.stdout, /Using cache/);
      body = 'remote content v2\n';
      const changed = await docker(['build', '-t', 'addurl:3', dir]);
      assert.equal(changed.code, 0, show(changed));
      assert.equal(await ok('run', '--rm', 'addurl:3', 'cat', '/r/remote.txt'), body);
      const missing = await docker(['build', context('add-url-404', { 'Dockerfile': `FROM busybox\nADD http://127.0.0.1:${port}/nope /x\n` })]);
      assert.notEqual(missing.code, 0);
      assert.match(missing.stderr + missing.stdout, /status 404/);
    } finally {
      server.close();
    }
  });

  test('a Dockerfile outside the context (-f /elsewhere/Dockerfile) and on stdin with a context (-f -)', async () => {
    const dir = context('outside-ctx', { 'data.txt': 'from the context\n' });
    const elsewhere = context('outside-df', {
      'Dockerfile': 'FROM busybox\nCOPY data.txt /data.txt\nRUN cat /data.txt\n',
    });
    const r = await docker(['build', '-t', 'outside:1', '-f', path.join(elsewhere, 'Dockerfile'), dir]);
    assert.equal(r.code, 0, show(r));
    assert.match(r.stdout, /from the context/);
    assert.equal((await ok('run', '--rm', 'outside:1', 'cat', '/data.txt')), 'from the context\n');
    // The CLI's own `.dockerfile.<random>` member is the Dockerfile, never a file of the image.
    assert.doesNotMatch(await ok('run', '--rm', 'outside:1', 'ls', '-a', '/'), /\.dockerfile/);

    const s = await docker(['build', '-t', 'outside:2', '-f', '-', dir], 'FROM busybox\nCOPY data.txt /stdin-data.txt\n');
    assert.equal(s.code, 0, show(s));
    assert.equal((await ok('run', '--rm', 'outside:2', 'cat', '/stdin-data.txt')), 'from the context\n');
  });

  test('FROM pulls a missing image from its registry; a built image pushes and pulls back', async (t) => {
    const reg = await startRegistry(scratch);
    t.after(reg.stop);
    const R = `127.0.0.1:${reg.port}`;
    await ok('tag', 'busybox', `${R}/build/base:1`);
    await ok('push', `${R}/build/base:1`);
    await ok('rmi', `${R}/build/base:1`);
    const dir = context('pull', { Dockerfile: `FROM ${R}/build/base:1\nRUN echo pulled > /p\nLABEL stage=pushed\nCMD ["cat", "/p"]\n` });
    const out = await ok('build', '-t', `${R}/build/app:1`, dir);
    assert.match(out, /Successfully tagged/);
    assert.notEqual((await ok('images', '-q', `${R}/build/base:1`)).trim(), '', 'the base was pulled');

    await ok('push', `${R}/build/app:1`);
    const id = (await ok('image', 'inspect', '--format', '{{.Id}}', `${R}/build/app:1`)).trim();
    await ok('rmi', `${R}/build/app:1`);
    assert.equal((await ok('images', '-q', `${R}/build/app:1`)).trim(), '');
    assert.equal((await ok('run', '--rm', `${R}/build/app:1`)).trim(), 'pulled');
    assert.equal((await ok('image', 'inspect', '--format', '{{.Id}}', `${R}/build/app:1`)).trim(), id, 'the same image came back');
  });

  test('ADD unpacks a local archive; --chown, wildcards and .dockerignore; symlinks stay inside the context', async () => {
    const dir = context('files', {
      'Dockerfile': [
        'FROM busybox',
        'ADD bundle.tar /opt/',
        'COPY --chown=nobody:nobody *.txt /texts/',
        'COPY sub /sub',
        'RUN ls -ln /opt/bundle /texts /sub | sed "s/  */ /g" && cat /opt/bundle/inner.txt',
      ].join('\n'),
      'a.txt': 'a\n',
      'b.txt': 'b\n',
      'secret.txt': 'ignored\n',
      '.dockerignore': 'secret.txt\n',
      'sub/deep/file': 'deep\n',
    });
    writeFileSync(path.join(dir, 'bundle.tar'), await packTar([
      { name: 'bundle/', type: 'directory', mode: 0o750, uid: 123, gid: 456 },
      { name: 'bundle/inner.txt', content: 'from the archive\n', mode: 0o640, uid: 123, gid: 456 },
    ]));
    symlinkSync('/etc', path.join(dir, 'hostetc'));
    const out = await ok('build', '-t', 'files:1', dir);
    assert.match(out, /^-rw-r----- 1 123 456 17 .* inner\.txt$/m, out);
    assert.match(out, /^-rw-r--r-- 1 65534 65534 2 .* a\.txt$/m, out);
    assert.match(out, /^-rw-r--r-- 1 65534 65534 2 .* b\.txt$/m, out);
    assert.doesNotMatch(out, /secret\.txt/, 'the CLI left out what .dockerignore names');
    assert.match(out, /^drwxr-xr-x \d+ 0 0 \d+ .* deep$/m, out);
    assert.match(out, /^from the archive$/m);

    // hostetc -> /etc is a link inside the context: it resolves there, not to the host's /etc.
    writeFileSync(path.join(dir, 'Dockerfile'), 'FROM busybox\nCOPY hostetc/hostname /h\n');
    const r = await docker(['build', dir]);
    assert.notEqual(r.code, 0, show(r));
    assert.match(r.stderr, /COPY failed: file not found in build context or excluded by \.dockerignore: stat hostetc\/hostname: file does not exist/, show(r));
  });

  test('RUN containers get --add-host, --ulimit and --shm-size', async () => {
    const dir = context('hostconfig', { Dockerfile: 'FROM busybox\nRUN grep myhost /etc/hosts; ulimit -n; df -k /dev/shm | tail -1\n' });
    const out = await ok('build', '--add-host', 'myhost:10.1.2.3', '--ulimit', 'nofile=512:512', '--shm-size', '2m', dir);
    assert.match(out, /^10\.1\.2\.3\s+myhost$/m, out);
    assert.match(out, /^512$/m, out);
    assert.match(out, /^shm\s+2048\s/m, out);
  });

  test('a context whose entries leave it is refused, and nothing is written outside', async () => {
    const marker = path.join(scratch, 'escaped.txt');
    const evil = await packTar([
      { name: 'Dockerfile', content: 'FROM busybox\nCOPY . /ctx/\n' },
      { name: `../../../../../../../..${marker}`, content: 'gotcha' },
    ]);
    const r = await docker(['build', '-t', 'evil:1', '-'], evil);
    assert.notEqual(r.code, 0, show(r));
    assert.match(r.stderr, /outside|refusing/, show(r));
    assert.equal(existsSync(marker), false);
    assert.equal((await ok('images', '-q', 'evil')).trim(), '');
  });
});
