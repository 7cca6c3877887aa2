// The Dockerfile parser: text → instructions, before any variable is expanded (the builder expands them
// step by step, since ARG and ENV change what a later line means).
//
// The rules, as Docker's classic builder applies them:
//   - parser directives (`# escape=\``, `# syntax=…`) only in the comment lines at the very top, before any
//     blank line, other comment or instruction; unknown directives there are plain comments;
//   - a line ending in the escape character (trailing blanks allowed) continues on the next line; the lines
//     are joined without the escape character; comment lines and blank lines inside a continuation vanish;
//   - `#` starts a comment only as the first non-blank character of a line;
//   - an instruction is a keyword (any case) and its arguments; leading `--name=value` words are flags;
//   - arguments that parse as a JSON array of strings are the exec (JSON) form, anything else the shell form.
import { invalid } from '../errors/errors';

export interface Instruction {
  /** Upper-case keyword: FROM, RUN, COPY, … */
  keyword: string;
  /** The logical line as written (continuations joined), what `Step N/M :` prints. */
  original: string;
  /** Leading `--name=value` (or `--name`, value '') flags, in order. */
  flags: { name: string; value: string }[];
  /** The arguments after the flags, unexpanded. */
  args: string;
  /** The arguments as a JSON array, when they are one. */
  json?: string[];
  /** 1-based line of the instruction's first line, for error messages. */
  line: number;
}

export interface Dockerfile {
  escape: string;
  instructions: Instruction[];
}

export const KEYWORDS = new Set([
  'FROM', 'RUN', 'CMD', 'LABEL', 'MAINTAINER', 'EXPOSE', 'ENV', 'ADD', 'COPY', 'ENTRYPOINT', 'VOLUME', 'USER',
  'WORKDIR', 'ARG', 'ONBUILD', 'STOPSIGNAL', 'HEALTHCHECK', 'SHELL',
]);

const DIRECTIVE_RE = /^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$/;

export function parseDockerfile(text: string): Dockerfile {
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  let escape = '\\';
  let i = 0;
  // Directives: only at the top, each at most once.
  const seen = new Set<string>();
  for (; i < lines.length; i++) {
    const m = DIRECTIVE_RE.exec(lines[i]);
    if (!m) break;
    const key = m[1].toLowerCase();
    if (key !== 'escape' && key !== 'syntax') break;
    if (seen.has(key)) throw invalid(`only one ${key} parser directive can be used`);
    seen.add(key);
    if (key === 'escape') {
      if (m[2] !== '\\' && m[2] !== '`') throw invalid(`invalid ESCAPE '${m[2]}'. Must be \` or \\`);
      escape = m[2];
    }
  }
  const continues = new RegExp(`${escape === '\\' ? '\\\\' : '`'}[ \\t]*$`);
  const instructions: Instruction[] = [];
  while (i < lines.length) {
    const first = lines[i];
    const startLine = i + 1;
    i++;
    if (isBlankOrComment(first)) continue;
    let logical = first.trim();
    while (continues.test(logical)) {
      logical = logical.replace(continues, '');
      // Blank and comment lines inside a continuation are dropped.
      while (i < lines.length && isBlankOrComment(lines[i])) i++;
      if (i >= lines.length) break;
      logical += lines[i].trimEnd();
      i++;
    }
    instructions.push(parseInstruction(logical.trim(), startLine));
  }
  return { escape, instructions };
}

function isBlankOrComment(l: string): boolean {
  const t = l.trim();
  return t === '' || t.startsWith('#');
}

/** One logical line → an instruction (keyword checked, flags split off, the JSON form recognised). */
export function parseInstruction(line: string, lineNo: number): Instruction {
  const m = /^(\S+)\s*([\s\S]*)$/.exec(line);
  if (!m) throw invalid(`dockerfile parse error line ${lineNo}: empty instruction`);
  const keyword = m[1].toUpperCase();
  if (!KEYWORDS.has(keyword)) throw invalid(`dockerfile parse error line ${lineNo}: unknown instruction: ${m[1].toUpperCase()}`);
  let rest = m[2];
  const flags: { name: string; value: string }[] = [];
  // ONBUILD's argument is another instruction: its flags belong to that one.
  while (keyword !== 'ONBUILD') {
    const f = /^--([a-zA-Z][a-zA-Z0-9-]*)(?:=(\S*))?(?:\s+|$)/.exec(rest);
    if (!f) break;
    flags.push({ name: f[1], value: f[2] ?? '' });
    rest = rest.slice(f[0].length);
  }
  const args = rest.trim();
  const ins: Instruction = { keyword, original: line, flags, args, line: lineNo };
  if (args.startsWith('[')) {
    try {
      const v = JSON.parse(args);
      if (Array.isArray(v) && v.every((x) => typeof x === 'string')) ins.json = v;
    } catch {
      // Not JSON: the shell form.
    }
  }
  return ins;
}

/** The instruction's flags by name; refuses flags it does not know (`allowed`). */
export function flagsOf(ins: Instruction, allowed: string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const f of ins.flags) {
    if (!allowed.includes(f.name)) throw invalid(`dockerfile parse error line ${ins.line}: Unknown flag: ${f.name}`);
    out.set(f.name, f.value);
  }
  return out;
}
