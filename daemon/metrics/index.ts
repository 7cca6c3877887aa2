// Prometheus metrics on `metrics-addr` (GET /metrics, text exposition format 0.0.4), as dockerd serves them.
// Names follow Docker's engine_daemon_* where Docker has the figure (container states, engine info, events);
// the rest are berth's own (berth_*) or the conventional process_* / nodejs_* ones. Written by hand rather
// than with prom-client: a few gauges, counters and one histogram do not need a dependency, and every value
// is read when scraped, from the same services the API answers from.
import http from 'node:http';
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import type { Logger } from 'pino';
import type { ContainerService } from '../containers/service';
import type { ImageService } from '../images/service';
import type { EventBus } from '../events/bus';
import type { HostInfo } from '../lib/host';
import { BERTH_VERSION } from '../lib/versions';

/** What the metrics read: counts of containers and images, the event stream, the host's facts. */
export interface MetricsDeps {
  readonly containers: Pick<ContainerService, 'count'>;
  readonly images: Pick<ImageService, 'count'>;
  readonly events: Pick<EventBus, 'subscribe'>;
  readonly host: HostInfo;
  readonly engineId: string;
}

const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

interface Hist { buckets: number[]; sum: number; count: number }

/** Docker's container action names and the routes that do them. */
const CONTAINER_ACTIONS: Array<[string, string, string]> = [
  ['create', 'POST', '/containers/create'], ['start', 'POST', '/containers/:id/start'],
  ['delete', 'DELETE', '/containers/:id'], ['commit', 'POST', '/commit'], ['changes', 'GET', '/containers/:id/changes'],
];

/** Request figures, fed by a fastify onResponse hook (app.ts): per method, route pattern and status code. */
export class HttpMetrics {
  readonly requests = new Map<string, number>();        // `method\0route\0code` → count
  readonly durations = new Map<string, Hist>();         // `method\0route` → histogram
  inFlight = 0;

  observe(method: string, route: string, code: number, seconds: number): void {
    const k = `${method}\0${route}\0${code}`;
    this.requests.set(k, (this.requests.get(k) ?? 0) + 1);
    const dk = `${method}\0${route}`;
    let h = this.durations.get(dk);
    if (!h) this.durations.set(dk, h = { buckets: DURATION_BUCKETS.map(() => 0), sum: 0, count: 0 });
    for (let i = 0; i < DURATION_BUCKETS.length; i++) if (seconds <= DURATION_BUCKETS[i]) h.buckets[i]++;
    h.sum += seconds;
    h.count++;
  }
}

export const httpMetrics = new HttpMetrics();

/** A label value escaped as the text format wants: backslash, double quote and newline. */
function esc(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function labels(l: Record<string, string>): string {
  const parts = Object.entries(l).map(([k, v]) => `${k}="${esc(v)}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
}

class Out {
  private lines: string[] = [];
  family(name: string, type: 'gauge' | 'counter' | 'histogram', help: string): void {
    this.lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
  }
  sample(name: string, value: number, l: Record<string, string> = {}): void {
    this.lines.push(`${name}${labels(l)} ${Number.isFinite(value) ? value : value > 0 ? '+Inf' : value < 0 ? '-Inf' : 'NaN'}`);
  }
  text(): string {
    return this.lines.join('\n') + '\n';
  }
}

export class Metrics {
  private readonly eventCounts = new Map<string, number>(); // `type\0action` → count
  private eventsTotal = 0;
  private readonly loop: IntervalHistogram;
  private readonly unsubscribe: () => void;

  constructor(private readonly d: MetricsDeps) {
    this.unsubscribe = d.events.subscribe((ev) => {
      this.eventsTotal++;
      const k = `${ev.Type}\0${ev.Action.split(':')[0]}`;
      this.eventCounts.set(k, (this.eventCounts.get(k) ?? 0) + 1);
    });
    this.loop = monitorEventLoopDelay({ resolution: 20 });
    this.loop.enable();
  }

  close(): void {
    this.unsubscribe();
    this.loop.disable();
  }

  render(): string {
    const o = new Out();
    const d = this.d;
    const c = d.containers.count();
    o.family('engine_daemon_container_states_containers', 'gauge', 'The count of containers in various states');
    o.sample('engine_daemon_container_states_containers', c.paused, { state: 'paused' });
    o.sample('engine_daemon_container_states_containers', c.running, { state: 'running' });
    o.sample('engine_daemon_container_states_containers', c.stopped, { state: 'stopped' });

    o.family('engine_daemon_engine_info', 'gauge', 'The information related to the engine and the OS it is running on');
    o.sample('engine_daemon_engine_info', 1, {
      architecture: d.host.arch, commit: '', daemon_id: d.engineId, graphdriver: 'overlay2', kernel: d.host.kernel,
      os: d.host.os, os_type: 'linux', os_version: d.host.osVersion, version: BERTH_VERSION,
    });
    o.family('engine_daemon_engine_cpus_cpus', 'gauge', 'The number of cpus that the host system of the engine has');
    o.sample('engine_daemon_engine_cpus_cpus', d.host.cpus);
    o.family('engine_daemon_engine_memory_bytes', 'gauge', 'The number of bytes of memory that the host system of the engine has');
    o.sample('engine_daemon_engine_memory_bytes', os.totalmem());

    // Docker's per-action container timings, from the API routes that perform them (every answered request).
    o.family('engine_daemon_container_actions_seconds', 'histogram', 'The number of seconds it takes to process each container action');
    for (const [action, method, route] of CONTAINER_ACTIONS) {
      const h = httpMetrics.durations.get(`${method}\0${route}`) ?? { buckets: DURATION_BUCKETS.map(() => 0), sum: 0, count: 0 };
      DURATION_BUCKETS.forEach((le, i) => o.sample('engine_daemon_container_actions_seconds_bucket', h.buckets[i], { action, le: String(le) }));
      o.sample('engine_daemon_container_actions_seconds_bucket', h.count, { action, le: '+Inf' });
      o.sample('engine_daemon_container_actions_seconds_sum', h.sum, { action });
      o.sample('engine_daemon_container_actions_seconds_count', h.count, { action });
    }

    o.family('engine_daemon_events_total', 'counter', 'The number of events logged');
    o.sample('engine_daemon_events_total', this.eventsTotal);
    o.family('berth_events_total', 'counter', 'Events published, by object type and action');
    for (const [k, n] of [...this.eventCounts].sort()) {
      const [type, action] = k.split('\0');
      o.sample('berth_events_total', n, { type, action });
    }

    o.family('berth_images', 'gauge', 'The number of images in the image store');
    o.sample('berth_images', d.images.count());
    o.family('berth_containers', 'gauge', 'The number of containers, in every state');
    o.sample('berth_containers', c.total);

    o.family('berth_http_requests_total', 'counter', 'API requests answered, by method, route and status code');
    for (const [k, n] of [...httpMetrics.requests].sort()) {
      const [method, route, code] = k.split('\0');
      o.sample('berth_http_requests_total', n, { method, route, code });
    }
    o.family('berth_http_request_duration_seconds', 'histogram', 'Time to answer API requests, by method and route (streams: until the response ended)');
    for (const [k, h] of [...httpMetrics.durations].sort()) {
      const [method, route] = k.split('\0');
      DURATION_BUCKETS.forEach((le, i) => o.sample('berth_http_request_duration_seconds_bucket', h.buckets[i], { method, route, le: String(le) }));
      o.sample('berth_http_request_duration_seconds_bucket', h.count, { method, route, le: '+Inf' });
      o.sample('berth_http_request_duration_seconds_sum', h.sum, { method, route });
      o.sample('berth_http_request_duration_seconds_count', h.count, { method, route });
    }
    o.family('berth_http_requests_in_flight', 'gauge', 'API requests being answered now');
    o.sample('berth_http_requests_in_flight', httpMetrics.inFlight);

    const mem = process.memoryUsage();
    o.family('process_resident_memory_bytes', 'gauge', 'Resident memory size in bytes');
    o.sample('process_resident_memory_bytes', mem.rss);
    o.family('process_start_time_seconds', 'gauge', 'Start time of the process since unix epoch in seconds');
    o.sample('process_start_time_seconds', Math.round(Date.now() / 1000 - process.uptime()));
    const cpu = process.cpuUsage();
    o.family('process_cpu_seconds_total', 'counter', 'Total user and system CPU time spent in seconds');
    o.sample('process_cpu_seconds_total', (cpu.user + cpu.system) / 1e6);
    let fds = NaN;
    try { fds = readdirSync('/proc/self/fd').length; } catch { /* not Linux */ }
    o.family('process_open_fds', 'gauge', 'Number of open file descriptors');
    o.sample('process_open_fds', fds);
    let maxFds = NaN;
    try {
      const m = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
      if (m) maxFds = Number(m[1]);
    } catch { /* not Linux */ }
    o.family('process_max_fds', 'gauge', 'Maximum number of open file descriptors');
    o.sample('process_max_fds', maxFds);
    o.family('nodejs_heap_size_used_bytes', 'gauge', 'V8 heap in use, in bytes');
    o.sample('nodejs_heap_size_used_bytes', mem.heapUsed);

    o.family('nodejs_eventloop_lag_seconds', 'gauge', 'Event loop delay over the last scrape interval: mean, p50, p99 and max');
    const s = (ns: number) => ns / 1e9;
    o.sample('nodejs_eventloop_lag_seconds', s(this.loop.mean), { quantile: 'mean' });
    o.sample('nodejs_eventloop_lag_seconds', s(this.loop.percentile(50)), { quantile: '0.5' });
    o.sample('nodejs_eventloop_lag_seconds', s(this.loop.percentile(99)), { quantile: '0.99' });
    o.sample('nodejs_eventloop_lag_seconds', s(this.loop.max), { quantile: 'max' });
    this.loop.reset();
    return o.text();
  }
}

/** Serves GET /metrics on host:port; everything else is 404. Resolves once listening. */
export async function serveMetrics(d: MetricsDeps, addr: string, log: Logger): Promise<{ server: http.Server; metrics: Metrics }> {
  const metrics = new Metrics(d);
  const i = addr.lastIndexOf(':');
  const host = addr.slice(0, i).replace(/^\[|\]$/g, '') || '0.0.0.0';
  const port = Number(addr.slice(i + 1));
  const server = http.createServer((req, res) => {
    const url = (req.url ?? '/').split('?')[0];
    if (url !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end('404 page not found\n');
      return;
    }
    let body: string;
    try {
      body = metrics.render();
    } catch (e) {
      log.error({ err: e }, 'metrics');
      res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end(`${(e as Error).message}\n`);
      return;
    }
    res.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8', 'Content-Length': Buffer.byteLength(body) });
    res.end(req.method === 'HEAD' ? undefined : body);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  log.info({ addr }, 'metrics listening');
  return { server, metrics };
}
