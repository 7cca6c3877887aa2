// One frozen Config from dockerd-style flags and /etc/berth/daemon.json (Docker's keys where they apply).
// Flags win over the file, as in dockerd; a key given in both places is not an error here.
import { readFileSync, existsSync } from 'node:fs';
import path from 'node:path';

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
  shimPath: string;
  /** The default bridge network: its device (Docker's `bridge` key; berth makes it), its gateway address
   *  and prefix (`bip`), the pools user networks take subnets from, and inter-container traffic on it. */
  bridge: string;
  bip: string;
  defaultAddressPools: Array<{ base: string; size: number }>;
  icc: boolean;
  insecureRegistries: string[];   // daemon.json insecure-registries: host[:port] or CIDR
  registryMirrors: string[];      // daemon.json registry-mirrors: URLs tried first for docker.io
  maxConcurrentDownloads: number; // daemon.json max-concurrent-downloads (3)
  maxConcurrentUploads: number;   // daemon.json max-concurrent-uploads (5)
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
  const cfg: Config = {
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
    shimPath: pick('shim-path', 'shim-path', path.join(repoRoot, 'build', 'berth-shim')),
    bridge: pick('bridge', 'bridge', 'berth0'),
    bip: pick('bip', 'bip', ''),
    defaultAddressPools: (file['default-address-pools'] as Config['defaultAddressPools']) ?? [],
    icc: file.icc === undefined ? true : !!file.icc,
    insecureRegistries: stringList(file, 'insecure-registries'),
    registryMirrors: stringList(file, 'registry-mirrors').map(mirrorUrl),
    maxConcurrentDownloads: positiveInt(file, 'max-concurrent-downloads', 3),
    maxConcurrentUploads: positiveInt(file, 'max-concurrent-uploads', 5),
  };
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(cfg.bridge)) throw new ConfigError(`invalid bridge name: ${cfg.bridge}`);
  return Object.freeze(cfg);
}
