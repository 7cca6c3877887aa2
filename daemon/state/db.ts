// SQLite is the truth for berth's state. WAL with synchronous=FULL: a state change is on disk when the
// statement returns, and readers never wait for writers. Migrations run in order, each in a transaction,
// recorded in schema_version, so a database from any earlier berth opens.
import Database from 'better-sqlite3';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

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

export function openDb(file: string): DB {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  migrate(db);
  return db;
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
