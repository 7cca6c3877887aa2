// GET /events: past events from the ring (since/until) and then live ones, as newline-separated JSON.
// timeNano is larger than 2^53, so it is written as a preformatted integer, never through a JS number.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Daemon } from '../../../daemon';
import type { BerthEvent } from '../../../events/bus';
import { parseFilters, qstr, type Query, type Filters } from '../../../lib/query';
import { invalid } from '../../../errors/errors';
import { commonHeaders } from '../../plugins/dialect';

function parseTime(v: string | undefined): bigint | undefined {
  if (!v) return undefined;
  if (!/^\d+(\.\d+)?$/.test(v)) throw invalid(`invalid timestamp: ${v}`);
  const [s, f = ''] = v.split('.');
  return BigInt(s) * 1_000_000_000n + BigInt((f + '000000000').slice(0, 9));
}

export function serialiseEvent(ev: BerthEvent): string {
  const legacy = ev.Type === 'container' || ev.Type === 'image'
    ? `"status":${JSON.stringify(ev.Action)},"id":${JSON.stringify(ev.Actor.ID)},${ev.Actor.Attributes.image ? `"from":${JSON.stringify(ev.Actor.Attributes.image)},` : ''}`
    : '';
  return `{${legacy}"Type":${JSON.stringify(ev.Type)},"Action":${JSON.stringify(ev.Action)},"Actor":${JSON.stringify(ev.Actor)},"scope":"local","time":${ev.time},"timeNano":${ev.timeNano.toString()}}\n`;
}

function matches(ev: BerthEvent, f: Filters): boolean {
  for (const [k, vals] of f) {
    if (!vals.length) continue;
    const a = ev.Actor.Attributes;
    const ok = vals.some((v) => {
      switch (k) {
        case 'type': return ev.Type === v;
        case 'event': return ev.Action === v || ev.Action.startsWith(`${v}:`);
        case 'container': return ev.Type === 'container' && (ev.Actor.ID === v || ev.Actor.ID.startsWith(v) || a.name === v);
        case 'image': return a.image === v || ev.Actor.ID === v || a.name === v;
        case 'label': {
          const i = v.indexOf('=');
          return i < 0 ? v in a : a[v.slice(0, i)] === v.slice(i + 1);
        }
        default: return true;
      }
    });
    if (!ok) return false;
  }
  return true;
}

export function eventRoutes(app: FastifyInstance, d: Daemon): void {
  app.get('/events', async (req: FastifyRequest<{ Querystring: Query }>, reply) => {
    const since = parseTime(qstr(req.query, 'since'));
    const until = parseTime(qstr(req.query, 'until'));
    const f = parseFilters(req.query);
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { ...commonHeaders(), 'Content-Type': 'application/json' });
    res.flushHeaders();
    const nowNs = BigInt(Date.now()) * 1_000_000n;
    if (since !== undefined) {
      for (const ev of d.events.recent()) {
        if (ev.timeNano < since || (until !== undefined && ev.timeNano > until)) continue;
        if (matches(ev, f)) res.write(serialiseEvent(ev));
      }
    }
    if (until !== undefined && until <= nowNs) {
      res.end();
      return;
    }
    await new Promise<void>((resolve) => {
      const off = d.events.subscribe((ev) => {
        if (until !== undefined && ev.timeNano > until) return;
        if (matches(ev, f)) res.write(serialiseEvent(ev));
      });
      const timer = until !== undefined ? setTimeout(() => res.end(), Number((until - nowNs) / 1_000_000n)) : undefined;
      res.on('close', () => {
        off();
        if (timer) clearTimeout(timer);
        resolve();
      });
    });
  });
}
