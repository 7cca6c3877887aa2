// Variable substitution and word splitting for Dockerfile arguments, as the classic builder does them for
// ADD, COPY, ENV, EXPOSE, FROM, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR and ARG (RUN, CMD and ENTRYPOINT
// are left to the shell in the container).
//
// Supported: $VAR and ${VAR}; ${VAR:-word} (word when VAR is unset or empty), ${VAR-word} (when unset),
// ${VAR:+word} (word when VAR is set and not empty), ${VAR+word} (when set); single quotes (literal), double
// quotes (variables expanded, the escape character escapes `"`, `$` and itself), and the escape character
// (`\` or the `# escape=` directive's backtick) outside quotes, which makes the next character literal.
// An unknown variable expands to nothing.

/** Looks a variable up; undefined when it is not set. */
export type Lookup = (name: string) => string | undefined;

const NAME_START = /[A-Za-z_]/;
const NAME_CHAR = /[A-Za-z0-9_]/;

interface Piece {
  text: string;
  /** Whether the text came from an unquoted expansion (it is split on whitespace by words()). */
  splittable: boolean;
}

class Scanner {
  private i = 0;
  constructor(private readonly s: string, private readonly escape: string, private readonly env: Lookup) {}

  /** The whole input as pieces; a `{ sep }` is unquoted whitespace (a word boundary). */
  pieces(): (Piece | { sep: string })[] {
    const out: (Piece | { sep: string })[] = [];
    const lit = (t: string) => out.push({ text: t, splittable: false });
    while (this.i < this.s.length) {
      const c = this.s[this.i];
      if (c === ' ' || c === '\t' || c === '\n') {
        this.i++;
        out.push({ sep: c });
      } else if (c === this.escape) {
        this.i++;
        if (this.i < this.s.length) lit(this.s[this.i++]);
      } else if (c === "'") {
        const end = this.s.indexOf("'", this.i + 1);
        if (end < 0) throw new Error('unexpected end of statement while looking for matching single-quote');
        lit(this.s.slice(this.i + 1, end));
        this.i = end + 1;
      } else if (c === '"') {
        this.i++;
        lit(this.doubleQuoted());
      } else if (c === '$') {
        out.push({ text: this.dollar(), splittable: true });
      } else {
        lit(c);
        this.i++;
      }
    }
    return out;
  }

  private doubleQuoted(): string {
    let t = '';
    for (;;) {
      if (this.i >= this.s.length) throw new Error('unexpected end of statement while looking for matching double-quote');
      const c = this.s[this.i];
      if (c === '"') {
        this.i++;
        return t;
      }
      if (c === this.escape && this.i + 1 < this.s.length && ['"', '$', this.escape].includes(this.s[this.i + 1])) {
        t += this.s[this.i + 1];
        this.i += 2;
      } else if (c === '$') {
        t += this.dollar();
      } else {
        t += c;
        this.i++;
      }
    }
  }

  /** At a `$`: the expansion (or a literal `$` when no name follows). */
  private dollar(): string {
    this.i++;
    const c = this.s[this.i];
    if (c === '{') {
      this.i++;
      const start = this.i;
      while (this.i < this.s.length && NAME_CHAR.test(this.s[this.i])) this.i++;
      const name = this.s.slice(start, this.i);
      if (!name) throw new Error(`bad substitution: missing variable name in ${this.s}`);
      if (this.s[this.i] === '}') {
        this.i++;
        return this.env(name) ?? '';
      }
      let op = this.s[this.i] ?? '';
      if (op === ':') op += this.s[++this.i] ?? '';
      if (!['-', '+', ':-', ':+'].includes(op)) throw new Error(`unsupported modifier (${op}) in substitution`);
      this.i++;
      const word = new Scanner(this.modifierWord(), this.escape, this.env).word();
      const v = this.env(name);
      const set = v !== undefined && (op.length === 1 || v !== '');
      return op.endsWith('-') ? (set ? v! : word) : set ? word : '';
    }
    if (c !== undefined && NAME_START.test(c)) {
      const start = this.i;
      while (this.i < this.s.length && NAME_CHAR.test(this.s[this.i])) this.i++;
      return this.env(this.s.slice(start, this.i)) ?? '';
    }
    return '$';
  }

  /** The text of a `${VAR:-word}` modifier up to its closing brace (nested `${…}` included). */
  private modifierWord(): string {
    let depth = 0;
    const start = this.i;
    while (this.i < this.s.length) {
      const c = this.s[this.i];
      if (c === this.escape) this.i++;
      else if (c === '$' && this.s[this.i + 1] === '{') depth++;
      else if (c === '}') {
        if (depth === 0) {
          this.i++;
          return this.s.slice(start, this.i - 1);
        }
        depth--;
      }
      this.i++;
    }
    throw new Error(`missing '}' in ${this.s}`);
  }

  /** The input as one word: quotes removed, variables expanded, whitespace kept. */
  word(): string {
    return this.pieces().map((p) => ('sep' in p ? p.sep : p.text)).join('');
  }
}

/** One word: quotes removed and variables expanded; whitespace is kept as it is. */
export function processWord(s: string, env: Lookup, escape = '\\'): string {
  return new Scanner(s, escape, env).word();
}

/** Several words: split on unquoted whitespace (also inside unquoted expansions), quotes removed. */
export function processWords(s: string, env: Lookup, escape = '\\'): string[] {
  const words: string[] = [];
  let cur: string | undefined;
  for (const p of new Scanner(s, escape, env).pieces()) {
    if ('sep' in p) {
      if (cur !== undefined) words.push(cur);
      cur = undefined;
      continue;
    }
    if (!p.splittable) {
      cur = (cur ?? '') + p.text;
      continue;
    }
    const parts = p.text.split(/[ \t\n]+/);
    parts.forEach((part, k) => {
      if (k > 0) {
        if (cur !== undefined) words.push(cur);
        cur = undefined;
      }
      if (part !== '') cur = (cur ?? '') + part;
    });
  }
  if (cur !== undefined) words.push(cur);
  return words;
}
