// main: flags + daemon.json → config → state (SQLite) → restore → listen. Everything else is in app.ts.
import { mkdirSync, writeFileSync, unlinkSync, chmodSync, chownSync, rmSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import pino from 'pino';
import { loadConfig, ConfigError, type Config } from './config/config';
import { openDb } from './state/db';
import { Daemon } from './daemon';
import { buildApp } from './app';

function repoRoot(): string {
  // dist/daemon/main.js → repo root
  return path.resolve(__dirname, '..', '..');
}

function groupId(name: string): number | undefined {
  try {
    const out = execFileSync('getent', ['group', name], { encoding: 'utf8' });
    return Number(out.split(':')[2]);
  } catch {
    return undefined;
  }
}

function notifySystemd(state: string): void {
  const sock = process.env.NOTIFY_SOCKET;
  if (!sock) return;
  try {
    // systemd-notify speaks the datagram protocol for us; the unit grants it access with NotifyAccess=all.
    execFileSync('systemd-notify', [state], { stdio: 'ignore' });
  } catch { /* not fatal */ }
}

async function listen(cfg: Config, servers: { makeServer: () => import('node:http').Server; first: import('node:http').Server }, log: pino.Logger): Promise<void> {
  let first = true;
  for (const host of cfg.hosts) {
    const server = first ? servers.first : servers.makeServer();
    first = false;
    if (host.startsWith('unix://')) {
      const p = host.slice('unix://'.length);
      mkdirSync(path.dirname(p), { recursive: true });
      rmSync(p, { force: true });
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(p, () => resolve());
      });
      chmodSync(p, 0o660);
      const gid = groupId(cfg.socketGroup);
      if (gid !== undefined) chownSync(p, 0, gid);
      log.info({ socket: p }, 'API listening');
    } else if (host.startsWith('fd://')) {
      // systemd socket activation: the sockets are fds 3 … 3+LISTEN_FDS-1 when LISTEN_PID is us.
      const n = Number(process.env.LISTEN_FDS ?? 0);
      if (Number(process.env.LISTEN_PID) !== process.pid || n < 1) throw new ConfigError('fd:// given but no sockets were passed by systemd (LISTEN_FDS)');
      for (let i = 0; i < n; i++) {
        const s = i === 0 ? server : servers.makeServer();
        await new Promise<void>((resolve, reject) => {
          s.once('error', reject);
          s.listen({ fd: 3 + i }, () => resolve());
        });
      }
      log.info({ fds: n }, 'API listening on sockets from systemd');
    } else if (host.startsWith('tcp://')) {
      throw new ConfigError(`tcp hosts need TLS, which this berth does not serve yet: ${host}`);
    } else {
      throw new ConfigError(`unsupported host ${host}`);
    }
  }
}

export async function main(argv: string[]): Promise<void> {
  let cfg: Config;
  try {
    cfg = loadConfig(argv, repoRoot());
  } catch (e) {
    process.stderr.write(`berthd: ${(e as Error).message}\n`);
    process.exit(2);
  }
  const log = pino({ level: cfg.logLevel, base: { pid: process.pid } });
  mkdirSync(cfg.dataRoot, { recursive: true, mode: 0o711 });
  mkdirSync(cfg.execRoot, { recursive: true, mode: 0o700 });
  writeFileSync(cfg.pidfile, `${process.pid}\n`);
  const db = openDb(path.join(cfg.dataRoot, 'berth.db'));
  const daemon = new Daemon(cfg, db, log);
  await daemon.restore();
  const { app, servers, makeServer } = buildApp(daemon, log);
  await app.ready();
  try {
    await listen(cfg, { first: servers[0], makeServer }, log);
  } catch (e) {
    log.error({ err: e }, 'cannot listen');
    process.exit(1);
  }
  notifySystemd('--ready');
  log.info({ dataRoot: cfg.dataRoot, execRoot: cfg.execRoot }, 'berthd ready');

  let stopping = false;
  const stop = async (sig: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ sig }, 'shutting down; containers keep running');
    for (const s of servers) s.close();
    await daemon.shutdown();
    try { unlinkSync(cfg.pidfile); } catch { /* gone */ }
    for (const h of cfg.hosts) if (h.startsWith('unix://')) rmSync(h.slice(7), { force: true });
    notifySystemd('--stopping');
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGPIPE', () => {});
}
