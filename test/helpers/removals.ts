// `docker rm` answers once the container is gone from the API and deletes its files afterwards, marked in
// the state database's pending_removals until done. Tests that compare a data root before and after read
// it only once those deletions are over.
import path from 'node:path';
import Database from 'better-sqlite3';

export function pendingRemovals(dataRoot: string): string[] {
  const db = new Database(path.join(dataRoot, 'berth.db'), { readonly: true, fileMustExist: true });
  try {
    return (db.prepare('SELECT id FROM pending_removals').all() as Array<{ id: string }>).map((r) => r.id);
  } finally {
    db.close();
  }
}

/** Waits (bounded) until no removal is pending; returns what is still pending when the time is up. */
export async function removalsSettled(dataRoot: string, ms = 10_000): Promise<string[]> {
  let left = pendingRemovals(dataRoot);
  for (let i = 0; i < ms / 25 && left.length; i++) {
    await new Promise((r) => setTimeout(r, 25));
    left = pendingRemovals(dataRoot);
  }
  return left;
}
