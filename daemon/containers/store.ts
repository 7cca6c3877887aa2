// The container repository: rows in `containers` (immutable config) and `container_state` (mutable).
// Every state change is one statement or one transaction; nothing else writes these tables.
import type { DB } from '../state/db';
import type { ContainerRecord, ContainerState } from './model';

interface Row {
  id: string; name: string; image_id: string; image_ref: string; created: string; config: string;
  host_config: string; extra: string; status: ContainerState['status']; pid: number; shim_pid: number;
  exit_code: number; error: string; started_at: string; finished_at: string; oom_killed: number;
  restart_count: number; has_been_started: number;
}

const SELECT = `SELECT c.*, s.status, s.pid, s.shim_pid, s.exit_code, s.error, s.started_at, s.finished_at,
  s.oom_killed, s.restart_count, s.has_been_started FROM containers c JOIN container_state s ON s.id = c.id`;

function fromRow(r: Row): ContainerRecord {
  const extra = JSON.parse(r.extra);
  return {
    id: r.id, name: r.name, imageId: r.image_id, imageRef: r.image_ref, created: r.created,
    config: JSON.parse(r.config), hostConfig: JSON.parse(r.host_config),
    path: extra.path, args: extra.args, layerId: extra.layerId, manuallyStopped: !!extra.manuallyStopped, mounts: extra.mounts ?? [], idMap: extra.idMap ?? null,
    state: {
      status: r.status, pid: r.pid, shimPid: r.shim_pid, exitCode: r.exit_code, error: r.error,
      startedAt: r.started_at, finishedAt: r.finished_at, oomKilled: !!r.oom_killed,
      restartCount: r.restart_count, hasBeenStarted: !!r.has_been_started,
    },
  };
}

export class ContainerStore {
  private readonly insertC;
  private readonly insertS;
  private readonly updateS;
  private readonly del;
  private readonly rename_;
  private readonly markRemoval;
  private readonly unmarkRemoval;

  constructor(private readonly db: DB) {
    this.insertC = db.prepare(`INSERT INTO containers (id, name, image_id, image_ref, created, config, host_config, extra)
      VALUES (@id, @name, @imageId, @imageRef, @created, @config, @hostConfig, @extra)`);
    this.insertS = db.prepare(`INSERT INTO container_state (id, status) VALUES (?, ?)`);
    this.updateS = db.prepare(`UPDATE container_state SET status=@status, pid=@pid, shim_pid=@shimPid, exit_code=@exitCode,
      error=@error, started_at=@startedAt, finished_at=@finishedAt, oom_killed=@oom, restart_count=@restartCount,
      has_been_started=@hbs WHERE id=@id`);
    this.del = db.prepare('DELETE FROM containers WHERE id = ?');
    this.rename_ = db.prepare('UPDATE containers SET name = ? WHERE id = ?');
    this.markRemoval = db.prepare('INSERT OR REPLACE INTO pending_removals (id, layer_id) VALUES (?, ?)');
    this.unmarkRemoval = db.prepare('DELETE FROM pending_removals WHERE id = ?');
  }

  insert(c: ContainerRecord): void {
    this.db.transaction(() => {
      this.insertC.run({
        id: c.id, name: c.name, imageId: c.imageId, imageRef: c.imageRef, created: c.created,
        config: JSON.stringify(c.config), hostConfig: JSON.stringify(c.hostConfig),
        extra: JSON.stringify({ path: c.path, args: c.args, layerId: c.layerId, mounts: c.mounts ?? [], idMap: c.idMap ?? null }),
      });
      this.insertS.run(c.id, c.state.status);
    })();
  }

  saveState(id: string, s: ContainerState): void {
    this.updateS.run({
      id, status: s.status, pid: s.pid, shimPid: s.shimPid, exitCode: s.exitCode, error: s.error,
      startedAt: s.startedAt, finishedAt: s.finishedAt, oom: s.oomKilled ? 1 : 0, restartCount: s.restartCount,
      hbs: s.hasBeenStarted ? 1 : 0,
    });
  }

  /** Deletes the container's rows and marks its files for deletion (pending_removals), in one statement
   *  pair of the caller's transaction. */
  remove(id: string, layerId: string): void {
    this.del.run(id);
    this.markRemoval.run(id, layerId);
  }

  /** The removed containers whose files are not yet all deleted. */
  pendingRemovals(): Array<{ id: string; layerId: string }> {
    return this.db.prepare('SELECT id, layer_id AS layerId FROM pending_removals').all() as Array<{ id: string; layerId: string }>;
  }

  removalDone(id: string): void {
    this.unmarkRemoval.run(id);
  }

  rename(id: string, name: string): void {
    this.rename_.run(name, id);
  }

  /** docker update: the new HostConfig replaces the old one in one statement. */
  saveHostConfig(id: string, hostConfig: unknown): void {
    this.db.prepare('UPDATE containers SET host_config = ? WHERE id = ?').run(JSON.stringify(hostConfig), id);
  }

  setIdMap(id: string, v: unknown): void {
    this.db.prepare(`UPDATE containers SET extra = json_set(extra, '$.idMap', json(?)) WHERE id = ?`).run(JSON.stringify(v ?? null), id);
  }

  setManuallyStopped(id: string, v: boolean): void {
    this.db.prepare(`UPDATE containers SET extra = json_set(extra, '$.manuallyStopped', json(?)) WHERE id = ?`).run(v ? 'true' : 'false', id);
  }

  all(): ContainerRecord[] {
    return (this.db.prepare(`${SELECT} ORDER BY c.created DESC`).all() as Row[]).map(fromRow);
  }
}
