// Pure parts of the Docker dialect: versions, query booleans and filters, signals, times, names.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { splitVersion, compareVersions } from '../../daemon/api/version';
import { qbool, parseFilters } from '../../daemon/lib/query';
import { parseSignal } from '../../daemon/lib/signals';
import { rfc3339Nano, rfc3339Fixed9, parseRfc3339Ns, humanDuration } from '../../daemon/lib/time';
import { NAME_RE, generateName } from '../../daemon/containers/names';
import { BerthError, toHttp } from '../../daemon/errors/errors';

test('version prefix is stripped and checked', () => {
  assert.deepEqual(splitVersion('/v1.41/containers/json?all=1'), { url: '/containers/json?all=1', version: '1.41' });
  assert.equal(splitVersion('/_ping').url, '/_ping');
  assert.equal(splitVersion('/v1.24/version').error, undefined);
  assert.match(splitVersion('/v1.11/version').error!, /too old/);
  assert.match(splitVersion('/v1.99/version').error!, /too new. Maximum supported API version is 1.52/);
  assert.ok(compareVersions('1.9', '1.10') < 0);
});

test('query booleans follow Docker (anything but "", 0, no, false, none is true)', () => {
  for (const t of ['1', 'true', 'True', 'yes', 'x']) assert.equal(qbool({ a: t }, 'a'), true, t);
  for (const f of ['', '0', 'no', 'false', 'False', 'none']) assert.equal(qbool({ a: f }, 'a'), false, f);
  assert.equal(qbool({}, 'a'), false);
});

test('filters accept the CLI map form and the docker-py list form', () => {
  assert.deepEqual(parseFilters({ filters: '{"label":{"doc=1":true}}' }).get('label'), ['doc=1']);
  assert.deepEqual(parseFilters({ filters: '{"label": ["a=1", "b"]}' }).get('label'), ['a=1', 'b']);
  assert.throws(() => parseFilters({ filters: '{bad' }), (e: BerthError) => e.status === 400);
});

test('signals by name, with or without SIG, and by number', () => {
  assert.equal(parseSignal('USR1'), 10);
  assert.equal(parseSignal('SIGHUP'), 1);
  assert.equal(parseSignal('9'), 9);
  assert.equal(parseSignal(undefined, 'SIGTERM'), 15);
  assert.throws(() => parseSignal('NOSUCHSIG'), (e: BerthError) => e.status === 400 && e.message === 'Invalid signal: NOSUCHSIG');
});

test('times: RFC3339 with nanoseconds as Go prints them', () => {
  const ns = 1795434561_705499310n;
  assert.equal(rfc3339Nano(ns), '2026-11-23T11:49:21.70549931Z');
  assert.equal(rfc3339Fixed9(ns), '2026-11-23T11:49:21.705499310Z');
  assert.equal(parseRfc3339Ns('2026-11-23T11:49:21.70549931Z'), ns);
  assert.equal(rfc3339Nano(1795434561_000000000n), '2026-11-23T11:49:21Z');
  assert.equal(humanDuration(0.5), 'Less than a second');
  assert.equal(humanDuration(1), '1 second');
  assert.equal(humanDuration(45), '45 seconds');
  assert.equal(humanDuration(70), 'About a minute');
  assert.equal(humanDuration(600), '10 minutes');
  assert.equal(humanDuration(3600), 'About an hour');
  assert.equal(humanDuration(5 * 3600), '5 hours');
  assert.equal(humanDuration(3 * 86400), '3 days');
});

test('container names: Docker character rules and generated names', () => {
  assert.ok(NAME_RE.test('web'));
  assert.ok(NAME_RE.test('/web-1.a_b'));
  assert.ok(!NAME_RE.test('a'));
  assert.ok(!NAME_RE.test('bad name!'));
  assert.ok(!NAME_RE.test('-x'));
  const n = generateName(() => false);
  assert.match(n, /^[a-z]+_[a-z]+$/);
  const taken = new Set<string>();
  for (let i = 0; i < 200; i++) {
    const g = generateName((x) => taken.has(x));
    assert.ok(!taken.has(`/${g}`));
    taken.add(`/${g}`);
  }
});

test('errors map to Docker status codes', () => {
  assert.deepEqual(toHttp(new BerthError('conflict', 'x')), { status: 409, message: 'x' });
  assert.deepEqual(toHttp(new BerthError('notFound', 'No such container: y')), { status: 404, message: 'No such container: y' });
  assert.equal(toHttp(new Error('boom')).status, 500);
});
