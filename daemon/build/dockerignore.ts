// .dockerignore as the classic builder reads it. The client has already left the excluded files out of the
// context, but it always sends the Dockerfile and .dockerignore (the builder needs both, and docker-py adds
// a `.dockerignore` naming a Dockerfile it brought from outside the context). After reading the Dockerfile,
// the builder removes those two from the context when the patterns exclude them, so `COPY . /dst` copies
// neither, as in Docker.
//
// The syntax is Docker's: one pattern a line, `#` lines are comments, surrounding spaces are trimmed, a
// leading `!` makes an exception (the last pattern that matches decides), paths are cleaned and a leading
// `/` dropped; `*` and `?` stop at `/`, `**` spans directories, `[...]` is a class and `\` escapes. A path
// is excluded when it or one of its parent directories matches.
import path from 'node:path';

export interface IgnorePattern {
  exception: boolean;
  re: RegExp;
  text: string;
}

/** Go's filepath.Clean for the slash-separated, relative paths of a build context. */
function clean(p: string): string {
  const c = path.posix.normalize(p).replace(/\/+$/, '');
  return c === '' ? '.' : c;
}

function toRegExp(pattern: string): RegExp {
  let re = '^';
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i];
    if (ch === '*') {
      if (pattern[i + 1] === '*') {
        i++;
        // `**/` also matches no directory at all; `**` alone anything, separators included.
        if (pattern[i + 1] === '/') {
          i++;
          re += '(?:.*/)?';
        } else {
          re += '.*';
        }
      } else {
        re += '[^/]*';
      }
    } else if (ch === '?') {
      re += '[^/]';
    } else if (ch === '\\' && i + 1 < pattern.length) {
      i++;
      re += pattern[i].replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    } else if (ch === '[') {
      const end = pattern.indexOf(']', i + 1);
      if (end < 0) {
        re += '\\[';
      } else {
        let cls = pattern.slice(i + 1, end).replace(/\\/g, '\\\\');
        if (cls.startsWith('^') || cls.startsWith('!')) cls = `^${cls.slice(1)}`;
        re += `[${cls}]`;
        i = end;
      }
    } else {
      re += ch.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    }
  }
  return new RegExp(`${re}$`);
}

/** The patterns of a .dockerignore file's text. */
export function parseDockerignore(text: string): IgnorePattern[] {
  const out: IgnorePattern[] = [];
  for (const raw of text.split(/\r?\n/)) {
    let line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    let exception = false;
    if (line.startsWith('!')) {
      exception = true;
      line = line.slice(1).trim();
      if (line === '') continue;
    }
    let p = clean(line);
    if (p.length > 1 && p.startsWith('/')) p = p.slice(1);
    out.push({ exception, re: toRegExp(p), text: p });
  }
  return out;
}

/** Whether `file` (relative to the context) or a directory above it is excluded by the patterns. */
export function isExcluded(file: string, patterns: IgnorePattern[]): boolean {
  const f = clean(file).replace(/^\/+/, '');
  const dirs = path.posix.dirname(f) === '.' ? [] : path.posix.dirname(f).split('/');
  let excluded = false;
  for (const p of patterns) {
    // Only an exception can undo a match, and only a plain pattern can make one.
    if (p.exception !== excluded) continue;
    let hit = p.re.test(f);
    for (let i = 0; !hit && i < dirs.length; i++) hit = p.re.test(dirs.slice(0, i + 1).join('/'));
    if (hit) excluded = !p.exception;
  }
  return excluded;
}
