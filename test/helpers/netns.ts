// A network namespace of a test file's own: for a berthd whose firewall and IPv6 settings must not touch
// the host's (made in berthdForFile's `start`, removed in an `after` registered after berthdForFile, so
// the daemon is gone first; the namespace takes its links with it), for the other host of a test (a peer
// on a link), or for the host side of a CNI network (cniBridge). Until remove() it is registered with the
// reaper, so a test process ended by a signal deletes it too.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmSync, statSync } from 'node:fs';
import { runCmd, type RunResult } from './berthd';
import { reapChild, reapOnExit, killChild, type Reaped } from './reaper';

export const CNI_BIN = '/usr/lib/cni';

export class TestNetns {
  readonly name: string;
  readonly file: string;
  private reap?: Reaped;
  private readonly children: ChildProcess[] = [];

  constructor(prefix: string) {
    this.name = `${prefix}-${randomBytes(3).toString('hex')}`;
    this.file = `/run/netns/${this.name}`;
  }

  /** `ip6tables`: an ip6tables-restore ruleset for the namespace (a host whose firewall drops by default);
   *  br_netfilter's per-namespace switch is turned on with it (the module is there when the machine has
   *  run the dockerhost tests or Docker; without it bridged frames skip ip6tables anyway). */
  async make(opts: { ip6tables?: string } = {}): Promise<void> {
    this.reap = reapOnExit(`network namespace ${this.name}`, () => this.removeSync());
    const add = await runCmd('ip', ['netns', 'add', this.name]);
    if (add.code !== 0) throw new Error(`ip netns add: ${add.stderr}`);
    await this.must('ip', ['link', 'set', 'lo', 'up']);
    if (opts.ip6tables === undefined) return;
    const fw = await this.run('ip6tables-nft-restore', ['-w', '10'], 15000, opts.ip6tables);
    if (fw.code !== 0) throw new Error(`ip6tables-nft-restore: ${fw.stderr}`);
    await this.run('sh', ['-c', 'f=/proc/sys/net/bridge/bridge-nf-call-ip6tables; [ ! -e $f ] || echo 1 > $f']);
  }

  /** A command inside the namespace. */
  run = (cmd: string, args: string[], timeoutMs = 15000, input?: string, env?: Record<string, string>): Promise<RunResult> =>
    runCmd('nsenter', [`--net=${this.file}`, '--', cmd, ...args], { timeoutMs, ...(input === undefined ? {} : { input }), ...(env ? { env } : {}) });

  /** A command inside the namespace that must succeed; its stdout. */
  async must(cmd: string, args: string[], timeoutMs = 30000): Promise<string> {
    const r = await this.run(cmd, args, timeoutMs);
    if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} in ${this.name}: ${r.stderr || r.stdout}`);
    return r.stdout;
  }

  /** A long-running process inside the namespace, killed (by its pid) at remove() or when the test
   *  process ends. */
  spawn(cmd: string, args: string[]): ChildProcess {
    const c = spawn('nsenter', [`--net=${this.file}`, '--', cmd, ...args], { stdio: 'ignore' });
    reapChild(`${cmd} in ${this.name}`, c);
    this.children.push(c);
    return c;
  }

  /** An HTTP GET by node's client inside the namespace (it speaks IPv6 literals); its body. A failure
   *  throws with the client's output and `explain()` (e.g. the end of berthd's log). */
  async httpGet(url: string, explain: () => string = () => ''): Promise<string> {
    const js = `require('http').get(${JSON.stringify(url)}, { timeout: 4000 }, (r) => { let d = ''; r.on('data', (c) => d += c); r.on('end', () => process.stdout.write(d)); })` +
      `.on('timeout', function () { this.destroy(new Error('timeout')); }).on('error', (e) => { console.error(e.message); process.exit(1); });`;
    const r = await this.run(process.execPath, ['-e', js]);
    if (r.code !== 0) throw new Error(`GET ${url}: exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}${explain()}`);
    return r.stdout;
  }

  /** A CNI network whose host side is this namespace: Debian's real `bridge` plugin with `host-local`
   *  addresses from `subnet` (a.b.c.0/24), run here as a CNI plugin manager (cri-dockerd's, Nomad's) runs
   *  it, with CNI_NETNS set to a container's namespace file. The plugins set ip_forward where they run,
   *  which is why they run in a namespace of the test's own. */
  cniBridge(o: { name: string; bridge: string; subnet: string; dataDir: string }): CniBridge {
    const conf = {
      cniVersion: '1.0.0', name: o.name, type: 'bridge', bridge: o.bridge, isGateway: true, ipMasq: false,
      ipam: { type: 'host-local', subnet: o.subnet, routes: [{ dst: '0.0.0.0/0' }], dataDir: o.dataDir },
    };
    const call = async (command: 'ADD' | 'DEL', containerId: string, netns: string): Promise<RunResult> =>
      this.run(`${CNI_BIN}/bridge`, [], 30000, JSON.stringify(conf),
        { CNI_COMMAND: command, CNI_CONTAINERID: containerId, CNI_NETNS: netns, CNI_IFNAME: 'eth0', CNI_PATH: CNI_BIN });
    return {
      conf,
      async add(containerId, netns) {
        const r = await call('ADD', containerId, netns);
        if (r.code !== 0) throw new Error(`CNI ADD: exit ${r.code}: ${r.stdout}${r.stderr}`);
        const result = JSON.parse(r.stdout) as { ips: Array<{ address: string }> };
        return { ip: result.ips[0].address.split('/')[0], result };
      },
      async del(containerId, netns) {
        const r = await call('DEL', containerId, netns);
        if (r.code !== 0) throw new Error(`CNI DEL: exit ${r.code}: ${r.stdout}${r.stderr}`);
      },
    };
  }

  /** The namespace, the processes started in it and berthd's lock directory for it. */
  async remove(): Promise<void> {
    this.reap?.run();
  }

  private removeSync(): void {
    for (const c of this.children) killChild(c);
    try { rmSync(`/run/lock/berth/netns-${statSync(this.file).ino}`, { recursive: true, force: true }); } catch { /* never made */ }
    try {
      execFileSync('ip', ['netns', 'del', this.name], { stdio: 'ignore' });
    } catch { /* never made, or gone */ }
  }
}

/** A CNI network on a TestNetns (TestNetns.cniBridge). */
export interface CniBridge {
  /** The network configuration handed to the plugin. */
  conf: object;
  /** CNI ADD for a container whose network namespace is the file `netns`; its first address. */
  add(containerId: string, netns: string): Promise<{ ip: string; result: object }>;
  /** CNI DEL. */
  del(containerId: string, netns: string): Promise<void>;
}
