// The state epoch (daemon/state/changes.ts) that kept list and inspect answers are checked against: every
// write through the daemon's database connection moves it, whichever statement and however it is run;
// reads do not (or kept answers would never be used); and so does every event.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openDb } from '../../daemon/state/db';
import { stateEpoch } from '../../daemon/state/changes';
import { EventBus } from '../../daemon/events/bus';

test('writes move the state epoch, reads do not', () => {
  const root = mkdtempSync(path.join(os.tmpdir(), 'berth-epoch-'));
  const db = openDb(path.join(root, 'state.db'));
  try {
    db.exec('CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER)');
    const moved = (fn: () => unknown) => {
      const e = stateEpoch();
      fn();
      return stateEpoch() !== e;
    };
    assert.ok(moved(() => db.prepare('INSERT INTO t (k, v) VALUES (?, ?)').run('a', 1)), 'insert');
    assert.ok(moved(() => db.prepare('UPDATE t SET v = v + 1 WHERE k = ?').run('a')), 'update');
    assert.ok(moved(() => db.prepare('INSERT INTO t (k, v) VALUES (?, ?) RETURNING v').get('b', 2)), 'insert … returning');
    assert.ok(moved(() => db.transaction(() => db.prepare('DELETE FROM t WHERE k = ?').run('b'))()), 'in a transaction');
    assert.ok(moved(() => db.exec("UPDATE t SET v = 0 WHERE k = 'a'")), 'exec');
    // A kept statement (db.ts keeps them by their text) still counts the second time.
    assert.ok(moved(() => db.prepare('UPDATE t SET v = v + 1 WHERE k = ?').run('a')), 'kept statement');
    assert.ok(!moved(() => db.prepare('SELECT v FROM t WHERE k = ?').get('a')), 'select');
    assert.ok(!moved(() => db.prepare('SELECT * FROM t').all()), 'select all');
  } finally {
    db.close();
    rmSync(root, { recursive: true, force: true });
  }
});

test('events move the state epoch', () => {
  const bus = new EventBus();
  const e = stateEpoch();
  bus.emit('container', 'rename', 'x'.repeat(64), { name: 'b' });
  assert.notEqual(stateEpoch(), e);
});
