// Healthchecks: HEALTHCHECK from the image or --health-* at create, run as a probe inside the running
// container every interval. State.Health {Status, FailingStreak, Log} follows Docker's rules: a success
// makes the container healthy and clears the streak; a failure counts unless it falls in the start period
// while the container is still starting; `retries` failures in a row make it unhealthy; a probe that
// outlives its timeout is killed and counts as a failure. The last five results are kept.
// The probe itself is a dependency (runProbe), wired to exec by the service.
// The state (status, failing streak, log) is saved with the container's row (container_state.health) after
// every change, and taken up again when berthd re-attaches to the same run of the container.
import Database from 'better-sqlite3';
import { rfc3339Nano, nowNs } from '../lib/time';
import type { ContainerService, Live } from './service';
import type { DB } from '../state/db';

export type RunProbe = (live: Live, cmd: string[], timeoutMs: number) => Promise<{ exitCode: number; output: string }>;

export interface HealthLogEntry { Start: string; End: string; ExitCode: number; Output: string }
export interface HealthView { Status: 'starting' | 'healthy' | 'unhealthy'; FailingStreak: number; Log: HealthLogEntry[] }

interface Monitor { view: HealthView; timer?: NodeJS.Timeout; gen: number; startedAt: number }

const DEFAULT_NS = 30e9;
/** Docker's probe interval during the start period when StartInterval is not set. */
const DEFAULT_START_INTERVAL_NS = 5e9;
const MAX_LOG = 5;
const MAX_OUTPUT = 4096;

interface HealthConfig { test: string[]; intervalMs: number; timeoutMs: number; startPeriodMs: number; startIntervalMs: number; retries: number }

/** The container's healthcheck, or undefined when it has none (or NONE). */
export function healthConfig(live: Live): HealthConfig | undefined {
  const hc = live.rec.config.Healthcheck;
  const t: string[] | undefined = hc?.Test;
  if (!t || t.length === 0 || t[0] === 'NONE') return undefined;
  let test: string[];
  if (t[0] === 'CMD') test = t.slice(1);
  else if (t[0] === 'CMD-SHELL') test = ['/bin/sh', '-c', t.slice(1).join(' ')];
  else test = t; // an image config written by hand: a plain command
  if (test.length === 0) return undefined;
  const ms = (ns: number | undefined, dflt: number) => Math.max(1, Math.round((ns && ns > 0 ? ns : dflt) / 1e6));
  return {
    test,
    intervalMs: ms(hc.Interval, DEFAULT_NS),
    timeoutMs: ms(hc.Timeout, DEFAULT_NS),
    startPeriodMs: hc.StartPeriod && hc.StartPeriod > 0 ? Math.round(hc.StartPeriod / 1e6) : 0,
    startIntervalMs: ms(hc.StartInterval, DEFAULT_START_INTERVAL_NS),
    retries: hc.Retries && hc.Retries > 0 ? hc.Retries : 3,
  };
}

/** What is saved: the view, and which run of the container it belongs to. */
interface Saved { startedAt: string; startedAtMs: number; view: HealthView }

export class HealthMonitors {
  private readonly monitors = new WeakMap<Live, Monitor>();
  private readonly looked = new WeakSet<Live>();
  private readonly saveStmt?: Database.Statement;
  private readonly loadStmt?: Database.Statement;

  constructor(private readonly svc: ContainerService, private readonly runProbe: RunProbe, db?: DB) {
    if (!db) return;
    try {
      // A connection of its own without fsync per commit (WAL, synchronous=NORMAL): a probe result is
      // safe from a berthd crash at once, and probes do not stall the event loop on the disk.
      const conn = new Database(db.name);
      conn.pragma('synchronous = NORMAL');
      conn.pragma('busy_timeout = 5000');
      this.saveStmt = conn.prepare('UPDATE container_state SET health = ? WHERE id = ?');
      this.loadStmt = conn.prepare('SELECT health FROM container_state WHERE id = ?');
    } catch {
      // an older schema or a read-only database: health stays in memory
    }
  }

  private save(live: Live, m: Monitor): void {
    if (!this.saveStmt || live.removed) return;
    const saved: Saved = { startedAt: live.rec.state.startedAt, startedAtMs: m.startedAt, view: m.view };
    try {
      this.saveStmt.run(JSON.stringify(saved), live.rec.id);
    } catch { /* removed meanwhile */ }
  }

  private load(live: Live): Saved | undefined {
    try {
      const row = this.loadStmt?.get(live.rec.id) as { health: string | null } | undefined;
      return row?.health ? (JSON.parse(row.health) as Saved) : undefined;
    } catch {
      return undefined;
    }
  }

  /** The container started (or berthd re-attached to it): probing starts over, status "starting". */
  start(live: Live): void {
    this.stop(live);
    const cfg = healthConfig(live);
    if (!cfg) {
      this.monitors.delete(live);
      return;
    }
    const prev = this.monitors.get(live);
    // berthd re-attached to the run whose health was saved (after a restart of berthd): go on from there.
    const saved = prev ? undefined : this.load(live);
    const m: Monitor = saved && saved.startedAt === live.rec.state.startedAt
      ? { view: saved.view, gen: 1, startedAt: saved.startedAtMs }
      : { view: { Status: 'starting', FailingStreak: 0, Log: prev?.view.Log ?? saved?.view.Log ?? [] }, gen: (prev?.gen ?? 0) + 1, startedAt: Date.now() };
    this.monitors.set(live, m);
    this.looked.add(live);
    this.save(live, m);
    this.schedule(live, m, cfg);
  }

  /** The container stopped: no more probes; the last status stays for inspect. */
  stop(live: Live): void {
    const m = this.monitors.get(live);
    if (!m) return;
    m.gen++;
    if (m.timer) clearTimeout(m.timer);
    m.timer = undefined;
  }

  view(live: Live): HealthView | undefined {
    const m = this.monitors.get(live);
    if (m || this.looked.has(live)) return m?.view;
    // A container berthd has not probed since it started: its last saved state (a stopped container's).
    this.looked.add(live);
    const saved = healthConfig(live) ? this.load(live) : undefined;
    if (!saved) return undefined;
    this.monitors.set(live, { view: saved.view, gen: 0, startedAt: saved.startedAtMs });
    return saved.view;
  }

  private schedule(live: Live, m: Monitor, cfg: HealthConfig): void {
    const gen = m.gen;
    // Within the start period, while still "starting", probes come every StartInterval (as Docker's).
    const starting = m.view.Status === 'starting' && Date.now() - m.startedAt < cfg.startPeriodMs;
    m.timer = setTimeout(() => void this.probe(live, m, cfg, gen), starting ? cfg.startIntervalMs : cfg.intervalMs);
    m.timer.unref?.();
  }

  private async probe(live: Live, m: Monitor, cfg: HealthConfig, gen: number): Promise<void> {
    if (gen !== m.gen || live.removed || live.rec.state.status !== 'running') {
      if (gen === m.gen && live.rec.state.status === 'paused') this.schedule(live, m, cfg);
      return;
    }
    const start = nowNs();
    let exitCode: number;
    let output: string;
    try {
      const r = await this.runProbe(live, cfg.test, cfg.timeoutMs);
      exitCode = r.exitCode;
      output = r.output;
    } catch (e) {
      exitCode = -1;
      output = (e as Error).message;
    }
    if (gen !== m.gen) return; // stopped or restarted meanwhile
    if (exitCode === -2) {
      exitCode = -1;
      output = `Health check exceeded timeout (${cfg.timeoutMs / 1000}s)`;
    }
    const entry: HealthLogEntry = { Start: rfc3339Nano(start), End: rfc3339Nano(nowNs()), ExitCode: exitCode, Output: output.slice(0, MAX_OUTPUT) };
    const v = m.view;
    v.Log = [...v.Log, entry].slice(-MAX_LOG);
    const before = v.Status;
    if (exitCode === 0) {
      v.FailingStreak = 0;
      v.Status = 'healthy';
    } else if (!(v.Status === 'starting' && Date.now() - m.startedAt < cfg.startPeriodMs)) {
      v.FailingStreak++;
      if (v.FailingStreak >= cfg.retries) v.Status = 'unhealthy';
    }
    this.save(live, m);
    if (v.Status !== before) this.svc.emit(live, `health_status: ${v.Status}`);
    this.schedule(live, m, cfg);
  }
}

/** "(healthy)", "(health: starting)", "(unhealthy)" after ps's Status of a running container. */
export function healthSuffix(v: HealthView | undefined): string {
  if (!v) return '';
  return v.Status === 'starting' ? ' (health: starting)' : ` (${v.Status})`;
}
