// SQL for the image service's two tables: `images` (the config blob is the image; its sha256 is the id) and
// `image_refs` (normalised name:tag or name@digest → image id). Nothing else reads or writes them.
import type { DB } from '../state/db';
import { ZERO_TIME } from '../lib/time';

export interface ImageRow {
  id: string;
  config: string;
  top_chain: string | null;
  size: number;
  created: string;
  loaded_at: string;
  parent: string;
  last_tag_time: string;
  removed: number;
}

export interface RefRow {
  ref: string;
  image_id: string;
  kind: 'tag' | 'digest';
}

export class ImageStore {
  constructor(private readonly db: DB) {}

  get(id: string): ImageRow | undefined {
    return this.db.prepare('SELECT * FROM images WHERE id = ?').get(id) as ImageRow | undefined;
  }

  /** Images that exist for users (not the hidden ones kept for containers). */
  all(): ImageRow[] {
    return this.db.prepare('SELECT * FROM images WHERE removed = 0').all() as ImageRow[];
  }

  /** Every row, hidden ones included: the layer collector must keep their layers. */
  allTops(): (string | null)[] {
    return (this.db.prepare('SELECT top_chain FROM images').all() as { top_chain: string | null }[]).map((r) => r.top_chain);
  }

  hidden(): ImageRow[] {
    return this.db.prepare('SELECT * FROM images WHERE removed = 1').all() as ImageRow[];
  }

  count(): number {
    return (this.db.prepare('SELECT COUNT(*) AS n FROM images WHERE removed = 0').get() as { n: number }).n;
  }

  /** Visible image ids starting with `sha256:<hexPrefix>`. */
  idsWithPrefix(hexPrefix: string): string[] {
    const like = `sha256:${hexPrefix.replace(/[%_]/g, '')}%`;
    return (this.db.prepare('SELECT id FROM images WHERE removed = 0 AND id LIKE ?').all(like) as { id: string }[]).map((r) => r.id);
  }

  /** Inserts a new image, or makes a hidden one visible again (it was loaded again). */
  insert(r: { id: string; config: string; topChain: string | null; size: number; created: string; parent: string }): boolean {
    const res = this.db.prepare(`INSERT INTO images (id, config, top_chain, size, created, loaded_at, parent, last_tag_time, removed)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0)
      ON CONFLICT(id) DO UPDATE SET removed = 0 WHERE removed = 1`)
      .run(r.id, r.config, r.topChain, r.size, r.created, new Date().toISOString(), r.parent, ZERO_TIME);
    return res.changes === 1;
  }

  setLastTagTime(id: string, t: string): void {
    this.db.prepare('UPDATE images SET last_tag_time = ? WHERE id = ?').run(t, id);
  }

  children(id: string): string[] {
    return (this.db.prepare('SELECT id FROM images WHERE parent = ? AND removed = 0').all(id) as { id: string }[]).map((r) => r.id);
  }

  /** Deletes the image row, or, when a container still refers to it (the foreign key says so), hides it.
   *  Returns whether the row is gone. */
  delete(id: string): boolean {
    try {
      this.db.prepare('DELETE FROM images WHERE id = ?').run(id);
      return true;
    } catch (e) {
      if ((e as { code?: string }).code !== 'SQLITE_CONSTRAINT_FOREIGNKEY') throw e;
      this.db.prepare('UPDATE images SET removed = 1 WHERE id = ?').run(id);
      return false;
    }
  }

  // ---- references ---------------------------------------------------------------------------------

  refTarget(ref: string): string | undefined {
    return (this.db.prepare('SELECT image_id FROM image_refs WHERE ref = ?').get(ref) as { image_id: string } | undefined)?.image_id;
  }

  refsOf(id: string): RefRow[] {
    return this.db.prepare('SELECT * FROM image_refs WHERE image_id = ? ORDER BY ref').all(id) as RefRow[];
  }

  allRefs(): Map<string, RefRow[]> {
    const out = new Map<string, RefRow[]>();
    for (const r of this.db.prepare('SELECT * FROM image_refs ORDER BY ref').all() as RefRow[]) {
      const l = out.get(r.image_id);
      if (l) l.push(r);
      else out.set(r.image_id, [r]);
    }
    return out;
  }

  /** Points `ref` at `id`; returns the image it pointed at before, if another. */
  setRef(ref: string, id: string, kind: 'tag' | 'digest'): string | undefined {
    const prev = this.refTarget(ref);
    this.db.prepare('INSERT INTO image_refs (ref, image_id, kind) VALUES (?, ?, ?) ON CONFLICT(ref) DO UPDATE SET image_id = excluded.image_id, kind = excluded.kind')
      .run(ref, id, kind);
    return prev !== undefined && prev !== id ? prev : undefined;
  }

  deleteRef(ref: string): boolean {
    return this.db.prepare('DELETE FROM image_refs WHERE ref = ?').run(ref).changes === 1;
  }

  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }
}
