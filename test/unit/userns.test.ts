// --userns-remap's reading of /etc/subuid and /etc/subgid (daemon/runtime/userns.ts): ranges by name or by
// number, several ranges laid out from container id 0, the first free range for dockremap, and the
// setting's forms (user, user:group, uid:gid) resolved against a private /etc (BERTH_USERNS_ROOT).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { rangesFor, freeRange, mapText, toContainer, toHost, archiveIds, resolveRemap, rootPair } from '../../daemon/runtime/userns';
import { loadConfig, ConfigError } from '../../daemon/config/config';

test('ranges of a user by name or number, laid out one after another', () => {
  const text = 'alice:100000:65536\n1001:300000:1000\nbob:200000:65536\nalice:500000:10\n# junk\nbad:line\n';
  assert.deepEqual(rangesFor(text, 'alice', 1001), [
    { containerID: 0, hostID: 100000, size: 65536 },
    { containerID: 65536, hostID: 300000, size: 1000 },
    { containerID: 66536, hostID: 500000, size: 10 },
  ]);
  assert.deepEqual(rangesFor(text, 'carol', undefined), []);
  assert.equal(mapText(rangesFor(text, 'bob', undefined)), '0 200000 65536\n');
  assert.equal(toContainer(rangesFor(text, 'alice', 1001), 300005), 65541);
  assert.equal(toContainer(rangesFor(text, 'alice', 1001), 0), 65534);
});

test('the first free range starts at 100000 after every range it would overlap', () => {
  assert.equal(freeRange(''), 100000);
  assert.equal(freeRange('a:100000:65536\n'), 165536);
  assert.equal(freeRange('a:100000:65536\nb:165536:65536\n'), 231072);
  assert.equal(freeRange('a:300000:5\n'), 100000);
  assert.equal(freeRange('a:150000:10\n'), 150010);
});

test('user, user:group and uid:gid settings find their ranges; missing ones say so', async () => {
  const root = mkdtempSync(path.join(os.tmpdir(), 'berth-userns-unit-'));
  const prev = process.env.BERTH_USERNS_ROOT;
  try {
    mkdirSync(path.join(root, 'etc'));
    writeFileSync(path.join(root, 'etc', 'passwd'), 'root:x:0:0::/root:/bin/sh\nalice:x:1001:1001::/home/alice:/bin/sh\n');
    writeFileSync(path.join(root, 'etc', 'group'), 'root:x:0:\nalice:x:1001:\nstaff:x:50:\n');
    writeFileSync(path.join(root, 'etc', 'subuid'), 'alice:200000:65536\n');
    writeFileSync(path.join(root, 'etc', 'subgid'), 'alice:210000:65536\n50:400000:65536\n');
    process.env.BERTH_USERNS_ROOT = root;
    const a = await resolveRemap('alice');
    assert.deepEqual(rootPair(a), { uid: 200000, gid: 210000 });
    const b = await resolveRemap('1001:staff');
    assert.equal(b.user, 'alice');
    assert.deepEqual(rootPair(b), { uid: 200000, gid: 400000 });
    await assert.rejects(resolveRemap('nobody-here'), /no such user/);
    await assert.rejects(resolveRemap('root'), /no subuid ranges found for user "root"/);
  } finally {
    if (prev === undefined) delete process.env.BERTH_USERNS_ROOT;
    else process.env.BERTH_USERNS_ROOT = prev;
    rmSync(root, { recursive: true, force: true });
  }
});

test('userns-remap from daemon.json or the flag; a malformed one is refused', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-userns-cfg-'));
  try {
    const f = path.join(dir, 'daemon.json');
    writeFileSync(f, JSON.stringify({ 'userns-remap': 'default' }));
    assert.equal(loadConfig(['--config-file', f], '/repo').usernsRemap, 'default');
    assert.equal(loadConfig(['--config-file', f, '--userns-remap', 'alice:staff'], '/repo').usernsRemap, 'alice:staff');
    writeFileSync(f, '{}');
    assert.equal(loadConfig(['--config-file', f], '/repo').usernsRemap, '');
    assert.throws(() => loadConfig(['--config-file', f, '--userns-remap=a:b:c'], '/repo'), ConfigError);
    writeFileSync(f, JSON.stringify({ 'userns-remap': 5 }));
    assert.throws(() => loadConfig(['--config-file', f], '/repo'), /invalid userns-remap/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('ids between the container and the host, and back for archives', () => {
  const ranges = [{ containerID: 0, hostID: 100000, size: 65536 }];
  assert.equal(toHost(ranges, 0), 100000);
  assert.equal(toHost(ranges, 1000), 101000);
  assert.equal(toHost(ranges, 70000), 100000, 'outside the range: the range\'s root, never the host\'s');
  const ids = archiveIds({ setting: 'x', user: 'x', group: 'x', uidMappings: ranges, gidMappings: ranges });
  assert.equal(ids.uid(100007), 7);
  assert.equal(ids.uid(0), 0, 'an image layer\'s root stays root');
  assert.equal(ids.gid(165536), 165536);
});
