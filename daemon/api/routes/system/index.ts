// /_ping, /version, /info: what every client asks first.
import type { FastifyInstance, FastifyReply } from 'fastify';
import os from 'node:os';
import { readdirSync, statSync } from 'node:fs';
import type { Daemon } from '../../../daemon';
import { API_VERSION, MIN_API_VERSION } from '../../version';
import { goArch } from '../../../lib/host';
import { backingFs, supportsDType, ipv4Forwarding, bridgeNf, cgroupFacts, hostWarnings } from '../../../lib/hostfacts';
import { sendError } from '../../plugins/dialect';
import { PING_HEADERS } from '../../ping';
import { LOG_DRIVERS } from '../../../logs';
import { nowNs, rfc3339Nano } from '../../../lib/time';

import { BERTH_VERSION } from '../../../lib/versions';

export { BERTH_VERSION };

/** The route answers what api/ping.ts answers before fastify (the same header list), for the requests
 *  that reach it (app.inject in tests). */
function pingHeaders(reply: FastifyReply): void {
  for (const [k, v] of PING_HEADERS) reply.header(k, v);
}

/** /info RegistryConfig as Docker shows it: CIDRs and named insecure registries apart, mirrors with a slash. */
function registryConfig(insecure: string[], mirrors: string[]): Record<string, unknown> {
  const cidrs = ['::1/128', '127.0.0.0/8'];
  const mirrorUrls = mirrors.map((m) => `${m.replace(/\/$/, '')}/`);
  const index: Record<string, unknown> = { 'docker.io': { Mirrors: mirrorUrls, Name: 'docker.io', Official: true, Secure: true } };
  for (const r of insecure) {
    const clean = r.replace(/^https?:\/\//, '').replace(/\/$/, '');
    if (/^[0-9a-fA-F.:]+\/\d+$/.test(clean)) {
      if (!cidrs.includes(clean)) cidrs.push(clean);
    } else index[clean] = { Mirrors: [], Name: clean, Official: false, Secure: false };
  }
  // Mirrors is [] when there are none, never null (Docker's answer in docs/samples/info.json).
  return { IndexConfigs: index, InsecureRegistryCIDRs: cidrs, Mirrors: mirrorUrls };
}

/** When this daemon was built: the time its compiled code was written, in the form Docker's BuildTime has
 *  ("2026-05-07T21:09:36.000000000+00:00"); '' if that cannot be read. */
function buildTime(): string {
  try {
    const iso = statSync(__filename).mtime.toISOString();
    return `${iso.slice(0, 19)}.${iso.slice(20, 23)}000000+00:00`;
  } catch {
    return '';
  }
}
const BUILD_TIME = buildTime();

function openFds(): number {
  try {
    return readdirSync('/proc/self/fd').length;
  } catch {
    return 0;
  }
}

export function systemRoutes(app: FastifyInstance, d: Daemon): void {
  app.get('/_ping', async (_req, reply) => {
    pingHeaders(reply);
    reply.send('OK');
  });
  app.head('/_ping', async (_req, reply) => {
    pingHeaders(reply);
    reply.header('Content-Length', '0');
    reply.send();
  });

  // berth is one node: swarm is never active, and its endpoints answer as Docker's do outside a swarm.
  const notSwarm = async (_req: unknown, reply: FastifyReply) => {
    sendError(reply, 503, 'This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect this node to swarm and try again.');
  };
  const noSwarmMode = async (_req: unknown, reply: FastifyReply) => {
    sendError(reply, 503, 'berth is a single-node engine: swarm mode is not supported');
  };
  app.post('/swarm/init', noSwarmMode);
  app.post('/swarm/join', noSwarmMode);
  app.post('/swarm/leave', async (_req, reply) => sendError(reply, 503, 'This node is not part of a swarm'));

  // Managed plugins: none is installed, and none can be (Docker answers an empty list by default).
  app.get('/plugins', async () => []);
  app.get('/plugins/privileges', async (_req, reply) => sendError(reply, 501, 'berth does not support managed plugins'));
  app.all('/plugins/*', async (req, reply) => {
    const name = (req.params as { '*': string })['*'].replace(/\/(json|enable|disable|push|set|upgrade)$/, '');
    if (name === 'pull' || name === 'create') return sendError(reply, 501, 'berth does not support managed plugins');
    sendError(reply, 404, `plugin "${name}" not found`);
  });
  for (const res of ['swarm', 'nodes', 'services', 'tasks', 'secrets', 'configs']) {
    app.all(`/${res}`, notSwarm);
    app.all(`/${res}/*`, notSwarm);
  }

  app.get('/version', async () => ({
    Platform: { Name: 'berth' },
    Components: [
      { Name: 'Engine', Version: BERTH_VERSION, Details: { ApiVersion: API_VERSION, Arch: goArch(), BuildTime: BUILD_TIME, Experimental: 'false', GitCommit: '', GoVersion: `node${process.versions.node}`, KernelVersion: d.host.kernel, MinAPIVersion: MIN_API_VERSION, Os: 'linux' } },
      { Name: 'berth-shim', Version: BERTH_VERSION, Details: { GitCommit: '' } },
    ],
    Version: BERTH_VERSION,
    ApiVersion: API_VERSION,
    MinAPIVersion: MIN_API_VERSION,
    GitCommit: '',
    GoVersion: `node${process.versions.node}`,
    Os: 'linux',
    Arch: goArch(),
    KernelVersion: d.host.kernel,
    BuildTime: BUILD_TIME,
  }));

  app.get('/info', async () => {
    const c = d.containers.count();
    const cg = d.containers.runtime.cgroups;
    const v2 = cg.version === 2;
    const facts = cgroupFacts(cg);
    const fs = backingFs(d.config.dataRoot);
    const forwarding = ipv4Forwarding();
    const nf = bridgeNf();
    // Host facts, then what the services found wrong at run time (a container supervisor that does not answer).
    const warnings = [...hostWarnings(facts, forwarding, nf), ...d.containers.warnings(), ...(d.apparmor.warning ? [d.apparmor.warning] : [])];
    return {
      ID: d.engineId,
      Containers: c.total,
      ContainersRunning: c.running,
      ContainersPaused: c.paused,
      ContainersStopped: c.stopped,
      Images: d.images.count(),
      Driver: 'overlay2',
      DriverStatus: [['Backing Filesystem', fs.name], ['Supports d_type', String(supportsDType(d.config.dataRoot, fs))], ['Using metacopy', 'false'], ['Native Overlay Diff', 'true'], ['userxattr', 'false']],
      Plugins: { Volume: ['local'], Network: ['bridge', 'host', 'none'], Authorization: null, Log: LOG_DRIVERS.filter((n) => n !== 'none') },
      MemoryLimit: facts.memoryLimit,
      SwapLimit: facts.swapLimit,
      KernelMemoryTCP: facts.kernelMemoryTCP,
      CpuCfsPeriod: facts.cpuCfs,
      CpuCfsQuota: facts.cpuCfs,
      CPUShares: facts.cpuShares,
      CPUSet: facts.cpuset,
      PidsLimit: facts.pids,
      IPv4Forwarding: forwarding,
      BridgeNfIptables: nf.iptables ?? false,
      BridgeNfIp6tables: nf.ip6tables ?? false,
      Debug: d.config.logLevel === 'debug',
      NFd: openFds(),
      OomKillDisable: facts.oomKillDisable,
      NGoroutines: 0,
      // Go's RFC3339Nano, as Docker's: nanoseconds, trailing zeros dropped (toISOString has milliseconds)
      SystemTime: rfc3339Nano(nowNs()),
      LoggingDriver: d.config.logDriver,
      CgroupDriver: d.containers.runtime.cgroupDriver,
      CgroupVersion: v2 ? '2' : '1',
      NEventsListener: (d.events as unknown as { emitter?: { listenerCount(e: string): number } }).emitter?.listenerCount('event') ?? 0,
      KernelVersion: d.host.kernel,
      OperatingSystem: d.host.os,
      OSVersion: d.host.osVersion,
      OSType: 'linux',
      Architecture: d.host.arch,
      IndexServerAddress: 'https://index.docker.io/v1/',
      RegistryConfig: registryConfig(d.config.insecureRegistries ?? [], d.config.registryMirrors ?? []),
      NCPU: d.host.cpus,
      MemTotal: os.totalmem(),
      GenericResources: null,
      DockerRootDir: d.config.dataRoot,
      HttpProxy: process.env.HTTP_PROXY ?? '',
      HttpsProxy: process.env.HTTPS_PROXY ?? '',
      NoProxy: process.env.NO_PROXY ?? '',
      Name: d.host.hostname,
      Labels: d.config.labels ?? [],
      DefaultAddressPools: (d.config.defaultAddressPools ?? []).map((p) => ({ Base: p.base, Size: p.size })),
      ExperimentalBuild: false,
      ServerVersion: BERTH_VERSION,
      Runtimes: { runc: { path: 'berth-shim' } },
      DefaultRuntime: 'runc',
      Swarm: { NodeID: '', NodeAddr: '', LocalNodeState: 'inactive', ControlAvailable: false, Error: '', RemoteManagers: null },
      LiveRestoreEnabled: d.config.liveRestore,
      Isolation: '',
      InitBinary: 'berth-init',
      ContainerdCommit: { ID: '' },
      RuncCommit: { ID: '' },
      InitCommit: { ID: '' },
      SecurityOptions: [...(d.apparmor.used ? ['name=apparmor'] : []), 'name=seccomp,profile=builtin', ...(d.remap ? ['name=userns'] : []), 'name=cgroupns'],
      CDISpecDirs: [],
      Warnings: warnings.length || d.networks.warnings().length ? [...warnings, ...d.networks.warnings()] : null,
    };
  });
}
