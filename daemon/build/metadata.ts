// The instructions that only change the image config (ENV, LABEL, CMD, ENTRYPOINT, EXPOSE, VOLUME, USER,
// STOPSIGNAL, HEALTHCHECK, SHELL, ONBUILD, MAINTAINER): each one changes the stage's config and returns
// the comment Docker's classic builder records for it in history (`/bin/sh -c #(nop)  CMD ["sh"]`).
// Comments print string lists the way Go's %q prints a []string (`["a" "b"]`), as Docker's do.
/* eslint-disable @typescript-eslint/no-explicit-any */
import { invalid } from '../errors/errors';
import { parseSignal } from '../lib/signals';
import { flagsOf, parseInstruction, type Instruction } from './dockerfile';
import { processWord, processWords, type Lookup } from './shell';

/** What a metadata instruction needs from its stage. */
export interface MetaContext {
  config: any;
  env: Lookup;
  escape: string;
  /** Whether a CMD was given in this stage (an ENTRYPOINT then keeps it). */
  cmdSet: boolean;
  /** The image's author (MAINTAINER). */
  author?: string;
}

/** Go's %q of a []string: `["a" "b"]`. */
export function goQuoteList(l: string[] | null | undefined): string {
  return `[${(l ?? []).map((s) => JSON.stringify(s)).join(' ')}]`;
}

/** Go's time.Duration.String() for nanoseconds (`1m30s`, `500ms`, `0s`). */
export function goDuration(ns: number): string {
  if (ns === 0) return '0s';
  if (ns < 1e9) {
    if (ns < 1e3) return `${ns}ns`;
    if (ns < 1e6) return `${trim(ns / 1e3)}µs`;
    return `${trim(ns / 1e6)}ms`;
  }
  let s = ns / 1e9;
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  return `${h ? `${h}h` : ''}${h || m ? `${m}m` : ''}${trim(s)}s`;
}

function trim(n: number): string {
  return String(Number(n.toFixed(9)));
}

/** A Go duration (`30s`, `1m30s`, `500ms`) in nanoseconds. */
export function parseGoDuration(s: string, flag: string): number {
  const units: Record<string, number> = { ns: 1, us: 1e3, µs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };
  const re = /(\d+(?:\.\d*)?)(ns|us|µs|ms|s|m|h)/y;
  let total = 0;
  let i = 0;
  if (s === '0') return 0;
  while (i < s.length) {
    re.lastIndex = i;
    const m = re.exec(s);
    if (!m) throw invalid(`time: invalid duration "${s}" for --${flag}`);
    total += Number(m[1]) * units[m[2]];
    i = re.lastIndex;
  }
  if (i === 0) throw invalid(`time: invalid duration "${s}" for --${flag}`);
  return Math.round(total);
}

/** `key=value` words (ENV, LABEL, ARG), quotes kept for processWord; the escape character protects blanks. */
export function splitRaw(s: string, escape: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quote = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (quote) {
      if (c === escape && quote === '"' && i + 1 < s.length) {
        cur += c + s[++i];
        continue;
      }
      if (c === quote) quote = '';
      cur += c;
    } else if (c === escape && i + 1 < s.length) {
      cur += c + s[++i];
    } else if (c === '"' || c === "'") {
      quote = c;
      cur += c;
    } else if (/\s/.test(c)) {
      if (cur) out.push(cur);
      cur = '';
    } else cur += c;
  }
  if (quote) throw invalid(`unexpected end of statement while looking for matching ${quote === '"' ? 'double' : 'single'}-quote`);
  if (cur) out.push(cur);
  return out;
}

/** ENV/LABEL pairs: `k=v k2="v 2"`, or the old `k v with blanks` form (one pair). Values are expanded. */
export function keyValues(ins: Instruction, c: MetaContext): [string, string][] {
  const words = splitRaw(ins.args, c.escape);
  if (words.length === 0) throw invalid(`${ins.keyword} requires at least one argument`);
  if (!words[0].includes('=')) {
    if (ins.keyword !== 'ENV' && ins.keyword !== 'LABEL') throw invalid(`${ins.keyword} names can not be blank`);
    const m = /^(\S+)\s+([\s\S]*)$/.exec(ins.args);
    if (!m) throw invalid(`${ins.keyword} must have two arguments`);
    return [[m[1], processWord(m[2], c.env, c.escape)]];
  }
  return words.map((w) => {
    const i = w.indexOf('=');
    if (i < 0) throw invalid(`Syntax error - can't find = in "${w}". Must be of the form: name=value`);
    const key = processWord(w.slice(0, i), c.env, c.escape);
    if (!key) throw invalid(`${ins.keyword} names can not be blank`);
    return [key, processWord(w.slice(i + 1), c.env, c.escape)];
  });
}

/** The command of CMD/ENTRYPOINT/RUN: the JSON form as given, the shell form through the stage's shell. */
export function commandOf(ins: Instruction, config: any): string[] {
  if (ins.json) return ins.json;
  return [...shellOf(config), ins.args];
}

export function shellOf(config: any): string[] {
  return Array.isArray(config.Shell) && config.Shell.length ? config.Shell : ['/bin/sh', '-c'];
}

/** EXPOSE's ports as Docker keys them (`80/tcp`), ranges expanded. */
function portsOf(words: string[]): string[] {
  const out: string[] = [];
  for (const w of words) {
    const m = /^(\d+)(?:-(\d+))?(?:\/(tcp|udp|sctp))?$/i.exec(w);
    if (!m) throw invalid(`Invalid containerPort: ${w}`);
    const lo = Number(m[1]);
    const hi = m[2] ? Number(m[2]) : lo;
    if (hi < lo || hi > 65535) throw invalid(`Invalid range specified for the Port: ${w}`);
    for (let p = lo; p <= hi; p++) out.push(`${p}/${(m[3] ?? 'tcp').toLowerCase()}`);
  }
  return out;
}

function healthcheck(ins: Instruction): any {
  const f = flagsOf(ins, ['interval', 'timeout', 'start-period', 'start-interval', 'retries']);
  const m = /^(\S+)\s*([\s\S]*)$/.exec(ins.args);
  if (!m) throw invalid('HEALTHCHECK requires an argument');
  const kind = m[1].toUpperCase();
  if (kind === 'NONE') {
    if (m[2].trim()) throw invalid('HEALTHCHECK NONE takes no arguments');
    return { Test: ['NONE'] };
  }
  if (kind !== 'CMD') throw invalid(`Unknown type "${kind}" in HEALTHCHECK (try CMD)`);
  const rest = parseInstruction(`CMD ${m[2]}`, ins.line);
  const hc: any = { Test: rest.json ? ['CMD', ...rest.json] : ['CMD-SHELL', rest.args] };
  const dur = (name: string, key: string) => {
    const v = f.get(name);
    if (v !== undefined && v !== '') {
      const ns = parseGoDuration(v, name);
      if (ns !== 0 && ns < 1e6) throw invalid(`Interval "${name}" cannot be less than 1ms`);
      hc[key] = ns;
    }
  };
  dur('interval', 'Interval');
  dur('timeout', 'Timeout');
  dur('start-period', 'StartPeriod');
  const retries = f.get('retries');
  if (retries !== undefined && retries !== '') {
    const n = Number(retries);
    if (!Number.isInteger(n) || n < 0) throw invalid(`--retries cannot be negative (${retries})`);
    hc.Retries = n;
  }
  return hc;
}

/** Go's %q of a HealthConfig pointer, as Docker's HEALTHCHECK history shows it. */
function healthComment(hc: any): string {
  const r = hc.Retries ?? 0;
  const retries = `'\\x${r.toString(16).padStart(2, '0')}'`;
  return `HEALTHCHECK &{${goQuoteList(hc.Test)} "${goDuration(hc.Interval ?? 0)}" "${goDuration(hc.Timeout ?? 0)}" "${goDuration(hc.StartPeriod ?? 0)}" ${retries}}`;
}

/** Applies one metadata instruction to `c.config`; returns its history comment. */
export function applyMetadata(ins: Instruction, c: MetaContext): string {
  const cfg = c.config;
  switch (ins.keyword) {
    case 'ENV': {
      const pairs = keyValues(ins, c);
      const env: string[] = [...(cfg.Env ?? [])];
      for (const [k, v] of pairs) {
        const i = env.findIndex((e) => e.split('=', 1)[0] === k);
        if (i >= 0) env[i] = `${k}=${v}`;
        else env.push(`${k}=${v}`);
      }
      // Values were expanded before any was set: `ENV a=2 b=$a` gives b the old a, as in Docker.
      cfg.Env = env;
      return `ENV ${pairs.map(([k, v]) => `${k}=${v}`).join(' ')}`;
    }
    case 'LABEL': {
      const pairs = keyValues(ins, c);
      cfg.Labels = { ...(cfg.Labels ?? {}) };
      for (const [k, v] of pairs) cfg.Labels[k] = v;
      return `LABEL ${pairs.map(([k, v]) => `${k}=${v}`).join(' ')}`;
    }
    case 'MAINTAINER':
      c.author = ins.args;
      return `MAINTAINER ${ins.args}`;
    case 'CMD':
      cfg.Cmd = commandOf(ins, cfg);
      c.cmdSet = true;
      return `CMD ${goQuoteList(cfg.Cmd)}`;
    case 'ENTRYPOINT':
      cfg.Entrypoint = ins.json ? (ins.json.length ? ins.json : null) : ins.args ? commandOf(ins, cfg) : null;
      // An ENTRYPOINT drops the base image's CMD, unless this stage set one.
      if (!c.cmdSet) cfg.Cmd = null;
      return `ENTRYPOINT ${goQuoteList(cfg.Entrypoint)}`;
    case 'EXPOSE': {
      const ports = portsOf(processWords(ins.args, c.env, c.escape));
      if (ports.length === 0) throw invalid('EXPOSE requires at least one argument');
      cfg.ExposedPorts = { ...(cfg.ExposedPorts ?? {}) };
      for (const p of ports) cfg.ExposedPorts[p] = {};
      return `EXPOSE ${[...new Set(ports)].sort().join(' ')}`;
    }
    case 'VOLUME': {
      const vols = ins.json ?? processWords(ins.args, c.env, c.escape);
      if (vols.length === 0) throw invalid('VOLUME requires at least one argument');
      cfg.Volumes = { ...(cfg.Volumes ?? {}) };
      for (const v of vols) {
        if (!v.trim()) throw invalid('VOLUME specified can not be an empty string');
        cfg.Volumes[v] = {};
      }
      return `VOLUME [${vols.join(' ')}]`;
    }
    case 'USER': {
      const user = processWord(ins.args, c.env, c.escape);
      if (!user) throw invalid('USER requires exactly one argument');
      cfg.User = user;
      return `USER ${user}`;
    }
    case 'STOPSIGNAL': {
      const sig = processWord(ins.args, c.env, c.escape);
      parseSignal(sig);
      cfg.StopSignal = sig;
      return `STOPSIGNAL ${sig}`;
    }
    case 'HEALTHCHECK':
      cfg.Healthcheck = healthcheck(ins);
      return healthComment(cfg.Healthcheck);
    case 'SHELL':
      if (!ins.json || ins.json.length === 0) throw invalid('SHELL requires the arguments to be in JSON form');
      cfg.Shell = ins.json;
      return `SHELL ${goQuoteList(ins.json)}`;
    case 'ONBUILD': {
      const trigger = parseInstruction(ins.args, ins.line);
      if (['ONBUILD', 'FROM', 'MAINTAINER'].includes(trigger.keyword)) {
        throw invalid(`${trigger.keyword} isn't allowed as an ONBUILD trigger`);
      }
      cfg.OnBuild = [...(cfg.OnBuild ?? []), ins.args];
      return `ONBUILD ${ins.args}`;
    }
    default:
      throw invalid(`unknown metadata instruction ${ins.keyword}`);
  }
}
