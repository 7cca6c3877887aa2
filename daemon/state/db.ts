// SQLite is the truth for berth's state. WAL with synchronous=FULL: a state change is on disk when the
// statement returns, and readers never wait for writers. Migrations run in order, each in a transaction,
// recorded in schema_version, so a database from any earlier berth opens.
import Database from 'better-sqlite3';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { stateChanged } from './changes';

export type DB = Database.Database;

function migrationsDir(): string {
  // The .sql files live beside the TypeScript sources; the compiled code runs from dist/.
  let dir = __dirname;
  for (let i = 0; i < 6; i++) {
    const candidate = path.join(dir, 'daemon', 'state', 'migrations');
    try {
      readdirSync(candidate);
      return candidate;
    } catch { /* keep walking up */ }
    dir = path.dirname(dir);
  }
  throw new Error('migrations directory not found');
}

/** The state database cannot be used: berthd must not start on it (an empty state would forget every
 *  container, image and volume it holds while their files and processes are still there). */
export class StateDbError extends Error {}

/** Opens the state database, refusing one that SQLite finds damaged (quick_check: the b-trees and their
 *  pages, linear in the database's size, which is small: rows, not blobs). */
export function openDb(file: string): DB {
  let db: DB | undefined;
  try {
    db = new Database(file);
    const check = db.pragma('quick_check', { simple: true });
    if (check !== 'ok') throw new Error(String(check));
  } catch (e) {
    db?.close();
    throw new StateDbError(`the state database ${file} is damaged or unreadable (${(e as Error).message}). berthd will not `
      + 'start on it, so that no container, image or volume it records is forgotten. Restore it from a backup, or, to '
      + `start with an empty state, stop every container's berth-shim and move ${file} (with its -wal and -shm files) aside.`);
  }
  return prepare(db);
}

function prepare(db: DB): DB {
  cacheStatements(db);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  migrate(db);
  keepHeadroom(db);
  return db;
}

/** db.prepare compiles its SQL on every call, and most reads prepare where they run: an inspect compiled
 *  five statements, a third of its time under load. Compiled statements are kept by their text (a fixed
 *  set: no SQL here is built from values). Safe to share because nothing iterates a statement (one open
 *  iterator would make every other use of it fail as busy) or changes its modes (pluck, raw, expand);
 *  SQLite recompiles a kept statement itself after a schema change. */
function cacheStatements(db: DB): void {
  const compile = db.prepare.bind(db);
  const kept = new Map<string, Database.Statement>();
  db.prepare = ((sql: string) => {
    let st = kept.get(sql);
    if (!st) {
      st = compile(sql);
      if (!st.readonly) noteWrites(st);
      kept.set(sql, st);
    }
    return st;
  }) as DB['prepare'];
  const exec = db.exec.bind(db);
  db.exec = ((sql: string) => {
    try {
      return exec(sql);
    } finally {
      stateChanged();
    }
  }) as DB['exec'];
}

/** A statement that writes moves the state epoch (changes.ts) each time it runs, so that answers kept
 *  from before the write are not served after it. */
function noteWrites(st: Database.Statement): void {
  for (const m of ['run', 'get', 'all'] as const) {
    const call = st[m] as (...a: unknown[]) => unknown;
    (st as unknown as Record<string, unknown>)[m] = function (this: Database.Statement, ...args: unknown[]) {
      try {
        return call.apply(st, args);
      } finally {
        stateChanged();
      }
    };
  }
}

/** Pages the database keeps allocated on disk but free (4 MiB of 4 KiB pages), so that state changes can
 *  still be written when the filesystem is full (a container filled it): stopping and removing
 *  containers must work then, or nothing could free the space. The pages are written once (a zero blob,
 *  checkpointed into the file), then freed: they stay in SQLite's freelist, allocated, and the WAL file
 *  keeps the size it reached (4 MiB, about the autocheckpoint size), which later transactions overwrite
 *  after each checkpoint. Best effort: on a disk already full at start berth goes on without. */
const HEADROOM_PAGES = 1024;

export function keepHeadroom(db: DB): void {
  try {
    // Every start: the WAL file is new after the last close, and is grown here again (the blob takes
    // freelist pages first, so the database file grows only by what is missing).
    const pageSize = db.pragma('page_size', { simple: true }) as number;
    db.exec('CREATE TABLE IF NOT EXISTS berth_headroom (b BLOB)');
    db.prepare('INSERT INTO berth_headroom (b) VALUES (zeroblob(?))').run(HEADROOM_PAGES * pageSize);
    db.pragma('wal_checkpoint(PASSIVE)');
    db.exec('DROP TABLE berth_headroom');
    db.pragma('wal_checkpoint(PASSIVE)');
  } catch {
    try { db.exec('DROP TABLE IF EXISTS berth_headroom'); } catch { /* still full */ }
  }
}

function migrate(db: DB): void {
  db.exec('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)');
  const done = new Set((db.prepare('SELECT version FROM schema_version').all() as { version: number }[]).map((r) => r.version));
  const dir = migrationsDir();
  const files = readdirSync(dir).filter((f) => /^\d{3}-.*\.sql$/.test(f)).sort();
  for (const f of files) {
    const version = Number(f.slice(0, 3));
    if (done.has(version)) continue;
    const sql = readFileSync(path.join(dir, f), 'utf8');
    db.transaction(() => {
      db.exec(sql);
      db.prepare('INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)').run(version, f, new Date().toISOString());
    })();
  }
}
