// One frozen Config from dockerd-style flags and /etc/berth/daemon.json (Docker's keys where they apply).
// Flags win over the file, as in dockerd; a key given in both places is not an error here.
import { readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { validateLogConfig } from '../logs';

export interface Config {
  hosts: string[];          // unix:///run/berth.sock …
  dataRoot: string;         // /var/lib/berth
  execRoot: string;         // /run/berth
  pidfile: string;          // /run/berth.pid
  logLevel: string;         // pino level
  configFile: string;
  socketGroup: string;      // group owning the unix socket (mode 0660)
  logDriver: string;
  logOpts: Record<string, string>;
  cgroupParent: string;     // relative cgroup path under which containers go
  /** native.cgroupdriver of exec-opts (cgroupfs | systemd); undefined: systemd on a systemd cgroup v2 host. */
  cgroupDriver: string | undefined;
  shimPath: string;
  /** The default bridge network: its device (Docker's `bridge` key; berth makes it), its gateway address
   *  and prefix (`bip`), the pools user networks take subnets from, and inter-container traffic on it. */
  bridge: string;
  bip: string;
  defaultAddressPools: Array<{ base: string; size: number }>;
  icc: boolean;
  /** daemon.json `ipv6` and `fixed-cidr-v6`: IPv6 on the default bridge, with that subnet (a ULA /64 of the
   *  engine's pool when none is given, as Docker 28). */
  ipv6: boolean;
  fixedCidrV6: string;
  /** daemon.json `iptables` (default true): false leaves the host's firewall to the user, as dockerd's key. */
  iptables: boolean;
  /** daemon.json `userland-proxy` / `--userland-proxy` (default true). false: berthd's relay (Docker's
   *  docker-proxy) carries nothing, and IPv6 host addresses are not mapped to containers without IPv6
   *  (only the relay could carry them). */
  userlandProxy: boolean;
  insecureRegistries: string[];   // daemon.json insecure-registries: host[:port] or CIDR
  registryMirrors: string[];      // daemon.json registry-mirrors: URLs tried first for docker.io
  maxConcurrentDownloads: number; // daemon.json max-concurrent-downloads (3)
  maxConcurrentUploads: number;   // daemon.json max-concurrent-uploads (5)
  /** TLS for tcp:// hosts, as dockerd: `tls` serves TLS, `tlsverify` also demands a client certificate
   *  signed by `tlscacert` (and implies `tls`). `tls` is undefined when neither flag nor key was given:
   *  then a tcp host is refused, as dockerd 27+ does, unless `--tls=false` said plain TCP is wanted. */
  tls: boolean | undefined;
  tlsVerify: boolean;
  tlsCaCert: string;
  tlsCert: string;
  tlsKey: string;
  /** host:port of the Prometheus endpoint (GET /metrics); '' when off. */
  metricsAddr: string;
  /** daemon.json default-ulimits, as HostConfig.Ulimits entries, for containers that set none of that name. */
  defaultUlimits: Array<{ Name: string; Soft: number; Hard: number }>;
  /** daemon.json default-shm-size in bytes (64 MiB). */
  defaultShmSize: number;
  /** daemon.json default-ipc-mode / default-cgroupns-mode (dockerd's): the modes of containers that set none. */
  defaultIpcMode: string;
  defaultCgroupnsMode: string;
  /** userns-remap (flag and daemon.json key, dockerd's): '' off, else `default`, `user[:group]` or
   *  `uid[:gid]`, resolved against /etc/subuid and /etc/subgid at start (runtime/userns.ts). */
  usernsRemap: string;
  labels: string[];
  /** live-restore (default true): containers outlive berthd. false: they are stopped when berthd shuts down
   *  cleanly and not adopted after a crash, as dockerd without live-restore. */
  liveRestore: boolean;
  /** shutdown-timeout: seconds a container gets to stop when berthd shuts down without live-restore. */
  shutdownTimeout: number;
  /** The API's own bounds (daemon.json api-header-timeout, api-body-timeout, api-write-timeout in seconds,
   *  api-max-json-body a size, api-max-connections a count; flags of the same names). */
  api: {
    headerTimeoutMs: number;
    bodyTimeoutMs: number;
    writeStallMs: number;
    maxJsonBody: number;
    maxConnections: number;
    maxBufferedBytes: number;
  };
}

const DEFAULT_CONFIG_FILE = '/etc/berth/daemon.json';

export class ConfigError extends Error {}

function takeValue(argv: string[], i: number, flag: string): [string, number] {
  const a = argv[i];
  const eq = a.indexOf('=');
  if (a.startsWith('--') && eq > 0) return [a.slice(eq + 1), i];
  if (i + 1 >= argv.length) throw new ConfigError(`flag needs an argument: ${flag}`);
  return [argv[i + 1], i + 1];
}

export function parseFlags(argv: string[]): Record<string, string | string[] | boolean> {
  const out: Record<string, string | string[] | boolean> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const name = a.startsWith('--') ? a.slice(2).split('=')[0] : a;
    switch (name) {
      case '-H': case 'host': {
        const [v, j] = takeValue(argv, i, name); i = j;
        out.hosts = [...((out.hosts as string[]) ?? []), v];
        break;
      }
      case 'data-root': case 'exec-root': case 'pidfile': case 'config-file': case 'log-level':
      case 'group': case 'shim-path': case 'cgroup-parent': case '-l': case '-p': case '-G': case 'bridge': case '-b': case 'bip': {
        const [v, j] = takeValue(argv, i, name); i = j;
        const key = ({ '-l': 'log-level', '-p': 'pidfile', '-G': 'group', '-b': 'bridge' } as Record<string, string>)[name] ?? name;
        out[key] = v;
        break;
      }
      case 'tlscacert': case 'tlscert': case 'tlskey': case 'metrics-addr': case 'default-shm-size':
      case 'default-ipc-mode': case 'default-cgroupns-mode': case 'shutdown-timeout': case 'userns-remap':
      case 'api-header-timeout': case 'api-body-timeout': case 'api-write-timeout': case 'api-max-json-body': case 'api-max-connections': {
        const [v, j] = takeValue(argv, i, name); i = j;
        out[name] = v;
        break;
      }
      case 'label': {
        const [v, j] = takeValue(argv, i, name); i = j;
        out.labels = [...((out.labels as string[]) ?? []), v];
        break;
      }
      case 'exec-opt': {
        const [v, j] = takeValue(argv, i, name); i = j;
        out['exec-opts'] = [...((out['exec-opts'] as string[]) ?? []), v];
        break;
      }
      // Booleans as Go's flag package takes them: `--tls`, `--tls=true`, `--tls=false` (never a separate word).
      case 'tls': case 'tlsverify': case 'live-restore': case 'userland-proxy': {
        const eq = a.indexOf('=');
        out[name] = eq > 0 ? parseBool(a.slice(eq + 1), name) : true;
        break;
      }
      case '-D': case 'debug':
        out['log-level'] = 'debug';
        break;
      case '-h': case 'help':
        out.help = true;
        break;
      default:
        throw new ConfigError(`unknown flag: ${a}`);
    }
  }
  return out;
}

function parseBool(v: string, flag: string): boolean {
  if (/^(1|t|true|TRUE|True)$/.test(v)) return true;
  if (/^(0|f|false|FALSE|False)$/.test(v)) return false;
  throw new ConfigError(`invalid boolean value ${JSON.stringify(v)} for --${flag}`);
}

/** Sizes as Docker writes them in daemon.json and flags: a number of bytes or "64m", "1g", "512k", "1.5GB". */
export function parseByteSize(v: unknown, key: string): number {
  if (typeof v === 'number' && Number.isInteger(v) && v > 0) return v;
  const m = typeof v === 'string' ? /^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?b)?\s*$/i.exec(v) : null;
  if (!m) throw new ConfigError(`invalid ${key}: ${JSON.stringify(v)} (bytes, or a size such as "64m")`);
  const mult = 1024 ** ' kmgtp'.indexOf((m[2] || ' ').toLowerCase());
  const n = Math.round(Number(m[1]) * mult);
  if (n <= 0) throw new ConfigError(`invalid ${key}: ${JSON.stringify(v)} must be positive`);
  return n;
}

const ULIMIT_NAMES = new Set(['core', 'cpu', 'data', 'fsize', 'locks', 'memlock', 'msgqueue', 'nice', 'nofile', 'nproc', 'rss', 'rtprio', 'rttime', 'sigpending', 'stack', 'as']);

/** daemon.json default-ulimits: {"nofile": {"Name": "nofile", "Hard": 2048, "Soft": 1024}} (Name may be left out). */
function defaultUlimits(v: unknown): Config['defaultUlimits'] {
  if (v === undefined || v === null) return [];
  if (typeof v !== 'object' || Array.isArray(v)) throw new ConfigError('default-ulimits must be an object keyed by ulimit name');
  const out: Config['defaultUlimits'] = [];
  for (const [k, u] of Object.entries(v as Record<string, { Name?: string; Soft?: unknown; Hard?: unknown }>)) {
    const name = u?.Name ?? k;
    if (!ULIMIT_NAMES.has(name)) throw new ConfigError(`invalid default-ulimits: unknown ulimit ${JSON.stringify(name)}`);
    if (!Number.isInteger(u.Soft) || !Number.isInteger(u.Hard)) throw new ConfigError(`invalid default-ulimits: ${name} needs integer Soft and Hard`);
    if ((u.Soft as number) > (u.Hard as number)) throw new ConfigError(`invalid default-ulimits: ${name} soft limit ${u.Soft} is greater than hard limit ${u.Hard}`);
    out.push({ Name: name, Soft: u.Soft as number, Hard: u.Hard as number });
  }
  return out;
}

/** dockerd's exec-opts: "native.cgroupdriver=systemd" (the only option on Linux). */
function cgroupDriver(opts: string[]): string | undefined {
  let driver: string | undefined;
  for (const o of opts) {
    const eq = o.indexOf('=');
    const key = (eq > 0 ? o.slice(0, eq) : o).trim().toLowerCase();
    if (key !== 'native.cgroupdriver' || eq < 0) throw new ConfigError(`unknown exec-opt ${JSON.stringify(o)} (native.cgroupdriver=cgroupfs|systemd)`);
    driver = o.slice(eq + 1).trim();
    if (driver !== 'cgroupfs' && driver !== 'systemd') throw new ConfigError(`native.cgroupdriver option ${driver} not supported (cgroupfs or systemd)`);
  }
  return driver;
}

function optBool(flags: Record<string, unknown>, file: Record<string, unknown>, key: string): boolean | undefined {
  const v = flags[key] ?? file[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw new ConfigError(`${key} must be true or false`);
  return v;
}

function normaliseHost(h: string): string {
  if (h.startsWith('/')) return `unix://${h}`;
  if (h.startsWith('unix://') || h.startsWith('tcp://') || h.startsWith('fd://')) return h;
  throw new ConfigError(`invalid host ${h}: use unix:///path`);
}

function stringList(file: Record<string, unknown>, key: string): string[] {
  const v = file[key];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw new ConfigError(`${key} must be a list of strings`);
  return v as string[];
}

function positiveInt(file: Record<string, unknown>, key: string, dflt: number): number {
  const v = file[key];
  if (v === undefined || v === null) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new ConfigError(`invalid ${key}: ${JSON.stringify(v)} (a positive integer)`);
  return v;
}

/** Seconds (a number, fractions allowed) as milliseconds. */
function seconds(flags: Record<string, unknown>, file: Record<string, unknown>, key: string, dflt: number): number {
  const raw = flags[key] ?? file[key];
  if (raw === undefined || raw === null) return dflt * 1000;
  const v = typeof raw === 'string' && /^\d+(\.\d+)?$/.test(raw) ? Number(raw) : raw;
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new ConfigError(`invalid ${key}: ${JSON.stringify(raw)} (seconds, more than 0)`);
  return Math.round(v * 1000);
}

/** A registry mirror as Docker accepts it: an http(s) URL; kept as scheme://host[:port]. */
function mirrorUrl(m: string): string {
  let u: URL;
  try {
    u = new URL(m);
  } catch {
    throw new ConfigError(`invalid mirror: ${JSON.stringify(m)} is not a valid URI`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new ConfigError(`invalid mirror: unsupported scheme in ${JSON.stringify(m)}`);
  return `${u.protocol}//${u.host}`;
}

/** shutdown-timeout as dockerd takes it: whole seconds, 15 by default, -1 for no limit. */
function shutdownTimeout(v: unknown): number {
  if (v === undefined || v === null) return 15;
  const n = typeof v === 'string' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < -1) throw new ConfigError(`invalid shutdown-timeout: ${JSON.stringify(v)} (whole seconds, or -1)`);
  return n;
}

export function loadConfig(argv: string[], repoRoot: string): Config {
  const flags = parseFlags(argv);
  const configFile = (flags['config-file'] as string) ?? DEFAULT_CONFIG_FILE;
  let file: Record<string, unknown> = {};
  if (existsSync(configFile)) {
    try {
      file = JSON.parse(readFileSync(configFile, 'utf8'));
    } catch (e) {
      throw new ConfigError(`unable to configure the daemon with file ${configFile}: ${(e as Error).message}`);
    }
  } else if (flags['config-file']) {
    throw new ConfigError(`open ${configFile}: no such file or directory`);
  }
  const pick = <T>(flag: string, key: string, dflt: T): T =>
    (flags[flag] as T | undefined) ?? (file[key] as T | undefined) ?? dflt;
  const hosts = ((flags.hosts as string[]) ?? (file.hosts as string[]) ?? ['unix:///run/berth.sock']).map(normaliseHost);
  const cfg: { -readonly [K in keyof Config]: Config[K] } = {
    hosts,
    dataRoot: path.resolve(pick('data-root', 'data-root', '/var/lib/berth')),
    execRoot: path.resolve(pick('exec-root', 'exec-root', '/run/berth')),
    pidfile: path.resolve(pick('pidfile', 'pidfile', '/run/berth.pid')),
    logLevel: pick('log-level', 'log-level', 'info'),
    configFile,
    socketGroup: pick('group', 'group', 'docker'),
    logDriver: (file['log-driver'] as string) ?? 'json-file',
    logOpts: (file['log-opts'] as Record<string, string>) ?? {},
    cgroupParent: pick('cgroup-parent', 'cgroup-parent', 'berth'),
    cgroupDriver: cgroupDriver((flags['exec-opts'] as string[] | undefined) ?? stringList(file, 'exec-opts')),
    shimPath: pick('shim-path', 'shim-path', path.join(repoRoot, 'build', 'berth-shim')),
    bridge: pick('bridge', 'bridge', 'berth0'),
    bip: pick('bip', 'bip', ''),
    defaultAddressPools: (file['default-address-pools'] as Config['defaultAddressPools']) ?? [],
    icc: file.icc === undefined ? true : !!file.icc,
    ipv6: optBool(flags, file, 'ipv6') ?? false,
    fixedCidrV6: (file['fixed-cidr-v6'] as string | undefined) ?? '',
    iptables: file.iptables === undefined ? true : file.iptables !== false,
    userlandProxy: optBool(flags, file, 'userland-proxy') ?? true,
    insecureRegistries: stringList(file, 'insecure-registries'),
    registryMirrors: stringList(file, 'registry-mirrors').map(mirrorUrl),
    maxConcurrentDownloads: positiveInt(file, 'max-concurrent-downloads', 3),
    maxConcurrentUploads: positiveInt(file, 'max-concurrent-uploads', 5),
    tls: undefined,
    tlsVerify: optBool(flags, file, 'tlsverify') ?? false,
    tlsCaCert: '',
    tlsCert: '',
    tlsKey: '',
    metricsAddr: pick('metrics-addr', 'metrics-addr', ''),
    defaultUlimits: defaultUlimits(file['default-ulimits']),
    defaultShmSize: parseByteSize(pick('default-shm-size', 'default-shm-size', 67108864 as unknown), 'default-shm-size'),
    defaultIpcMode: pick('default-ipc-mode', 'default-ipc-mode', 'private'),
    defaultCgroupnsMode: pick('default-cgroupns-mode', 'default-cgroupns-mode', 'private'),
    usernsRemap: pick('userns-remap', 'userns-remap', ''),
    labels: (flags.labels as string[]) ?? stringList(file, 'labels'),
    liveRestore: optBool(flags, file, 'live-restore') ?? true,
    shutdownTimeout: shutdownTimeout(flags['shutdown-timeout'] ?? file['shutdown-timeout']),
    api: {
      headerTimeoutMs: seconds(flags, file, 'api-header-timeout', 10),
      bodyTimeoutMs: seconds(flags, file, 'api-body-timeout', 60),
      writeStallMs: seconds(flags, file, 'api-write-timeout', 300),
      maxJsonBody: parseByteSize(pick('api-max-json-body', 'api-max-json-body', 4 * 1024 * 1024 as unknown), 'api-max-json-body'),
      maxConnections: Number(pick('api-max-connections', 'api-max-connections', 1024 as unknown)),
      maxBufferedBytes: 64 * 1024 * 1024,
    },
  };
  if (!Number.isInteger(cfg.api.maxConnections) || cfg.api.maxConnections < 1) throw new ConfigError(`invalid api-max-connections: ${JSON.stringify(pick('api-max-connections', 'api-max-connections', ''))} (a positive integer)`);
  // --tlsverify implies --tls (dockerd: "Use TLS and verify the remote").
  const tls = optBool(flags, file, 'tls');
  cfg.tls = cfg.tlsVerify ? true : tls;
  const certDir = path.dirname(configFile);
  cfg.tlsCaCert = path.resolve(pick('tlscacert', 'tlscacert', path.join(certDir, 'ca.pem')));
  cfg.tlsCert = path.resolve(pick('tlscert', 'tlscert', path.join(certDir, 'cert.pem')));
  cfg.tlsKey = path.resolve(pick('tlskey', 'tlskey', path.join(certDir, 'key.pem')));
  if (cfg.defaultIpcMode !== 'private' && cfg.defaultIpcMode !== 'shareable') throw new ConfigError(`invalid default-ipc-mode ${JSON.stringify(cfg.defaultIpcMode)}: use private or shareable`);
  if (cfg.defaultCgroupnsMode !== 'private' && cfg.defaultCgroupnsMode !== 'host') throw new ConfigError(`invalid default-cgroupns-mode ${JSON.stringify(cfg.defaultCgroupnsMode)}: use private or host`);
  if (typeof cfg.usernsRemap !== 'string' || (cfg.usernsRemap && !/^[A-Za-z0-9_.-]+(:[A-Za-z0-9_.-]+)?$/.test(cfg.usernsRemap))) {
    throw new ConfigError(`invalid userns-remap ${JSON.stringify(cfg.usernsRemap)}: use default, user, user:group, uid or uid:gid`);
  }
  if (cfg.metricsAddr && !/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/.test(cfg.metricsAddr)) throw new ConfigError(`invalid metrics-addr ${JSON.stringify(cfg.metricsAddr)}: use host:port`);
  if (cfg.logOpts === null || typeof cfg.logOpts !== 'object' || Array.isArray(cfg.logOpts) || !Object.values(cfg.logOpts).every((x) => typeof x === 'string')) {
    throw new ConfigError('log-opts must be an object of strings');
  }
  try {
    validateLogConfig({ Type: cfg.logDriver, Config: cfg.logOpts });
  } catch (e) {
    throw new ConfigError(`failed to set log opts: ${(e as Error).message}`);
  }
  for (const h of hosts) {
    if (!h.startsWith('tcp://')) continue;
    if (!/^tcp:\/\/(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]*):\d{1,5}\/?$/.test(h)) throw new ConfigError(`invalid host ${h}: use tcp://address:port`);
    if (cfg.tls === undefined) {
      throw new ConfigError(`refusing to listen on ${h} without TLS: anyone who can reach it controls this host as root. `
        + 'Give --tlsverify --tlscacert ca.pem --tlscert server-cert.pem --tlskey server-key.pem (or "tlsverify" and the cert keys in daemon.json), '
        + 'or --tls=false to accept an unencrypted, unauthenticated API on purpose');
    }
  }
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(cfg.bridge)) throw new ConfigError(`invalid bridge name: ${cfg.bridge}`);
  return Object.freeze(cfg);
}
