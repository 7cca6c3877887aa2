// Networking figures, against a berthd this script starts on temporary roots and, when a second
// DOCKER_HOST is given (BENCH_DOCKER_HOST=… or an argument such as unix:///var/run/docker.sock), against that
// daemon too, side by side in the same run:
//   (a) `docker network create` + `connect` + `disconnect` + `rm` of a running container: the four CLI
//       commands' wall time together, median of BENCH_NET_RUNS;
//   (b) TCP throughput, container to container over a user bridge, and from the host into a container
//       through a port published on 127.0.0.1: BENCH_MB MiB of zeros sent by bench/tcp-pump.c (built
//       static, copied into busybox containers; busybox nc moves 1 KiB per call and measures only
//       itself), counted at the receiving end. BENCH_ROUNDS rounds (BENCH_TCP_RUNS is the old name),
//       interleaved: each round measures every daemon once, the first of the round rotating, so that
//       all of them see the same minutes of this shared machine's load. Each side's median, spread and
//       every round in order are printed, with the CPU seconds per GiB it took: the two pumps' own
//       (getrusage: the kernel's TCP/veth/bridge/netfilter work lands mostly there) and the daemon's
//       process tree's (a userland proxy such as docker-proxy counts here; needs the daemon's pid:
//       berthd's is known, another's is BENCH_DOCKER_PID);
//   (c) `docker run --rm busybox true` on the default bridge, and with --network none (what networking adds),
//       median of BENCH_RUNS;
//   (d) the daemon's own part of (a): the four API requests sent straight to the socket (no CLI), each
//       timed from request to end of response, median of BENCH_NET_RUNS.
//   (e) the settings of the links a container gets on a user network (its eth0, the host end of its veth
//       and the bridge: `ip -d -j link`, `ethtool -k`, the qdisc), printed side by side for every daemon
//       with the rows that differ marked, once per run (skip with BENCH_LINKS=0; every setting, not only
//       the differing and the main ones, with BENCH_LINKS=all).
// More than one daemon to compare with: BENCH_DOCKER_HOST=host1,host2 with BENCH_NAMES=name1,name2 and
// BENCH_DOCKER_PID=pid1,pid2 in the same order. BENCH_PARTS (default abcde) picks the figures to measure.
//   node dist/bench/network.js [unix:///var/run/docker.sock]
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { benchBerthd, otherHost, timeDocker, timedApi, loadFixturesInto, median, quantile, summary, intEnv, DOCKER } from './lib';
import { runCmd, REPO } from '../test/helpers/berthd';

const PREFIX = 'berth-bench-net';

async function docker(host: string, args: string[], timeoutMs = 120_000): Promise<string> {
  const r = await runCmd(DOCKER, args, { env: { DOCKER_HOST: host }, timeoutMs });
  if (r.code !== 0) throw new Error(`docker ${args.join(' ')} on ${host}: exit ${r.code}: ${r.stderr.trim()}`);
  return r.stdout;
}

async function cleanup(host: string): Promise<void> {
  const ids = (await docker(host, ['ps', '-aq', '--filter', `label=${PREFIX}`]).catch(() => '')).split('\n').filter(Boolean);
  if (ids.length) await docker(host, ['rm', '-f', ...ids]).catch(() => '');
  const nets = (await docker(host, ['network', 'ls', '-q', '--filter', `label=${PREFIX}`]).catch(() => '')).split('\n').filter(Boolean);
  for (const n of nets) await docker(host, ['network', 'rm', n]).catch(() => '');
}

/** (d) The four requests of (a) without the CLI: ms per request. */
async function lifecycleApi(host: string, target: string, i: number): Promise<Record<'create' | 'connect' | 'disconnect' | 'rm', number>> {
  const c = await timedApi(host, 'POST', '/v1.41/networks/create', { Name: `${PREFIX}-api${i}`, Driver: 'bridge', Labels: { [PREFIX]: '' } });
  const id = (JSON.parse(c.text) as { Id: string }).Id;
  const a = await timedApi(host, 'POST', `/v1.41/networks/${id}/connect`, { Container: target, EndpointConfig: {} });
  const d = await timedApi(host, 'POST', `/v1.41/networks/${id}/disconnect`, { Container: target, Force: false });
  const r = await timedApi(host, 'DELETE', `/v1.41/networks/${id}`);
  return { create: c.ms, connect: a.ms, disconnect: d.ms, rm: r.ms };
}

/** (a) One round: create, connect, disconnect, rm. */
async function lifecycle(host: string, target: string, i: number): Promise<number> {
  const name = `${PREFIX}-lc${i}`;
  let ms = await timeDocker(host, ['network', 'create', '--label', PREFIX, name]);
  ms += await timeDocker(host, ['network', 'connect', name, target]);
  ms += await timeDocker(host, ['network', 'disconnect', name, target]);
  ms += await timeDocker(host, ['network', 'rm', name]);
  return ms;
}

/** A pump's output: its figure (bytes received, or ns from connect to close) and its CPU in seconds. */
function pumpOut(out: string): { n: number; cpu: number } | undefined {
  const m = /^(\d+) (\d+)$/.exec(out.trim());
  return m ? { n: Number(m[1]), cpu: Number(m[2]) / 1e6 } : undefined;
}

/** Waits until the receiver's output shows a byte count; returns it with the receiver's CPU. */
async function received(host: string, ctr: string): Promise<{ n: number; cpu: number }> {
  for (let i = 0; i < 600; i++) {
    const out = pumpOut(await docker(host, ['logs', ctr]));
    if (out) return out;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no byte count from ${ctr}`);
}

/** bench/tcp-pump.c built static into a temporary directory; `docker cp` puts it into containers. */
function buildPump(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-pump-'));
  execFileSync('gcc', ['-O2', '-static', '-o', path.join(dir, 'tcp-pump'), path.join(REPO, 'bench', 'tcp-pump.c')]);
  return dir;
}

/** Creates a busybox container running `cmd` (tcp-pump …) with the pump copied in. */
async function withPump(host: string, pump: string, name: string, opts: string[], cmd: string[]): Promise<void> {
  await docker(host, ['create', '--label', PREFIX, '--name', name, ...opts, 'busybox', ...cmd]);
  await docker(host, ['cp', path.join(pump, 'tcp-pump'), `${name}:/tcp-pump`]);
}

/** Starts a receiver (`tcp-pump recv 5001`) and waits until it listens. The container stays up after the
 *  pump's end (a sleep follows), so that what serves its published port (docker-proxy) is still there
 *  when its CPU is read: a daemon stops it as soon as the container exits. */
async function receiver(host: string, pump: string, name: string, args: string[]): Promise<void> {
  await withPump(host, pump, name, args, ['sh', '-c', '/tcp-pump recv 5001; exec sleep 3600']);
  await docker(host, ['start', name]);
  for (let i = 0; i < 100; i++) {
    const st = await docker(host, ['exec', name, 'sh', '-c', 'netstat -ltn 2>/dev/null | grep -c ":5001 " || true']).catch(() => '0');
    if (Number(st.trim()) > 0) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${name} does not listen`);
}

function check(bytes: number, mib: number, where: string): void {
  if (bytes !== mib * 1024 * 1024) throw new Error(`received ${bytes} bytes of ${mib} MiB ${where}`);
}

/** CPU ticks (user + system) of a process and all its descendants, by pid, from /proc. */
const TICK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
function treeTicks(root: number | undefined): Map<number, number> {
  const out = new Map<number, number>();
  if (!root) return out;
  const parent = new Map<number, number>();
  const ticks = new Map<number, number>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const f = readFileSync(`/proc/${d}/stat`, 'utf8').split(') ')[1].split(' ');
      parent.set(Number(d), Number(f[1]));
      ticks.set(Number(d), Number(f[11]) + Number(f[12]));
    } catch { /* gone meanwhile */ }
  }
  for (const [pid, t] of ticks) {
    for (let p = pid, hops = 0; p > 1 && hops < 64; p = parent.get(p) ?? 0, hops++) {
      if (p === root) { out.set(pid, t); break; }
    }
  }
  return out;
}

/** CPU seconds the tree used between two snapshots (processes that appeared count from zero). */
function treeCpu(before: Map<number, number>, after: Map<number, number>): number {
  let t = 0;
  for (const [pid, v] of after) t += v - (before.get(pid) ?? 0);
  return t / TICK;
}

/** One transfer: MiB/s, and CPU seconds per GiB moved, of the two pumps and of the daemon's process tree. */
interface Transfer { mibps: number; pumpCpu: number; daemonCpu: number }

function transfer(bytes: number, mib: number, ns: number, pumpCpu: number, daemonCpu: number, where: string): Transfer {
  check(bytes, mib, where);
  const perGiB = 1024 / mib;
  return { mibps: bytes / 1048576 / (ns / 1e9), pumpCpu: pumpCpu * perGiB, daemonCpu: daemonCpu * perGiB };
}

/** (b1) MiB/s from a sender container to a receiver container on one user bridge network. */
async function bridgeThroughput(t: Target, pump: string, netName: string, mib: number, i: number): Promise<Transfer> {
  const rx = `${PREFIX}-rx${i}`;
  await receiver(t.host, pump, rx, ['--network', netName]);
  const ip = (await docker(t.host, ['inspect', '-f', `{{(index .NetworkSettings.Networks "${netName}").IPAddress}}`, rx])).trim();
  const tx = `${PREFIX}-tx${i}`;
  await withPump(t.host, pump, tx, ['--network', netName], ['/tcp-pump', 'send', ip, '5001', String(mib)]);
  if (t.links === undefined && process.env.BENCH_LINKS !== '0' && t.parts.includes('e')) t.links = await linkSettings(t.host, rx);
  const before = treeTicks(t.pid);
  const sent = pumpOut(await docker(t.host, ['start', '-a', tx], 600_000));
  const got = await received(t.host, rx);
  const daemonCpu = treeCpu(before, treeTicks(t.pid));
  await docker(t.host, ['rm', '-f', tx]);
  await docker(t.host, ['rm', '-f', rx]);
  if (!sent) throw new Error(`no timing from ${tx}`);
  return transfer(got.n, mib, sent.n, sent.cpu + got.cpu, daemonCpu, `from a container to ${ip}`);
}

/** (b2) MiB/s from the host into a container through a port published on 127.0.0.1. */
async function publishedThroughput(t: Target, pump: string, mib: number, i: number): Promise<Transfer> {
  const rx = `${PREFIX}-px${i}`;
  await receiver(t.host, pump, rx, ['-p', '127.0.0.1::5001']);
  const port = Number(/:(\d+)\s*$/.exec((await docker(t.host, ['port', rx, '5001/tcp'])).trim().split('\n')[0])![1]);
  const before = treeTicks(t.pid);
  const sent = pumpOut(execFileSync(path.join(pump, 'tcp-pump'), ['send', '127.0.0.1', String(port), String(mib)], { encoding: 'utf8' }));
  const got = await received(t.host, rx);
  const daemonCpu = treeCpu(before, treeTicks(t.pid));
  await docker(t.host, ['rm', '-f', rx]);
  if (!sent) throw new Error(`no timing from the pump sending to 127.0.0.1:${port}`);
  return transfer(got.n, mib, sent.n, sent.cpu + got.cpu, daemonCpu, `through 127.0.0.1:${port}`);
}

/** (e) One flat map of settings per link (container end, host end of the veth, bridge): what `ip -d -j
 *  link` says of it (less names, indexes, addresses and counters, which differ by nature), its qdisc,
 *  and the offloads `ethtool -k` reports (when ethtool is installed). */
type Links = Record<'eth0' | 'veth' | 'bridge', Record<string, string>>;

function flatten(o: unknown, prefix: string, out: Record<string, string>): void {
  if (o && typeof o === 'object' && !Array.isArray(o)) {
    for (const [k, v] of Object.entries(o)) flatten(v, prefix ? `${prefix}.${k}` : k, out);
  } else {
    out[prefix] = Array.isArray(o) ? o.join(',') : String(o);
  }
}

const PER_LINK = /^(ifindex|ifname|address|broadcast|link_index|link_netnsid|link|master|operstate|linkmode|group|altnames|parentbus|parentdev|stats.*|linkinfo\.(info_data|info_slave_data)\.(id|no|designated_.*|bridge_id|root_id|root_port|root_path_cost|hello_timer|tcn_timer|topology_change_timer|gc_timer|forward_delay_timer|hold_timer|message_age_timer|config_pending|topology_change_ack|port_no|port_id|hash_elasticity)|addr_info.*|inet6_addr_gen_mode|min_mtu|max_mtu|promiscuity|allmulti)$/;

function linkOf(json: string, keep: (l: Record<string, unknown>) => boolean, qdisc: string, ethtool: string): Record<string, string> {
  const l = (JSON.parse(json) as Record<string, unknown>[]).find(keep);
  if (!l) throw new Error(`link not found in ${json.slice(0, 200)}`);
  const flat: Record<string, string> = {};
  flatten(l, '', flat);
  for (const k of Object.keys(flat)) if (PER_LINK.test(k)) delete flat[k];
  flat.txqlen ??= '0'; // ip's JSON leaves out a queue length of 0
  const q = /qdisc (\S+)/.exec(qdisc);
  flat['tc qdisc'] = q ? q[1] : '(none)';
  for (const line of ethtool.split('\n')) {
    const m = /^(\S[^:]*): (on|off)/.exec(line);
    if (m) flat[`ethtool ${m[1]}`] = m[2];
  }
  return flat;
}

function sh(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return '';
  }
}

/** The links of container `ctr` (running, on one user network), seen from this script's namespace. */
async function linkSettings(host: string, ctr: string): Promise<Links> {
  const pid = (await docker(host, ['inspect', '-f', '{{.State.Pid}}', ctr])).trim();
  const inCtr = (cmd: string[]) => sh('nsenter', [`--net=/proc/${pid}/ns/net`, '--', ...cmd]);
  const eth0Json = inCtr(['ip', '-d', '-j', 'link', 'show', 'dev', 'eth0']);
  const eth0 = (JSON.parse(eth0Json) as Record<string, unknown>[])[0];
  const peer = Number(eth0.link_index);
  const all = sh('ip', ['-d', '-j', 'link', 'show']);
  const veth = (JSON.parse(all) as Record<string, unknown>[]).find((l) => l.ifindex === peer);
  if (!veth) throw new Error(`no host link with index ${peer} (is the daemon in this namespace?)`);
  const vname = String(veth.ifname);
  const bname = String(veth.master);
  return {
    eth0: linkOf(eth0Json, () => true, inCtr(['tc', 'qdisc', 'show', 'dev', 'eth0']), inCtr(['ethtool', '-k', 'eth0'])),
    veth: linkOf(all, (l) => l.ifindex === peer, sh('tc', ['qdisc', 'show', 'dev', vname]), sh('ethtool', ['-k', vname])),
    bridge: linkOf(all, (l) => l.ifname === bname, sh('tc', ['qdisc', 'show', 'dev', bname]), sh('ethtool', ['-k', bname])),
  };
}

/** The settings (e) always shows; the rest only when they differ between daemons, or with BENCH_LINKS=all. */
const KEY_SETTINGS = /^(mtu|txqlen|qdisc|tc qdisc|num_[rt]x_queues|gso_.*|gro_.*|tso_.*|flags|linkinfo\.info_kind|linkinfo\.info_data\.(stp_state|nf_call_.*|vlan_filtering|mcast_snooping|xdp)|linkinfo\.info_slave_data\.(state|hairpin|learning|flood|proxy_arp|isolated|neigh_suppress)|ethtool (tcp-segmentation-offload|generic-segmentation-offload|generic-receive-offload|tx-checksumming|rx-checksumming|scatter-gather|rx-gro-list|rx-udp-gro-forwarding|large-receive-offload|tx-nocache-copy))$/;

/** Prints (e): the links' settings with the daemons side by side, differing rows first and marked. */
function printLinks(targets: Target[]): void {
  const have = targets.filter((t) => t.links);
  if (have.length === 0) return;
  const all = process.env.BENCH_LINKS === 'all';
  console.log(`(e) link settings of a container on a user network (ip -d -j link, tc qdisc, ethtool -k); * = differs:`);
  for (const which of ['eth0', 'veth', 'bridge'] as const) {
    const keys = [...new Set(have.flatMap((t) => Object.keys(t.links![which])))].sort();
    const differs = (k: string) => new Set(have.map((t) => t.links![which][k] ?? '-')).size > 1;
    console.log(`  ${which === 'eth0' ? "container's eth0" : which === 'veth' ? "host end of the container's veth" : 'bridge'}:`);
    console.log(`    ${''.padEnd(48)}${have.map((t) => t.name.padEnd(32)).join('')}`);
    const same = keys.filter((k) => !differs(k) && (all || KEY_SETTINGS.test(k)));
    for (const k of [...keys.filter(differs), ...same]) {
      console.log(`  ${differs(k) ? '*' : ' '} ${k.padEnd(48)}${have.map((t) => (t.links![which][k] ?? '-').padEnd(32)).join('')}`);
    }
  }
}

/** Median and spread of the MiB/s, and the median CPU seconds per GiB. */
function tcpSummary(xs: Transfer[]): string {
  const r = xs.map((x) => x.mibps);
  const m = median(r);
  const lo = quantile(r, 0.1);
  const hi = quantile(r, 0.9);
  return `median ${m.toFixed(0)} MiB/s, p10–p90 ${lo.toFixed(0)}–${hi.toFixed(0)} (±${((hi - lo) / 2 / m * 100).toFixed(0)} %), ` +
    `min–max ${Math.min(...r).toFixed(0)}–${Math.max(...r).toFixed(0)}, n=${r.length}; CPU s/GiB: pumps ${median(xs.map((x) => x.pumpCpu)).toFixed(2)}, ` +
    `daemon ${median(xs.map((x) => x.daemonCpu)).toFixed(2)}, total ${median(xs.map((x) => x.pumpCpu + x.daemonCpu)).toFixed(2)}`;
}

/** Every round's MiB/s in order (interleaved with the other daemons' rounds). */
const rounds = (xs: Transfer[]) => `rounds: ${xs.map((x) => x.mibps.toFixed(0)).join(' ')}`;

interface Target {
  name: string;
  host: string;
  /** The daemon's pid, for the CPU of its process tree (undefined: not counted). */
  pid: number | undefined;
  parts: string;
  lifecycle: number[];
  own: Record<'create' | 'connect' | 'disconnect' | 'rm' | 'total', number[]>;
  bridge: Transfer[];
  published: Transfer[];
  runTrue: number[];
  runNone: number[];
  links?: Links;
}

const target = (name: string, host: string, pid: number | undefined, parts: string): Target =>
  ({ name, host, pid, parts, lifecycle: [], own: { create: [], connect: [], disconnect: [], rm: [], total: [] }, bridge: [], published: [], runTrue: [], runNone: [] });

/** The daemons to compare with: BENCH_DOCKER_HOST (a comma-separated list) or an argument, named by
 *  BENCH_NAMES and with pids from BENCH_DOCKER_PID, both in the same order. */
function others(parts: string): Target[] {
  const hosts = (process.env.BENCH_DOCKER_HOST ?? '').split(',').filter(Boolean);
  if (hosts.length === 0) {
    const one = otherHost();
    if (one) hosts.push(one);
  }
  const names = (process.env.BENCH_NAMES ?? '').split(',');
  const pids = (process.env.BENCH_DOCKER_PID ?? '').split(',');
  return hosts.map((h, i) => target(names[i] || (hosts.length > 1 ? `other${i + 1}` : 'other'), h, Number(pids[i]) || undefined, parts));
}

async function main(): Promise<void> {
  const netRuns = intEnv('BENCH_NET_RUNS', 10);
  const tcpRounds = intEnv('BENCH_ROUNDS', intEnv('BENCH_TCP_RUNS', 3));
  const runs = intEnv('BENCH_RUNS', 20);
  const mib = intEnv('BENCH_MB', 1024);
  const parts = process.env.BENCH_PARTS ?? 'abcde';
  const pump = buildPump();
  const b = await benchBerthd();
  const targets: Target[] = [target('berthd', b.host, b.proc.pid, parts), ...others(parts)];
  const w = Math.max(7, ...targets.map((t) => t.name.length));
  try {
    for (const t of targets.slice(1)) await loadFixturesInto(t.host, ['busybox']);
    for (const t of targets) {
      await cleanup(t.host);
      await docker(t.host, ['run', '-d', '--label', PREFIX, '--name', `${PREFIX}-target`, 'busybox', 'sleep', '1000']);
      await docker(t.host, ['network', 'create', '--label', PREFIX, `${PREFIX}-tcp`]);
      await lifecycle(t.host, `${PREFIX}-target`, -1); // warm-up
      await timeDocker(t.host, ['run', '--rm', 'busybox', 'true']);
    }
    // Round i starts with target i mod n (berthd, other; other, berthd; …): every daemon goes first as
    // often, and each sees the same stretch of the machine's load as the others.
    const alternate = (i: number) => targets.map((_, k) => targets[(i + k) % targets.length]);
    if (parts.includes('a')) {
      for (let i = 0; i < netRuns; i++) for (const t of alternate(i)) t.lifecycle.push(await lifecycle(t.host, `${PREFIX}-target`, i));
    }
    if (parts.includes('d')) {
      for (let i = 0; i < netRuns; i++) {
        for (const t of alternate(i)) {
          // A pause as the CLI's own start-up would leave between two requests.
          await new Promise((r) => setTimeout(r, 30));
          const r = await lifecycleApi(t.host, `${PREFIX}-target`, i);
          for (const k of ['create', 'connect', 'disconnect', 'rm'] as const) t.own[k].push(r[k]);
          t.own.total.push(r.create + r.connect + r.disconnect + r.rm);
        }
      }
    }
    if (parts.includes('b') || parts.includes('e')) {
      for (let i = 0; i < (parts.includes('b') ? tcpRounds : 1); i++) {
        for (const t of alternate(i)) {
          t.bridge.push(await bridgeThroughput(t, pump, `${PREFIX}-tcp`, parts.includes('b') ? mib : 1, i));
          if (parts.includes('b')) t.published.push(await publishedThroughput(t, pump, mib, i));
          process.stderr.write(`round ${i + 1}/${tcpRounds} ${t.name}: bridge ${t.bridge.at(-1)!.mibps.toFixed(0)} MiB/s` +
            `${t.published.length ? `, published ${t.published.at(-1)!.mibps.toFixed(0)} MiB/s` : ''}, load ${os.loadavg()[0].toFixed(1)}\n`);
        }
      }
    }
    if (parts.includes('c')) {
      for (let i = 0; i < runs; i++) {
        for (const t of alternate(i)) {
          t.runTrue.push(await timeDocker(t.host, ['run', '--rm', 'busybox', 'true']));
          t.runNone.push(await timeDocker(t.host, ['run', '--rm', '--network', 'none', 'busybox', 'true']));
        }
      }
    }

    console.log(`berthd = ${b.host} (started by this script)`);
    for (const t of targets.slice(1)) console.log(`${t.name.padEnd(6)} = ${t.host}${t.pid ? ` (pid ${t.pid})` : ' (no pid: its CPU is not counted)'}`);
    const rows = (f: (t: Target) => string) => { for (const t of targets) console.log(`  ${t.name.padEnd(w)} ${f(t)}`); };
    if (parts.includes('a')) {
      console.log(`(a) network create + connect + disconnect + rm (4 CLI commands), ${netRuns} rounds:`);
      rows((t) => summary(t.lifecycle));
    }
    if (parts.includes('d')) {
      console.log(`(d) the same four requests sent to the API directly (the daemon's own part), ${netRuns} rounds:`);
      for (const t of targets) {
        console.log(`  ${t.name.padEnd(w)} total ${summary(t.own.total)}`);
        console.log(`  ${''.padEnd(w)} ${(['create', 'connect', 'disconnect', 'rm'] as const).map((k) => `${k} ${median(t.own[k]).toFixed(1)} ms`).join(', ')}`);
      }
    }
    if (parts.includes('b')) {
      console.log(`(b1) TCP container to container over a user bridge, ${mib} MiB, ${tcpRounds} interleaved rounds:`);
      rows((t) => tcpSummary(t.bridge));
      rows((t) => rounds(t.bridge));
      console.log(`(b2) TCP host to container through 127.0.0.1:<published>, ${mib} MiB, ${tcpRounds} interleaved rounds:`);
      rows((t) => tcpSummary(t.published));
      rows((t) => rounds(t.published));
    }
    if (parts.includes('c')) {
      console.log(`(c) docker run --rm busybox true (default bridge), ${runs} runs:`);
      rows((t) => summary(t.runTrue));
      console.log(`    (the same with --network none, for what networking adds:)`);
      rows((t) => summary(t.runNone));
    }
    if (parts.includes('e')) printLinks(targets);
    for (const o of targets.slice(1)) {
      const m = targets[0];
      const ratio = (f: (t: Target) => number[]) => (f(m).length && f(o).length ? `${(median(f(m)) / median(f(o))).toFixed(2)}x` : '-');
      console.log(`ratios berthd / ${o.name}: lifecycle ${ratio((t) => t.lifecycle)} (goal ≤ 0.5), ` +
        `bridge ${ratio((t) => t.bridge.map((x) => x.mibps))} (goal ≥ 0.9), published ${ratio((t) => t.published.map((x) => x.mibps))} (goal ≥ 1), ` +
        `run --rm ${ratio((t) => t.runTrue)}`);
      if (parts.includes('b')) {
        // Within a round both daemons saw nearly the same minute of load, so the round's own ratio cancels
        // most of the machine's swings that the medians above still carry.
        const paired = (f: (t: Target) => Transfer[]) => {
          const r = f(m).map((x, i) => x.mibps / f(o)[i].mibps);
          return `median ${median(r).toFixed(2)}x, p10–p90 ${quantile(r, 0.1).toFixed(2)}–${quantile(r, 0.9).toFixed(2)}x, berthd ahead in ${r.filter((v) => v > 1).length} of ${r.length}`;
        };
        console.log(`  per round, berthd / ${o.name}: bridge ${paired((t) => t.bridge)}; published ${paired((t) => t.published)}`);
      }
    }
  } finally {
    for (const t of targets.slice(1)) await cleanup(t.host).catch(() => {});
    await b.destroy();
    rmSync(pump, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
