// main: flags + daemon.json → config → state (SQLite) → restore → listen. Everything else is in app.ts.
import { mkdirSync, writeFileSync, unlinkSync, chmodSync, chownSync, rmSync, readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import type net from 'node:net';
import pino from 'pino';
import { loadConfig, ConfigError, type Config } from './config/config';
import { openDb } from './state/db';
import { Daemon } from './daemon';
import { resolveRemap, probeRemap } from './runtime/userns';
import { buildApp, type MakeServer } from './app';
import { serveMetrics } from './metrics';
import { releaseMemoryWhenIdle } from './runtime/memory';
import { lockOrExit } from './lib/instance-lock';
import { requestScope, isStreamError } from './api/guard';

/** The last line of defence: an error no handler caught. One that escaped a request is logged with that
 *  request's route and ends that request only; a stream's error (a peer gone) never stops berthd. Anything
 *  else outside any request leaves the process in an unknown state: logged, and berthd exits (containers
 *  keep running; systemd starts it again). */
function lastLine(log: pino.Logger, kind: 'uncaughtException' | 'unhandledRejection', err: unknown): void {
  const scope = requestScope.getStore();
  if (scope) {
    log.error({ err, route: scope.route ?? `${scope.method} ${scope.url}`, kind }, 'error escaped a request; that request is ended');
    scope.socket.destroy();
    return;
  }
  if (kind === 'unhandledRejection' || isStreamError(err)) {
    log.error({ err, kind }, 'error outside any request; berthd carries on');
    return;
  }
  log.fatal({ err, kind }, 'uncaught error outside any request; berthd exits');
  process.exit(70);
}

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

/** The TLS options of tcp:// listeners: the server's certificate and key, and with tlsverify the CA that
 *  client certificates must chain to (a client without one is refused during the handshake). */
function tlsOptions(cfg: Config): import('node:https').ServerOptions {
  const read = (what: string, p: string) => {
    try {
      return readFileSync(p);
    } catch (e) {
      throw new ConfigError(`could not load ${what} ${p}: ${(e as Error).message}`);
    }
  };
  return {
    cert: read('TLS certificate', cfg.tlsCert),
    key: read('TLS key', cfg.tlsKey),
    ...(cfg.tlsVerify ? { ca: read('TLS CA certificate', cfg.tlsCaCert), requestCert: true, rejectUnauthorized: true } : {}),
    minVersion: 'TLSv1.2',
  };
}

async function listenOn(server: net.Server, target: string | { fd: number } | { host: string; port: number }): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    const done = () => {
      server.off('error', reject);
      resolve();
    };
    if (typeof target === 'string') server.listen(target, done);
    else server.listen(target, done);
  });
}

async function listen(cfg: Config, makeServer: MakeServer, log: pino.Logger): Promise<void> {
  const plain = () => makeServer();
  for (const host of cfg.hosts) {
    if (host.startsWith('unix://')) {
      const p = host.slice('unix://'.length);
      mkdirSync(path.dirname(p), { recursive: true });
      rmSync(p, { force: true });
      await listenOn(plain(), p);
      chmodSync(p, 0o660);
      const gid = groupId(cfg.socketGroup);
      if (gid !== undefined) chownSync(p, 0, gid);
      else log.warn({ group: cfg.socketGroup }, 'socket group not found; the socket stays root:root 0660');
      log.info({ socket: p, group: gid !== undefined ? cfg.socketGroup : 'root' }, 'API listening');
    } else if (host.startsWith('fd://')) {
      // systemd socket activation: the sockets are fds 3 … 3+LISTEN_FDS-1 when LISTEN_PID is us.
      const n = Number(process.env.LISTEN_FDS ?? 0);
      if (Number(process.env.LISTEN_PID) !== process.pid || n < 1) throw new ConfigError('fd:// given but no sockets were passed by systemd (LISTEN_FDS)');
      for (let i = 0; i < n; i++) await listenOn(plain(), { fd: 3 + i });
      log.info({ fds: n }, 'API listening on sockets from systemd');
    } else if (host.startsWith('tcp://')) {
      const u = /^tcp:\/\/(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]*):(\d+)\/?$/.exec(host)!;
      const addr = u[1].replace(/^\[|\]$/g, '') || '0.0.0.0';
      const port = Number(u[2]);
      if (cfg.tls) {
        await listenOn(makeServer(tlsOptions(cfg)), { host: addr, port });
        log.info({ host, tlsverify: cfg.tlsVerify }, cfg.tlsVerify ? 'API listening with TLS; clients must present a certificate signed by the CA' : 'API listening with TLS; clients are NOT authenticated (no --tlsverify)');
      } else {
        await listenOn(plain(), { host: addr, port });
        const warning = `API listening on ${host} WITHOUT TLS (--tls=false): anyone who can connect to it controls this host as root`;
        log.warn({ host }, warning);
        process.stderr.write(`berthd: WARNING: ${warning}\n`);
      }
    } else {
      throw new ConfigError(`unsupported host ${host}`);
    }
  }
}

export async function main(argv: string[]): Promise<void> {
  let cfg: Config;
  try {
    cfg = loadConfig(argv, repoRoot());
    // Certificates are read now, so that a mistake stops berthd before it touches the host (bridges,
    // firewall, containers); they are read again when the listeners open.
    if (cfg.tls && cfg.hosts.some((h) => h.startsWith('tcp://'))) tlsOptions(cfg);
  } catch (e) {
    process.stderr.write(`berthd: ${(e as Error).message}\n`);
    process.exit(2);
  }
  const log = pino({ level: cfg.logLevel, base: { pid: process.pid } });
  process.on('uncaughtException', (err) => lastLine(log, 'uncaughtException', err));
  process.on('unhandledRejection', (err) => lastLine(log, 'unhandledRejection', err));
  mkdirSync(cfg.dataRoot, { recursive: true, mode: 0o711 });
  mkdirSync(cfg.execRoot, { recursive: true, mode: 0o700 });
  lockOrExit(cfg); // before anything of the roots, sockets or bridge is touched (lib/instance-lock.ts)
  writeFileSync(cfg.pidfile, `${process.pid}\n`);
  let db: ReturnType<typeof openDb>;
  try {
    db = openDb(path.join(cfg.dataRoot, 'berth.db'));
  } catch (e) {
    log.fatal({ err: e }, 'cannot open the state database');
    process.stderr.write(`berthd: ${(e as Error).message}\n`);
    try { unlinkSync(cfg.pidfile); } catch { /* gone */ }
    process.exit(1);
  }
  const daemon = new Daemon(cfg, db, log);
  if (cfg.usernsRemap) {
    // Before anything is restored: a remap this host cannot make stops berthd here, with the reason.
    try {
      daemon.remap = await resolveRemap(cfg.usernsRemap);
      await probeRemap(daemon.remap, path.join(cfg.dataRoot, `.idmap-probe-${process.pid}`));
      log.info({ user: daemon.remap.user, group: daemon.remap.group, uids: daemon.remap.uidMappings, gids: daemon.remap.gidMappings }, 'userns-remap: containers run in user namespaces over idmapped layers');
    } catch (e) {
      log.fatal({ err: e }, 'userns-remap');
      process.stderr.write(`berthd: ${(e as Error).message}\n`);
      try { unlinkSync(cfg.pidfile); } catch { /* gone */ }
      process.exit(1);
    }
  }
  await daemon.restore();
  const { app, servers, makeServer, guard } = buildApp(daemon, log);
  await app.ready();
  try {
    await listen(cfg, makeServer, log);
    if (cfg.metricsAddr) await serveMetrics(daemon, cfg.metricsAddr, log).then((m) => servers.push(m.server));
  } catch (e) {
    log.error({ err: e }, 'cannot listen');
    process.stderr.write(`berthd: cannot listen: ${(e as Error).message}\n`);
    process.exit(1);
  }
  notifySystemd('--ready');
  log.info({ dataRoot: cfg.dataRoot, execRoot: cfg.execRoot }, 'berthd ready');
  releaseMemoryWhenIdle((before, after) => log.debug({ before, after }, 'idle: memory released'));

  let stopping = false;
  const stop = async (sig: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ sig, liveRestore: cfg.liveRestore }, cfg.liveRestore ? 'shutting down; containers keep running' : 'shutting down; live-restore is off: stopping the running containers');
    for (const s of servers) s.close();
    guard.close();
    await daemon.shutdown();
    try { unlinkSync(cfg.pidfile); } catch { /* gone */ }
    for (const h of cfg.hosts) if (h.startsWith('unix://')) rmSync(h.slice(7), { force: true });
    notifySystemd('--stopping');
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGPIPE', () => {});
  // systemctl reload (ExecReload sends SIGHUP): node's default for SIGHUP is to exit, which would stop
  // the engine. daemon.json is read again and checked, so that a mistake shows now rather than at the
  // next restart; its values take effect when berthd restarts (containers keep running across that).
  process.on('SIGHUP', () => {
    try {
      loadConfig(argv, repoRoot());
      log.warn({ configFile: cfg.configFile }, 'SIGHUP: configuration file is valid; restart berth to apply changes (containers keep running)');
    } catch (e) {
      log.error({ configFile: cfg.configFile, err: (e as Error).message }, 'SIGHUP: configuration file is invalid; the running configuration is kept');
    }
  });
}
