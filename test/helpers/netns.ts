// A network namespace of a test file's own, for a berthd whose firewall and IPv6 settings must not touch
// the host's: made in berthdForFile's `start`, removed in an `after` registered after berthdForFile (so the
// daemon is gone first; the namespace takes its links with it).
import { randomBytes } from 'node:crypto';
import { rmSync, statSync } from 'node:fs';
import { runCmd } from './berthd';

export class TestNetns {
  readonly name: string;
  readonly file: string;

  constructor(prefix: string) {
    this.name = `${prefix}-${randomBytes(3).toString('hex')}`;
    this.file = `/run/netns/${this.name}`;
  }

  /** `ip6tables`: an ip6tables-restore ruleset for the namespace (a host whose firewall drops by default);
   *  br_netfilter's per-namespace switch is turned on with it (the module is there when the machine has
   *  run the dockerhost tests or Docker; without it bridged frames skip ip6tables anyway). */
  async make(opts: { ip6tables?: string } = {}): Promise<void> {
    const add = await runCmd('ip', ['netns', 'add', this.name]);
    if (add.code !== 0) throw new Error(`ip netns add: ${add.stderr}`);
    await runCmd('ip', ['-n', this.name, 'link', 'set', 'lo', 'up']);
    if (opts.ip6tables === undefined) return;
    const fw = await this.run('ip6tables-nft-restore', ['-w', '10'], 15000, opts.ip6tables);
    if (fw.code !== 0) throw new Error(`ip6tables-nft-restore: ${fw.stderr}`);
    await this.run('sh', ['-c', 'f=/proc/sys/net/bridge/bridge-nf-call-ip6tables; [ ! -e $f ] || echo 1 > $f']);
  }

  /** A command inside the namespace. */
  run = (cmd: string, args: string[], timeoutMs = 15000, input?: string) =>
    runCmd('nsenter', [`--net=${this.file}`, '--', cmd, ...args], { timeoutMs, ...(input === undefined ? {} : { input }) });

  /** The namespace and berthd's lock directory for it. */
  async remove(): Promise<void> {
    try { rmSync(`/run/lock/berth/netns-${statSync(this.file).ino}`, { recursive: true, force: true }); } catch { /* never made */ }
    await runCmd('ip', ['netns', 'del', this.name]);
  }
}
