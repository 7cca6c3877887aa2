// Restart policies (no, always, on-failure[:N], unless-stopped), as Docker's restart manager applies them:
// on every exit the policy decides; a restart waits a back-off that starts at 100 ms and doubles up to a
// minute, and goes back to 100 ms once the container has run for 10 s. An explicit stop (docker stop, or
// docker kill with SIGKILL or the stop signal) is never restarted; `unless-stopped` also stays down when
// berthd starts again after it was stopped, while `always` comes back then, as in Docker.
import type { ContainerService, Live } from './service';
import { parseRfc3339Ns, nowNs } from '../lib/time';

const FIRST_DELAY_MS = 100;
const MAX_DELAY_MS = 60_000;
const RESET_AFTER_MS = 10_000;

export interface RestartPolicy { Name: string; MaximumRetryCount?: number }

/** Per-container memory of the policy: the back-off, how many restarts this run of the policy made, the
 *  pending timer. Held beside the service's Live, never persisted (Docker keeps it in memory too). */
interface PolicyState { delay: number; count: number; timer?: NodeJS.Timeout }

export function normalizePolicy(p: RestartPolicy | undefined): RestartPolicy {
  const name = p?.Name || 'no';
  return { Name: name, MaximumRetryCount: p?.MaximumRetryCount ?? 0 };
}

export class RestartPolicies {
  private readonly states = new WeakMap<Live, PolicyState>();

  constructor(private readonly svc: ContainerService) {}

  private state(live: Live): PolicyState {
    let s = this.states.get(live);
    if (!s) this.states.set(live, (s = { delay: 0, count: 0 }));
    return s;
  }

  /** Would the policy restart a container that exited with `exitCode`? */
  shouldRestart(live: Live, exitCode: number): boolean {
    const p = normalizePolicy(live.rec.hostConfig.RestartPolicy);
    const manual = !!live.rec.manuallyStopped;
    switch (p.Name) {
      case 'always': return !manual;
      case 'unless-stopped': return !manual;
      case 'on-failure': {
        const max = p.MaximumRetryCount ?? 0;
        return !manual && exitCode !== 0 && (max === 0 || this.state(live).count < max);
      }
      default: return false;
    }
  }

  /** Called by the service after an exit has been recorded (die emitted, waiters woken). */
  onExit(live: Live): boolean {
    const rec = live.rec;
    if (live.removed || rec.hostConfig.AutoRemove || live.shuttingDown) return false;
    const s = this.state(live);
    const ranMs = ranFor(rec.state.startedAt, rec.state.finishedAt);
    if (ranMs >= RESET_AFTER_MS) s.delay = 0;
    s.delay = s.delay === 0 ? FIRST_DELAY_MS : Math.min(s.delay * 2, MAX_DELAY_MS);
    if (!this.shouldRestart(live, rec.state.exitCode)) return false;
    s.count++;
    rec.state.status = 'restarting';
    rec.state.restartCount++;
    this.svc.save(live);
    this.schedule(live, s.delay);
    return true;
  }

  private schedule(live: Live, ms: number): void {
    const s = this.state(live);
    if (s.timer) clearTimeout(s.timer);
    s.timer = setTimeout(() => {
      s.timer = undefined;
      this.svc.policyStart(live).catch((e) => this.svc.logWarn(e, live.rec.id, 'restart by policy failed'));
    }, ms);
    s.timer.unref?.();
  }

  /** docker stop / rm of a restarting container: drop the pending restart. True when one was pending. */
  cancel(live: Live): boolean {
    const s = this.states.get(live);
    if (!s?.timer) return false;
    clearTimeout(s.timer);
    s.timer = undefined;
    return true;
  }

  /** docker start / restart by the user: the policy starts over (count and back-off). */
  reset(live: Live): void {
    const s = this.states.get(live);
    if (s) {
      if (s.timer) clearTimeout(s.timer);
      this.states.delete(live);
    }
  }

  /** After berthd starts: a stopped container whose policy says it should be running is started again
   *  (Docker's daemon-start rule: always, unless-stopped when not stopped by hand, on-failure after a
   *  failure within its retry budget). */
  wantsStartAfterDaemonStart(live: Live): boolean {
    const rec = live.rec;
    if (!rec.state.hasBeenStarted || rec.hostConfig.AutoRemove) return false;
    if (rec.state.status !== 'exited') return false;
    const p = normalizePolicy(rec.hostConfig.RestartPolicy);
    if (p.Name === 'always') return true;
    return this.shouldRestart(live, rec.state.exitCode);
  }
}

function ranFor(startedAt: string, finishedAt: string): number {
  try {
    const end = finishedAt && !finishedAt.startsWith('0001') ? parseRfc3339Ns(finishedAt) : nowNs();
    return Number((end - parseRfc3339Ns(startedAt)) / 1_000_000n);
  } catch {
    return 0;
  }
}
