// `-c/--change` of docker import and docker commit: Dockerfile instructions applied to an image config.
// Docker accepts CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, USER, VOLUME, WORKDIR and STOPSIGNAL here
// (not RUN, COPY, …), with the Dockerfile's JSON ("exec") and shell forms.
/* eslint-disable @typescript-eslint/no-explicit-any */
import { invalid } from '../errors/errors';

export const CHANGE_INSTRUCTIONS = ['CMD', 'ENTRYPOINT', 'ENV', 'EXPOSE', 'LABEL', 'ONBUILD', 'USER', 'VOLUME', 'WORKDIR', 'STOPSIGNAL'];

/** A JSON array of strings, or undefined when `s` is not one (then the shell form applies). */
function jsonArray(s: string): string[] | undefined {
  const t = s.trim();
  if (!t.startsWith('[')) return undefined;
  try {
    const v = JSON.parse(t);
    if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v;
  } catch { /* not JSON */ }
  return undefined;
}

/** Splits words the way the Dockerfile parser does for ENV/LABEL: whitespace separates, quotes group, a
 *  backslash escapes the next character (inside single quotes it is literal). */
export function splitWords(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  let inWord = false;
  let quote: string | undefined;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (quote) {
      if (c === quote) quote = undefined;
      else if (c === '\\' && quote === '"' && i + 1 < s.length) cur += s[++i];
      else cur += c;
      continue;
    }
    if (c === '"' || c === "'") {
      quote = c;
      inWord = true;
    } else if (c === '\\' && i + 1 < s.length) {
      cur += s[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) out.push(cur);
      cur = '';
      inWord = false;
    } else {
      cur += c;
      inWord = true;
    }
  }
  if (quote) throw invalid(`unterminated quote in ${JSON.stringify(s)}`);
  if (inWord) out.push(cur);
  return out;
}

/** `k=v k2="v 2"`, or the old one-pair form `k v w` (= "v w"). */
function keyValues(instr: string, rest: string): [string, string][] {
  const words = splitWords(rest);
  if (words.length === 0) throw invalid(`${instr} requires at least one argument`);
  if (!words[0].includes('=')) {
    const m = /^\s*(\S+)\s+([\s\S]*)$/.exec(rest);
    if (!m) throw invalid(`${instr} requires at least two arguments`);
    return [[m[1], splitWords(m[2]).join(' ')]];
  }
  return words.map((w) => {
    const i = w.indexOf('=');
    if (i <= 0) throw invalid(`${instr} names can not be blank`);
    return [w.slice(0, i), w.slice(i + 1)];
  });
}

/** Applies `changes` (each one instruction line) to a container config (Docker's Config shape); returns the
 *  config (the same object, changed). */
export function applyChanges(config: any, changes: string[]): any {
  for (const raw of changes) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^(\S+)\s*([\s\S]*)$/.exec(line)!;
    const instr = m[1].toUpperCase();
    const rest = m[2].trim();
    if (!CHANGE_INSTRUCTIONS.includes(instr)) throw invalid(`${m[1]} is not a valid change command`);
    switch (instr) {
      case 'CMD':
      case 'ENTRYPOINT': {
        const arr = jsonArray(rest);
        const v = arr ?? (rest === '' ? [] : ['/bin/sh', '-c', rest]);
        if (instr === 'CMD') config.Cmd = v;
        else {
          config.Entrypoint = v;
          // As in a Dockerfile, a new ENTRYPOINT drops an inherited CMD.
          if (!changes.some((c) => /^\s*cmd\b/i.test(c))) config.Cmd = null;
        }
        if (!arr && rest !== '') config.ArgsEscaped = undefined;
        break;
      }
      case 'ENV': {
        const env: string[] = Array.isArray(config.Env) ? [...config.Env] : [];
        for (const [k, v] of keyValues(instr, rest)) {
          const i = env.findIndex((e) => e === k || e.startsWith(`${k}=`));
          if (i >= 0) env[i] = `${k}=${v}`;
          else env.push(`${k}=${v}`);
        }
        config.Env = env;
        break;
      }
      case 'LABEL': {
        const labels = { ...(config.Labels ?? {}) };
        for (const [k, v] of keyValues(instr, rest)) labels[k] = v;
        config.Labels = labels;
        break;
      }
      case 'EXPOSE': {
        const ports = { ...(config.ExposedPorts ?? {}) };
        const words = splitWords(rest);
        if (words.length === 0) throw invalid('EXPOSE requires at least one argument');
        for (const w of words) {
          const pm = /^(\d+)(?:-(\d+))?(?:\/(tcp|udp|sctp))?$/i.exec(w);
          if (!pm) throw invalid(`invalid containerPort: ${w}`);
          const proto = (pm[3] ?? 'tcp').toLowerCase();
          const lo = Number(pm[1]);
          const hi = pm[2] ? Number(pm[2]) : lo;
          if (lo < 1 || hi > 65535 || hi < lo) throw invalid(`invalid containerPort: ${w}`);
          for (let p = lo; p <= hi; p++) ports[`${p}/${proto}`] = {};
        }
        config.ExposedPorts = ports;
        break;
      }
      case 'VOLUME': {
        const vols = { ...(config.Volumes ?? {}) };
        const list = jsonArray(rest) ?? splitWords(rest);
        if (list.length === 0) throw invalid('VOLUME requires at least one argument');
        for (const v of list) {
          if (v.trim() === '') throw invalid('VOLUME specified can not be an empty string');
          vols[v] = {};
        }
        config.Volumes = vols;
        break;
      }
      case 'USER':
        if (rest === '') throw invalid('USER requires exactly one argument');
        config.User = rest;
        break;
      case 'WORKDIR': {
        if (rest === '') throw invalid('WORKDIR requires exactly one argument');
        const cur: string = config.WorkingDir || '/';
        const joined = rest.startsWith('/') ? rest : `${cur.replace(/\/$/, '')}/${rest}`;
        config.WorkingDir = joined;
        break;
      }
      case 'STOPSIGNAL':
        if (rest === '') throw invalid('STOPSIGNAL requires exactly one argument');
        config.StopSignal = rest;
        break;
      case 'ONBUILD': {
        const sub = /^(\S+)/.exec(rest)?.[1]?.toUpperCase();
        if (!sub) throw invalid('ONBUILD requires at least one argument');
        if (sub === 'ONBUILD') throw invalid("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
        if (sub === 'FROM' || sub === 'MAINTAINER') throw invalid(`${sub} isn't allowed as an ONBUILD trigger`);
        config.OnBuild = [...(config.OnBuild ?? []), rest];
        break;
      }
    }
  }
  for (const k of Object.keys(config)) if (config[k] === undefined) delete config[k];
  return config;
}
