// lib/tools.ts runs real host tools: what a failure says (it reaches the API and berthd's log) and what a
// success answers, with tools that change nothing (a mount of a directory that does not exist, `ip -j addr`).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { tools, ToolError } from '../../daemon/lib/tools';
import { BerthError } from '../../daemon/errors/errors';

test('a file-system tool that fails rejects with "tool args: its stderr"', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-tools-'));
  try {
    const missing = path.join(dir, 'missing');
    await assert.rejects(tools.mount(['--bind', missing, missing]), (e: Error) => {
      assert.ok(!(e instanceof BerthError), 'a plain Error: the caller decides what it means');
      assert.ok(e.message.startsWith(`mount --bind ${missing} ${missing}: `), e.message);
      assert.ok(e.message.length > `mount --bind ${missing} ${missing}: `.length, 'with the reason');
      return true;
    });
    await assert.rejects(tools.umount([missing]), (e: Error) => e.message.startsWith(`umount ${missing}: `));
    // syncfs of a directory that exists succeeds; of one that does not, says which.
    await tools.syncFs(dir);
    await assert.rejects(tools.syncFs(missing), (e: Error) => e.message.startsWith(`sync -f ${missing}: `));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a network tool answers its stdout; a failure is a ToolError, a 500 with the same words', async () => {
  const addrs = JSON.parse(await tools.ip(['-j', '-4', 'addr', 'show', 'dev', 'lo'])) as Array<{ ifname: string }>;
  assert.deepEqual(addrs.map((a) => a.ifname), ['lo']);
  await assert.rejects(tools.ip(['-j', 'addr', 'show', 'dev', 'berth-no-such-link']), (e: unknown) => {
    assert.ok(e instanceof ToolError);
    assert.equal(e.kind, 'system');
    assert.equal(e.tool, 'ip');
    assert.match(e.message, /^ip -j addr show dev berth-no-such-link: .+/);
    return true;
  });
  // A tool that is not installed: the spawn error's words stand in for its stderr.
  await assert.rejects(tools.iptables('/nonexistent/iptables-berth', ['-S']), (e: unknown) => e instanceof ToolError && /ENOENT/.test(e.message));
});

test('xfs_info: undefined when it cannot say (a directory that does not exist, or no xfs_info)', () => {
  assert.equal(tools.xfsInfo('/nonexistent/berth'), undefined);
});
