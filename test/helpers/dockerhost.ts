// A "host that has run Docker", built inside network namespaces the test makes, so that nothing of the
// machine's own network changes:
//   - the host namespace: a bridge docker0 holding 172.17.0.1/16 (its route takes Docker's default
//     subnet), the iptables filter table Docker leaves (FORWARD policy DROP, a DOCKER-USER chain jumped to
//     first, Docker's own docker0 rules and its masquerade rule), and an outside link out0 198.51.100.1/24;
//   - a peer namespace, the "other host" on that link (198.51.100.2), which routes Docker's and berth's
//     private ranges to the host, as a machine on the same LAN could.
// berthd then runs in the host namespace with its defaults (berth0, subnets from the default pools): see
// startBerthd's `netns`. br_netfilter: the kernel module's state is global to the machine; it must be
// there (as it is on a host where Docker runs) and is loaded with modprobe when it is not, which is the
// one change this fixture may make outside its namespaces (built in here, so there is nothing to load).
// Its per-namespace switch bridge-nf-call-iptables is set inside the host namespace.
import { existsSync, readFileSync } from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import { runCmd, type RunResult } from './berthd';
import { TestNetns } from './netns';

export const OUTSIDE = { host: '198.51.100.1', peer: '198.51.100.2', prefix: 24 };

export interface DockerHost {
  /** Namespace names (`ip netns`) and their files. */
  name: string;
  file: string;
  peerName: string;
  peerFile: string;
  /** The iptables the fixture's firewall was made with: 'nft' (iptables-nft) or 'legacy'. */
  iptables: 'nft' | 'legacy';
  /** Runs a command in the host namespace / in the peer. */
  exec(cmd: string, args: string[], timeoutMs?: number): Promise<RunResult>;
  peerExec(cmd: string, args: string[], timeoutMs?: number): Promise<RunResult>;
  /** Starts a long-running process in the peer (stopped by destroy, by its pid). */
  peerSpawn(cmd: string, args: string[]): ChildProcess;
  /** `iptables` of the fixture's backend in the host namespace. */
  iptablesCmd(args: string[]): Promise<RunResult>;
  destroy(): Promise<void>;
}

async function must(r: Promise<RunResult>, what: string): Promise<string> {
  const x = await r;
  if (x.code !== 0) throw new Error(`${what}: ${x.stderr || x.stdout}`);
  return x.stdout;
}

/** br_netfilter is there (built in or loaded); loads it when it is not (a machine-wide change). */
async function ensureBrNetfilter(): Promise<void> {
  if (existsSync('/proc/sys/net/bridge/bridge-nf-call-iptables')) return;
  await must(runCmd('modprobe', ['br_netfilter']), 'modprobe br_netfilter');
}

export async function makeDockerHost(opts: { iptables?: 'nft' | 'legacy' } = {}): Promise<DockerHost> {
  const backend = opts.iptables ?? 'nft';
  const tool = backend === 'nft' ? 'iptables-nft' : 'iptables-legacy';
  const host = new TestNetns('berth-dh');
  const peer = new TestNetns('berth-dhp');
  const exec = (cmd: string, args: string[], timeoutMs = 30000) => host.run(cmd, args, timeoutMs);
  const peerExec = (cmd: string, args: string[], timeoutMs = 30000) => peer.run(cmd, args, timeoutMs);
  const dh: DockerHost = {
    name: host.name, file: host.file, peerName: peer.name, peerFile: peer.file, iptables: backend, exec, peerExec,
    peerSpawn: (cmd, args) => peer.spawn(cmd, args),
    iptablesCmd: (args) => exec(tool, ['-w', '10', ...args]),
    // Deleting the namespaces takes their devices, addresses, routes and firewall tables with them (and
    // berthd's bridge locks of the host namespace, daemon/lib/instance-lock.ts).
    async destroy() {
      await peer.remove();
      await host.remove();
    },
  };
  try {
    await ensureBrNetfilter();
    await host.make();
    await peer.make();
    const ip = (args: string[]) => host.must('ip', args);
    const pip = (args: string[]) => peer.must('ip', args);
    // docker0 as dockerd leaves it: up, 172.17.0.1/16, no ports (its route stays, flagged linkdown).
    await ip(['link', 'add', 'docker0', 'type', 'bridge']);
    await ip(['addr', 'add', '172.17.0.1/16', 'dev', 'docker0']);
    await ip(['link', 'set', 'docker0', 'up']);
    // The outside link to the other host.
    await ip(['link', 'add', 'out0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', peer.name]);
    await ip(['addr', 'add', `${OUTSIDE.host}/${OUTSIDE.prefix}`, 'dev', 'out0']);
    await ip(['link', 'set', 'out0', 'up']);
    await pip(['addr', 'add', `${OUTSIDE.peer}/${OUTSIDE.prefix}`, 'dev', 'eth0']);
    await pip(['link', 'set', 'eth0', 'up']);
    for (const r of ['172.16.0.0/12', '192.168.0.0/16', '10.0.0.0/8']) await pip(['route', 'add', r, 'via', OUTSIDE.host]);
    // Bridged traffic goes through iptables on a Docker host (per namespace in this kernel; the value is
    // checked first so that an older kernel's global switch is never changed).
    const nf = '/proc/sys/net/bridge/bridge-nf-call-iptables';
    if ((await exec('cat', [nf])).stdout.trim() !== '1') await must(exec('sh', ['-c', `echo 1 > ${nf}`]), 'bridge-nf-call-iptables');
    // Docker's filter and nat rules (dockerd 20.10–27 shape), with the policy it sets when it turns on
    // forwarding.
    const rules = [
      '*filter',
      ':INPUT ACCEPT [0:0]',
      ':FORWARD DROP [0:0]',
      ':OUTPUT ACCEPT [0:0]',
      ':DOCKER - [0:0]',
      ':DOCKER-ISOLATION-STAGE-1 - [0:0]',
      ':DOCKER-ISOLATION-STAGE-2 - [0:0]',
      ':DOCKER-USER - [0:0]',
      '-A FORWARD -j DOCKER-USER',
      '-A FORWARD -j DOCKER-ISOLATION-STAGE-1',
      '-A FORWARD -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
      '-A FORWARD -o docker0 -j DOCKER',
      '-A FORWARD -i docker0 ! -o docker0 -j ACCEPT',
      '-A FORWARD -i docker0 -o docker0 -j ACCEPT',
      '-A DOCKER-ISOLATION-STAGE-1 -i docker0 ! -o docker0 -j DOCKER-ISOLATION-STAGE-2',
      '-A DOCKER-ISOLATION-STAGE-1 -j RETURN',
      '-A DOCKER-ISOLATION-STAGE-2 -o docker0 -j DROP',
      '-A DOCKER-ISOLATION-STAGE-2 -j RETURN',
      '-A DOCKER-USER -j RETURN',
      'COMMIT',
      '*nat',
      ':PREROUTING ACCEPT [0:0]',
      ':INPUT ACCEPT [0:0]',
      ':OUTPUT ACCEPT [0:0]',
      ':POSTROUTING ACCEPT [0:0]',
      ':DOCKER - [0:0]',
      '-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER',
      '-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER',
      '-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE',
      '-A DOCKER -i docker0 -j RETURN',
      'COMMIT',
      '',
    ].join('\n');
    const restore = await host.run(`${tool}-restore`, ['-w', '10'], 30000, rules);
    if (restore.code !== 0) throw new Error(`${tool}-restore: ${restore.stderr}`);
    return dh;
  } catch (e) {
    await dh.destroy();
    throw e;
  }
}

/** The FORWARD chain of the fixture's iptables, as `-A` lines. */
export async function forwardRules(dh: DockerHost): Promise<string[]> {
  return (await must(dh.iptablesCmd(['-S', 'FORWARD']), 'iptables -S FORWARD')).split('\n').filter((l) => l.startsWith('-A '));
}

/** Whether the machine's br_netfilter is built into the kernel (nothing was loaded) — for the test's log. */
export function brNetfilterBuiltIn(): boolean {
  try {
    return !readFileSync('/proc/modules', 'utf8').includes('br_netfilter');
  } catch {
    return true;
  }
}
