// The pure parts of docker build: the Dockerfile parser, variable substitution, metadata instructions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDockerfile } from '../../daemon/build/dockerfile';
import { processWord, processWords } from '../../daemon/build/shell';
import { applyMetadata, goDuration, type MetaContext } from '../../daemon/build/metadata';

const env = (vars: Record<string, string>) => (n: string) => vars[n];

test('parser: directives, continuations, comments, flags, JSON form', () => {
  const df = parseDockerfile([
    '# escape=`',
    '# a comment',
    'FROM busybox AS base',
    'RUN echo a `',
    '# dropped comment',
    '',
    '  b',
    'copy --from=base --chown=1:2 /a /b',
    'CMD ["sh", "-c", "x"]',
    'CMD [not json',
  ].join('\n'));
  assert.equal(df.escape, '`');
  assert.deepEqual(df.instructions.map((i) => i.keyword), ['FROM', 'RUN', 'COPY', 'CMD', 'CMD']);
  assert.equal(df.instructions[1].original, 'RUN echo a   b');
  assert.deepEqual(df.instructions[2].flags, [{ name: 'from', value: 'base' }, { name: 'chown', value: '1:2' }]);
  assert.equal(df.instructions[2].args, '/a /b');
  assert.deepEqual(df.instructions[3].json, ['sh', '-c', 'x']);
  assert.equal(df.instructions[4].json, undefined);
  assert.throws(() => parseDockerfile('FROM x\nBOGUS y\n'), /unknown instruction: BOGUS/);
  // A directive after the first instruction is a comment.
  assert.equal(parseDockerfile('FROM x\n# escape=`\nRUN a \\\n b\n').instructions[1].original, 'RUN a  b');
});

test('substitution: $VAR, ${VAR}, :- and :+, quotes, escapes, word splitting', () => {
  const e = env({ A: 'one', B: 'two words', EMPTY: '' });
  assert.equal(processWord('$A-${A}', e), 'one-one');
  assert.equal(processWord('${NOPE:-dflt} ${A:-dflt} ${EMPTY:-e} ${EMPTY-e}', e), 'dflt one e ');
  assert.equal(processWord('${A:+set} ${NOPE:+set}|', e), 'set |');
  assert.equal(processWord("'$A' \"$A\" \\$A", e), '$A one $A');
  assert.equal(processWord('${NOPE:-${A}x}', e), 'onex');
  assert.deepEqual(processWords('x $B "$B" y', e), ['x', 'two', 'words', 'two words', 'y']);
  assert.equal(processWord('a`$A', e, '`'), 'a$A');
});

test('metadata: history comments as Docker writes them', () => {
  const c: MetaContext = { config: { Env: ['PATH=/bin'] }, env: env({ V: '1' }), escape: '\\', cmdSet: false };
  const one = (line: string) => applyMetadata(parseDockerfile(line).instructions[0], c);
  assert.equal(one('ENV A=$V B="x y"'), 'ENV A=1 B=x y');
  assert.deepEqual(c.config.Env, ['PATH=/bin', 'A=1', 'B=x y']);
  assert.equal(one('ENV C the rest'), 'ENV C=the rest');
  assert.equal(one('LABEL k=v'), 'LABEL k=v');
  assert.equal(one('CMD ["sh"]'), 'CMD ["sh"]');
  assert.equal(one('CMD echo hi'), 'CMD ["/bin/sh" "-c" "echo hi"]');
  assert.equal(one('EXPOSE 80 53/udp'), 'EXPOSE 53/udp 80/tcp');
  assert.equal(one('VOLUME /data /logs'), 'VOLUME [/data /logs]');
  assert.equal(one('ENTRYPOINT ["tini"]'), 'ENTRYPOINT ["tini"]');
  assert.deepEqual(c.config.Cmd, ['/bin/sh', '-c', 'echo hi'], 'a CMD of this stage survives ENTRYPOINT');
  assert.equal(one('HEALTHCHECK --interval=5s --retries=3 CMD true'), 'HEALTHCHECK &{["CMD-SHELL" "true"] "5s" "0s" "0s" \'\\x03\'}');
  assert.equal(one('STOPSIGNAL SIGTERM'), 'STOPSIGNAL SIGTERM');
  assert.throws(() => one('SHELL /bin/bash'), /JSON form/);
  assert.equal(goDuration(90e9), '1m30s');
});
