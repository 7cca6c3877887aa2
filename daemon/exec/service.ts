// Exec: one more process in a running container (docker exec). berthd never forks container code: every
// exec runs under its own `berth-shim exec` (addon/shim/PROTOCOL.md, "Exec mode"), which joins the
// container init's namespaces and cgroups and supervises the process. Exec records are kept in SQLite
// (table execs, migration 030) so that inspect still answers after berthd restarts (Docker keeps them in
// memory only); finished ones are dropped some minutes after they end. A detached exec that was running
// when berthd went down is watched through its shim's exit.json, as containers are.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { Logger } from 'pino';
import type { DB } from '../state/db';
import type { EventSink } from '../containers/deps';
import type { ContainerService } from '../containers/service';
import type { NetworkService } from '../network/service';
import { conflict, invalid, notFound, BerthError } from '../errors/errors';
import { newId } from '../lib/ids';
import { StartError } from '../runtime/supervisor';
import { hostTools } from '../runtime/host-tools';
import type { HostTools } from '../runtime/types';
import type { ExitInfo, ShimConnection } from '../runtime/types';
import type { Live } from '../containers/service';
import { resolveUserSync } from '../containers/user';
import { containerCaps } from '../containers/spec';
import { crashPoint } from '../lib/crash';

/** POST /containers/{id}/exec body (Docker's ExecConfig). */
export interface ExecCreateBody {
  User?: string;
  Privileged?: boolean;
  Tty?: boolean;
  AttachStdin?: boolean;
  AttachStdout?: boolean;
  AttachStderr?: boolean;
  Detach?: boolean;
  DetachKeys?: string;
  Env?: string[] | null;
  WorkingDir?: string;
  Cmd?: string[] | null;
  ConsoleSize?: [number, number] | null;
}

/** Where an exec's output goes and what it is told when the exec ends. */
export interface ExecSink {
  write(stream: number, data: Buffer): void;
  /** The process exited (its exit code is already recorded) or could not start: close the stream. */
  end(): void;
}

export interface ExecRecord {
  id: string;
  live: Live;
  config: Required<Pick<ExecCreateBody, 'User' | 'Privileged' | 'Tty' | 'AttachStdin' | 'AttachStdout' | 'AttachStderr' | 'DetachKeys' | 'WorkingDir'>> & {
    Env: string[];
    Cmd: string[];
    ConsoleSize: [number, number] | null;
  };
  started: boolean;
  running: boolean;
  exitCode: number | null;
  pid: number;
  conn?: ShimConnection;
  /** A resize that came before the process existed (exec -it resizes right after the 101). */
  pendingSize?: [number, number];
  sink?: ExecSink;
  endedAt?: number;
  /** Input that came before the process existed (the CLI writes right after the 101). */
  pendingStdin: Buffer[];
  pendingStdinClose: boolean;
}

/** How long a finished exec stays inspectable. */
const KEEP_FINISHED_MS = 5 * 60 * 1000;

const registry = new WeakMap<ExecDeps, ExecService>();

/** Execs of each container that have not ended yet (created or running), for inspect's ExecIDs. */
const openExecs = new Map<string, Set<string>>();

/** Container inspect's ExecIDs: the container's execs that have not ended, or null. */
export function openExecIds(containerId: string): string[] | null {
  const s = openExecs.get(containerId);
  return s && s.size ? [...s] : null;
}

/** The exec service of a daemon (made on first use, so the Daemon class needs no field for it). */
/** What the exec service needs: the containers it runs processes in (and their runtime), the shim binary,
 *  the database file (for a connection of its own), whether a container's network is set up. */
export interface ExecDeps {
  readonly config: { shimPath: string };
  readonly db: Pick<DB, 'name'>;
  readonly log: Logger;
  readonly events: EventSink;
  readonly containers: Pick<ContainerService, 'lookup' | 'processOf' | 'layerDir' | 'stateDir' | 'runtime'>;
  readonly networks: Pick<NetworkService, 'settled'>;
  /** /proc, to check the container's process is still that process (the real host when not given). */
  readonly hostTools?: Pick<HostTools, 'stillSame'>;
}

export function execService(d: ExecDeps): ExecService {
  let s = registry.get(d);
  if (!s) {
    s = new ExecService(d);
    registry.set(d, s);
  }
  return s;
}

/** Docker's error text for a failed exec start, and the exit code it records (moby's translation of the
 *  runtime's message: 127 when the command does not exist, 126 when it cannot be run). */
export function execStartFailure(cmd: string, msg: string): { text: string; exitCode: number; invalidConfig: boolean } {
  const text = `OCI runtime exec failed: exec failed: unable to start container process: ${msg}: unknown`;
  let exitCode = 126;
  let invalidConfig = false;
  if (text.includes(cmd) && /executable file not found|no such file or directory/.test(text)) {
    exitCode = 127;
    invalidConfig = true;
  }
  if (text.includes('permission denied')) {
    exitCode = 126;
    invalidConfig = true;
  }
  return { text, exitCode, invalidConfig };
}

interface ExecRow { id: string; container_id: string; config: string; started: number; running: number; exit_code: number | null; pid: number; ended_at: number | null }

export class ExecService {
  private readonly execs = new Map<string, ExecRecord>();
  /** A connection of its own with synchronous=NORMAL: in WAL mode a commit is then safe from a crash of
   *  berthd (it is in the OS's hands) without an fsync, which would cost every `docker exec` milliseconds.
   *  Only a power loss can lose the last records, and the execs themselves die with the host. */
  private readonly db: Database.Database | null;
  private readonly upsert?: Database.Statement;
  private readonly remove?: Database.Statement;

  constructor(private readonly d: ExecDeps) {
    let db: Database.Database | null = null;
    try {
      db = new Database(d.db.name);
      db.pragma('synchronous = NORMAL');
      db.pragma('busy_timeout = 5000');
      db.pragma('foreign_keys = ON');
      this.upsert = db.prepare(`INSERT OR REPLACE INTO execs (id, container_id, config, started, running, exit_code, pid, ended_at)
        VALUES (@id, @container_id, @config, @started, @running, @exit_code, @pid, @ended_at)`);
      this.remove = db.prepare('DELETE FROM execs WHERE id = ?');
    } catch (err) {
      d.log.warn({ err }, 'exec records are kept in memory only');
      db = null;
    }
    this.db = db;
    if (db) this.load(db);
  }

  /** Writes the record's current state (the container may be gone meanwhile: then there is nothing to keep). */
  private persist(e: ExecRecord): void {
    if (!this.upsert || e.live.removed) return;
    try {
      this.upsert.run({
        id: e.id, container_id: e.live.rec.id, config: JSON.stringify(e.config), started: e.started ? 1 : 0,
        running: e.running ? 1 : 0, exit_code: e.exitCode, pid: e.pid, ended_at: e.endedAt ?? null,
      });
    } catch (err) {
      this.d.log.warn({ err, id: e.id }, 'cannot save the exec record');
    }
  }

  private forget(id: string): void {
    this.execs.delete(id);
    try {
      this.remove?.run(id);
    } catch { /* the container's removal took it already */ }
  }

  private execDir(e: ExecRecord): string {
    return path.join(this.d.containers.stateDir(e.live.rec.id), 'exec', e.id);
  }

  /** The records of an earlier berthd: finished ones until they expire, running ones watched to their end. */
  private load(db: Database.Database): void {
    const rows = db.prepare('SELECT * FROM execs').all() as ExecRow[];
    for (const r of rows) {
      let live: Live;
      try {
        live = this.d.containers.lookup(r.container_id);
      } catch {
        this.remove!.run(r.id);
        continue;
      }
      if (r.ended_at !== null && Date.now() - r.ended_at > KEEP_FINISHED_MS) {
        this.remove!.run(r.id);
        continue;
      }
      const e: ExecRecord = {
        id: r.id, live, config: JSON.parse(r.config) as ExecRecord['config'], started: !!r.started, running: !!r.running,
        exitCode: r.exit_code, pid: r.pid, endedAt: r.ended_at ?? undefined, pendingStdin: [], pendingStdinClose: false,
      };
      this.execs.set(e.id, e);
      if (e.exitCode !== null) {
        const t = setTimeout(() => this.forget(e.id), Math.max(0, KEEP_FINISHED_MS - (Date.now() - (e.endedAt ?? Date.now()))));
        t.unref();
        continue;
      }
      let open = openExecs.get(live.rec.id);
      if (!open) openExecs.set(live.rec.id, (open = new Set()));
      open.add(e.id);
      if (e.started) this.watchOrphan(e);
    }
  }

  /** A running exec whose supervisor lost berthd's connection: its end is read from the exit.json its shim
   *  writes (or, when the shim is gone without one, taken as killed). */
  private watchOrphan(e: ExecRecord): void {
    const dir = this.execDir(e);
    const check = (): boolean => {
      const info = this.d.containers.runtime.exitStatus(dir);
      if (!info && this.d.containers.runtime.shimAlive(dir, e.id)) return false;
      e.exitCode = info ? info.exitCode : 137;
      e.running = false;
      this.emit(e, 'exec_die', { exitCode: String(e.exitCode) });
      this.finish(e, dir);
      return true;
    };
    if (check()) return;
    const t = setInterval(() => {
      if (e.exitCode !== null || check()) clearInterval(t);
    }, 250);
    t.unref();
  }

  get(id: string): ExecRecord {
    const e = this.execs.get(id);
    // The container's removal takes its execs along (their rows went with it by ON DELETE CASCADE).
    if (e?.live.removed) this.execs.delete(id);
    if (!e || e.live.removed) throw notFound(`No such exec instance: ${id}`);
    return e;
  }

  /** Running execs of a container (inspect's ExecIDs). */
  idsFor(containerId: string): string[] {
    return [...this.execs.values()].filter((e) => e.live.rec.id === containerId && e.exitCode === null).map((e) => e.id);
  }

  private checkRunning(live: Live): void {
    const st = live.rec.state.status;
    if (st === 'paused') throw conflict(`Container ${live.rec.id} is paused, unpause the container before exec`);
    if (st === 'restarting') throw conflict(`Container ${live.rec.id} is restarting, wait until the container is running`);
    if (st !== 'running' || !live.rec.state.pid || live.removed) throw conflict(`Container ${live.rec.id} is not running`);
  }

  private emit(e: ExecRecord, action: string, extra: Record<string, string> = {}): void {
    const rec = e.live.rec;
    const attrs: Record<string, string> = { ...(rec.config.Labels ?? {}), execID: e.id, image: rec.imageRef, name: rec.name.slice(1), ...extra };
    this.d.events.emit('container', action, rec.id, attrs);
  }

  private commandLine(e: ExecRecord): string {
    // Docker's Action string: the entrypoint, a space, then the arguments joined by spaces
    // (`exec_create: true ` keeps the trailing space when there are none).
    return `${e.config.Cmd[0]} ${e.config.Cmd.slice(1).join(' ')}`;
  }

  create(ref: string, body: ExecCreateBody): { Id: string } {
    const live = this.d.containers.lookup(ref);
    if (!body || !Array.isArray(body.Cmd) || body.Cmd.length === 0) throw invalid('No exec command specified');
    if (body.Env != null && !Array.isArray(body.Env)) throw invalid('Env must be an array of strings');
    this.checkRunning(live);
    // Decoded as Go decodes a [2]uint: missing items are 0, further ones are dropped.
    const cs: [number, number] | null = Array.isArray(body.ConsoleSize) ? [body.ConsoleSize[0] ?? 0, body.ConsoleSize[1] ?? 0] : null;
    const e: ExecRecord = {
      id: newId(),
      live,
      config: {
        User: body.User ?? '',
        Privileged: !!body.Privileged,
        Tty: !!body.Tty,
        AttachStdin: !!body.AttachStdin,
        AttachStdout: !!body.AttachStdout,
        AttachStderr: !!body.AttachStderr,
        DetachKeys: body.DetachKeys ?? '',
        Env: (body.Env ?? []).map(String),
        WorkingDir: body.WorkingDir ?? '',
        Cmd: body.Cmd.map(String),
        ConsoleSize: cs,
      },
      started: false,
      running: false,
      exitCode: null,
      pid: 0,
      pendingStdin: [],
      pendingStdinClose: false,
    };
    this.execs.set(e.id, e);
    this.persist(e);
    let open = openExecs.get(live.rec.id);
    if (!open) openExecs.set(live.rec.id, (open = new Set()));
    open.add(e.id);
    this.emit(e, `exec_create: ${this.commandLine(e)}`);
    return { Id: e.id };
  }

  /** GET /exec/{id}/json, in Docker's shape. */
  inspect(id: string): object {
    const e = this.get(id);
    if (e.exitCode !== null && e.endedAt && Date.now() - e.endedAt < 1000) this.d.containers.runtime.execEnded(this.d.config.shimPath, 1);
    return {
      ID: e.id,
      Running: e.running,
      ExitCode: e.exitCode,
      ProcessConfig: {
        tty: e.config.Tty,
        entrypoint: e.config.Cmd[0],
        arguments: e.config.Cmd.slice(1),
        privileged: e.config.Privileged,
        ...(e.config.User ? { user: e.config.User } : {}),
      },
      OpenStdin: e.config.AttachStdin,
      OpenStderr: e.config.AttachStderr,
      OpenStdout: e.config.AttachStdout,
      CanRemove: false,
      ContainerID: e.live.rec.id,
      DetachKeys: e.config.DetachKeys,
      Pid: e.pid,
    };
  }

  /** Checks that an exec can be started, before a hijacked stream is answered with 101. */
  checkStartable(id: string): ExecRecord {
    const e = this.get(id);
    if (e.exitCode !== null) throw conflict(`Error: Exec command ${e.id} has already run`);
    if (e.started) throw conflict(`Error: Exec command ${e.id} is already running`);
    this.checkRunning(e.live);
    return e;
  }

  /**
   * Starts the exec. With a sink (attached start) output goes to it and a failure to start is written into
   * it as Docker does (the 101 is already out); without one (Detach) a failure is thrown. Resolves once
   * the process runs or has failed to start.
   */
  async start(id: string, sink: ExecSink | null): Promise<void> {
    const e = this.checkStartable(id);
    e.started = true;
    e.running = true;
    e.sink = sink ?? undefined;
    const live = e.live;
    const rec = live.rec;
    this.emit(e, `exec_start: ${this.commandLine(e)}`);
    const dir = path.join(this.d.containers.stateDir(rec.id), 'exec', e.id);
    try {
      const rootfs = path.join(this.d.containers.layerDir(rec), 'merged');
      // A `network disconnect` replies before the kernel has removed the veth: the exec sees it gone.
      await this.d.networks.settled(rec.id);
      // The few small files on this path are read and written synchronously: each async call would cost
      // a round trip through the thread pool, more than the call itself.
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      const user = resolveUserSync(rootfs, e.config.User || rec.config.User || '', rec.hostConfig.GroupAdd ?? []);
      const cspec = this.containerSpec(live);
      const proc = {
        process: {
          terminal: e.config.Tty,
          ...(e.config.Tty && e.config.ConsoleSize && (e.config.ConsoleSize[0] > 0 || e.config.ConsoleSize[1] > 0)
            ? { consoleSize: { height: e.config.ConsoleSize[0], width: e.config.ConsoleSize[1] } } : {}),
          user: { uid: user.uid, gid: user.gid, additionalGids: user.additionalGids },
          args: e.config.Cmd,
          env: execEnv(rec, e.config.Tty, e.config.Env, user.home),
          cwd: e.config.WorkingDir || rec.config.WorkingDir || '/',
          capabilities: capSets(containerCaps(rec.hostConfig, e.config.Privileged || !!rec.hostConfig.Privileged)),
          rlimits: cspec.rlimits,
          noNewPrivileges: cspec.noNewPrivileges,
          // The container's AppArmor profile confines its execs too (as Docker's).
          ...(cspec.apparmorProfile ? { apparmorProfile: cspec.apparmorProfile } : {}),
        },
        // The filter is compiled by the first exec after the container's start and kept in its state
        // directory (made anew by every start) for the next ones.
        linux: cspec.seccomp ? {
          seccomp: cspec.seccomp, seccompCache: path.join(this.d.containers.stateDir(rec.id), 'seccomp.bpf'),
          // The profile's own compiled filter (written by the container's start): the first exec reads it.
          ...(cspec.seccompCache ? { seccompSharedCache: cspec.seccompCache } : {}),
        } : {},
      };
      const processFile = path.join(dir, 'process.json');
      writeFileSync(processFile, JSON.stringify(proc));
      this.checkRunning(live);
      // The container's process by pid and start time: its cgroups are read through /proc/PID and checked
      // to still be its own after, and the shim checks again once it holds the namespaces it joins.
      const target = this.d.containers.processOf(live);
      const cgroupDirs = this.d.containers.runtime.cgroupDirsOf(target.pid);
      if (!(this.d.hostTools ?? hostTools).stillSame(target)) throw conflict(`Container ${rec.id} is not running`);
      const { conn, pid } = await this.d.containers.runtime.spawnExec({
        shimPath: this.d.config.shimPath, id: e.id, targetPid: target.pid, targetStart: target.startTime, processFile, stateDir: dir,
        cgroupDirs, stdin: e.config.AttachStdin && !!sink,
      });
      e.pid = pid;
      crashPoint('exec.after-spawn');
      this.persist(e);
      this.wire(e, conn);
    } catch (err) {
      e.running = false;
      const msg = err instanceof Error ? err.message : String(err);
      if (!sink && !(err instanceof StartError) && !(err instanceof BerthError)) {
        e.exitCode = 126;
        this.finish(e, dir);
        throw err;
      }
      // Whatever kept the process from running (the runtime's message, a user not in /etc/passwd) is
      // reported as Docker reports runc's failures.
      const f = execStartFailure(e.config.Cmd[0], msg);
      e.exitCode = f.exitCode;
      this.finish(e, dir);
      if (!sink) throw f.invalidConfig ? invalid(f.text) : new BerthError('system', f.text);
      sink.write(1, Buffer.from(`${f.text}\r\n`));
      sink.end();
    }
  }

  private wire(e: ExecRecord, conn: ShimConnection): void {
    e.conn = conn;
    conn.on('output', (stream: number, data: Buffer) => {
      if (!e.sink) return;
      if (stream === 1 && !e.config.AttachStdout) return;
      if (stream === 2 && !e.config.AttachStderr) return;
      e.sink.write(stream, data);
    });
    const done = (info: ExitInfo) => {
      if (e.exitCode !== null) return;
      // The exit code is final before the stream closes: the CLI inspects the exec right after.
      e.exitCode = info.exitCode;
      e.running = false;
      e.conn = undefined;
      conn.close();
      this.emit(e, 'exec_die', { exitCode: String(info.exitCode) });
      this.finish(e, path.join(this.d.containers.stateDir(e.live.rec.id), 'exec', e.id));
      e.sink?.end();
      e.sink = undefined;
      // A client asks for the exit code right after the stream's end and is then done: the next waiting
      // shim is made after that.
      this.d.containers.runtime.execEnded(this.d.config.shimPath, 8);
    };
    conn.once('exited', done);
    conn.once('close', () => done({ exitCode: 137, finishedAt: '' }));
    if (e.pendingSize) this.resizeConn(e, e.pendingSize[0], e.pendingSize[1]);
    for (const b of e.pendingStdin.splice(0)) conn.stdin(b);
    if (e.pendingStdinClose) conn.closeStdin();
    conn.release();
  }

  private finish(e: ExecRecord, dir: string): void {
    e.endedAt = Date.now();
    const open = openExecs.get(e.live.rec.id);
    open?.delete(e.id);
    if (open && open.size === 0) openExecs.delete(e.live.rec.id);
    // Recorded before the directory (and its exit.json) goes: a crash in between leaves one or the other.
    this.persist(e);
    void rm(dir, { recursive: true, force: true }).catch(() => {});
    const t = setTimeout(() => this.forget(e.id), KEEP_FINISHED_MS);
    t.unref();
  }

  /** The attached client's stdin. */
  stdin(e: ExecRecord, data: Buffer): void {
    if (e.conn) e.conn.stdin(data);
    else if (e.exitCode === null) e.pendingStdin.push(data);
  }

  /** The attached client finished its input (a half-close): the process's stdin is closed. */
  closeStdin(e: ExecRecord): void {
    if (e.conn) e.conn.closeStdin();
    else if (e.exitCode === null) e.pendingStdinClose = true;
  }

  /** The attached client went away or detached: output is no longer sent; the process keeps running. */
  detach(e: ExecRecord): void {
    e.sink = undefined;
  }

  resize(id: string, h: number, w: number): void {
    const e = this.get(id);
    if (e.exitCode !== null) throw conflict(`Exec ${e.id} is not running`);
    if (e.conn) this.resizeConn(e, h, w);
    else e.pendingSize = [h, w];
  }

  private resizeConn(e: ExecRecord, h: number, w: number): void {
    e.conn?.resize(h, w);
  }

  // The process settings of the container's config.json (the one place where berthd wrote them down),
  // read once per start of the container.
  private containerSpec(live: Live): ExecBase {
    const started = live.rec.state.startedAt;
    const cached = execBases.get(live);
    if (cached && cached.started === started) return cached;
    let spec: { process?: { rlimits?: unknown[]; noNewPrivileges?: boolean; apparmorProfile?: string }; linux?: { seccomp?: unknown; seccompCache?: string } };
    try {
      spec = JSON.parse(readFileSync(path.join(this.d.containers.stateDir(live.rec.id), 'config.json'), 'utf8'));
    } catch (err) {
      // Never an exec without the container's filter: a start that cannot read it fails.
      throw new BerthError('system', `cannot read the container's process settings: ${(err as Error).message}`);
    }
    const base: ExecBase = {
      started, rlimits: spec.process?.rlimits ?? [], noNewPrivileges: !!spec.process?.noNewPrivileges, seccomp: spec.linux?.seccomp,
      seccompCache: spec.linux?.seccompCache, apparmorProfile: spec.process?.apparmorProfile,
    };
    execBases.set(live, base);
    return base;
  }
}

/** What an exec inherits from its container's own process (rlimits, no_new_privs, the seccomp filter,
 *  which applies to exec --privileged too, as runc applies it to every process of the container). */
interface ExecBase { started: string; rlimits: unknown[]; noNewPrivileges: boolean; seccomp: unknown; seccompCache?: string; apparmorProfile?: string }
const execBases = new WeakMap<Live, ExecBase>();

function capSets(caps: string[]): object {
  return { bounding: caps, effective: caps, permitted: caps, inheritable: [], ambient: [] };
}

/** The exec's environment as Docker builds it: PATH and HOSTNAME defaults, TERM for a TTY, the
 *  container's Env, then the exec's -e values (which replace variables of the same name), HOME last. */
function execEnv(rec: Live['rec'], tty: boolean, extra: string[], home: string): string[] {
  const env: string[] = [];
  const set = (kv: string) => {
    const k = kv.includes('=') ? kv.slice(0, kv.indexOf('=')) : kv;
    const i = env.findIndex((x) => x === k || x.startsWith(`${k}=`));
    if (i >= 0) env[i] = kv;
    else env.push(kv);
  };
  set('PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin');
  set(`HOSTNAME=${rec.config.Hostname}`);
  if (tty) set('TERM=xterm');
  for (const kv of rec.config.Env ?? []) set(kv);
  for (const kv of extra) {
    // `-e NAME` without a value and without NAME in the CLI's environment arrives as "NAME": unset.
    if (!kv.includes('=')) {
      const i = env.findIndex((x) => x.startsWith(`${kv}=`));
      if (i >= 0) env.splice(i, 1);
      continue;
    }
    set(kv);
  }
  if (!env.some((x) => x.startsWith('HOME='))) env.push(`HOME=${home || '/'}`);
  return env;
}
