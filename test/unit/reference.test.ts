// Image references: normalisation, the familiar form clients are shown, and Docker's errors for bad ones.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  parseNormalizedNamed, parseAnyReference, fullString, familiarString, familiarName, tagNameOnly, withTag, familiarMatch,
} from '../../daemon/images/reference';
import { BerthError } from '../../daemon/errors/errors';

const HEX = 'a'.repeat(64);
const norm = (s: string) => fullString(tagNameOnly(parseNormalizedNamed(s)));
const fam = (s: string) => familiarString(tagNameOnly(parseNormalizedNamed(s)));

function rejects(s: string, re: RegExp): void {
  assert.throws(() => parseNormalizedNamed(s), (e: unknown) => {
    assert.ok(e instanceof BerthError, `${s}: not a BerthError`);
    assert.equal(e.status, 400, s);
    assert.match(e.message, re, s);
    return true;
  }, s);
}

test('names are normalised to domain/path:tag', () => {
  assert.equal(norm('busybox'), 'docker.io/library/busybox:latest');
  assert.equal(norm('busybox:1.36'), 'docker.io/library/busybox:1.36');
  assert.equal(norm('library/busybox'), 'docker.io/library/busybox:latest');
  assert.equal(norm('docker.io/library/busybox:latest'), 'docker.io/library/busybox:latest');
  assert.equal(norm('index.docker.io/library/busybox'), 'docker.io/library/busybox:latest');
  assert.equal(norm('someone/tool:2'), 'docker.io/someone/tool:2');
  assert.equal(norm('127.0.0.1:5000/x:1'), '127.0.0.1:5000/x:1');
  assert.equal(norm('localhost:5000/doc/tag:v3'), 'localhost:5000/doc/tag:v3');
  assert.equal(norm('localhost/x'), 'localhost/x:latest');
  assert.equal(norm('registry.example.com/a/b/c'), 'registry.example.com/a/b/c:latest');
  assert.equal(norm('[::1]:5000/x'), '[::1]:5000/x:latest');
  assert.equal(norm('a__b-c/d.e_f'), 'docker.io/a__b-c/d.e_f:latest');
});

test('digest references keep their digest and get no tag', () => {
  const r = parseNormalizedNamed(`busybox@sha256:${HEX}`);
  assert.equal(r.digest, `sha256:${HEX}`);
  assert.equal(r.tag, undefined);
  assert.equal(fullString(tagNameOnly(r)), `docker.io/library/busybox@sha256:${HEX}`);
  assert.equal(familiarString(r), `busybox@sha256:${HEX}`);
  const both = parseNormalizedNamed(`127.0.0.1:5000/x:1@sha256:${HEX}`);
  assert.equal(both.tag, '1');
  assert.equal(both.digest, `sha256:${HEX}`);
});

test('the familiar form drops docker.io and library/', () => {
  assert.equal(fam('docker.io/library/busybox:latest'), 'busybox:latest');
  assert.equal(fam('busybox'), 'busybox:latest');
  assert.equal(fam('docker.io/someone/tool:2'), 'someone/tool:2');
  assert.equal(fam('docker.io/library/a/b'), 'library/a/b:latest');
  assert.equal(fam('127.0.0.1:5000/x:1'), '127.0.0.1:5000/x:1');
  assert.equal(fam('localhost:5000/doc/tag:v3'), 'localhost:5000/doc/tag:v3');
  assert.equal(familiarName(parseNormalizedNamed('docker.io/library/busybox')), 'busybox');
});

test('bad references get Docker\'s messages as 400', () => {
  rejects('Busybox', /^invalid reference format: repository name \(library\/Busybox\) must be lowercase$/);
  rejects('busybox:bad tag', /^invalid reference format$/);
  rejects('a b', /^invalid reference format$/);
  rejects('', /^invalid reference format$/);
  rejects('busybox:', /^invalid reference format$/);
  rejects(':tag', /^invalid reference format$/);
  rejects('-leading', /^invalid reference format$/);
  rejects('x/../y', /^invalid reference format$/);
  rejects(`busybox:${'t'.repeat(129)}`, /^invalid reference format$/);
  rejects(`busybox@sha256:${'a'.repeat(63)}`, /invalid reference format|digest/);
  rejects(`busybox@sha256:${'a'.repeat(32)}`, /invalid checksum digest length/);
  rejects(`busybox@md5:${'a'.repeat(32)}`, /unsupported digest algorithm/);
  rejects(HEX, /cannot specify 64-byte hexadecimal strings/);
  // A first component with a dot is a registry host, where underscores are not allowed.
  rejects('a__b.c/e', /^invalid reference format$/);
  rejects(`x/${'a'.repeat(300)}`, /must not be more than 255 characters/);
});

test('ids and names are told apart', () => {
  assert.deepEqual(parseAnyReference(HEX), { kind: 'id', id: `sha256:${HEX}` });
  assert.deepEqual(parseAnyReference(`sha256:${HEX}`), { kind: 'id', id: `sha256:${HEX}` });
  const short = parseAnyReference('abc123');
  assert.equal(short.kind, 'named');
  // A short id prefix with the algorithm is still a (valid) name; the image service then tries it as a prefix.
  assert.equal(parseAnyReference('sha256:abc').kind, 'named');
});

test('tags are checked', () => {
  const r = parseNormalizedNamed('docker.io/library/x');
  assert.equal(fullString(withTag(r, 'v1.0_rc-1')), 'docker.io/library/x:v1.0_rc-1');
  assert.throws(() => withTag(r, 'bad tag'), /invalid tag format/);
  assert.throws(() => withTag(r, '.hidden'), /invalid tag format/);
  assert.throws(() => withTag(r, 'x'.repeat(129)), /invalid tag format/);
});

test('reference filters match the familiar string or name (Go path.Match)', () => {
  const bb = tagNameOnly(parseNormalizedNamed('busybox'));
  assert.ok(familiarMatch('busybox*', bb));
  assert.ok(familiarMatch('busybox', bb));
  assert.ok(familiarMatch('busybox:latest', bb));
  assert.ok(familiarMatch('busy?ox:*', bb));
  assert.ok(familiarMatch('[ab]usybox', bb));
  assert.ok(!familiarMatch('busybox:1', bb));
  assert.ok(!familiarMatch('*/busybox', bb));
  const reg = tagNameOnly(parseNormalizedNamed('127.0.0.1:5000/doc/x:1'));
  assert.ok(familiarMatch('127.0.0.1:5000/doc/*', reg));
  assert.ok(!familiarMatch('127.0.0.1:5000/*', reg), '* does not cross a slash');
});
