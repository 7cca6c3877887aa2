// The host's resolvers as the embedded DNS server and containers on the default bridge use them
// (daemon/network/dns/upstream.ts): a host on systemd-resolved names only its stub 127.0.0.53 in
// /etc/resolv.conf, and the real upstreams are read from /run/systemd/resolve/resolv.conf.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { hostResolvConf, upstreams } from '../../daemon/network/dns/upstream';

function files(etc: string, systemd?: string): { etc: string; systemd: string; done(): void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-resolv-'));
  const f = { etc: path.join(dir, 'resolv.conf'), systemd: path.join(dir, 'systemd-resolv.conf'), done: () => rmSync(dir, { recursive: true, force: true }) };
  writeFileSync(f.etc, etc);
  if (systemd !== undefined) writeFileSync(f.systemd, systemd);
  return f;
}

test('a systemd-resolved stub: the upstreams of /run/systemd/resolve/resolv.conf, with its search domains', () => {
  const f = files('nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch lan\n', 'nameserver 10.20.0.2\nnameserver 10.20.0.3\nnameserver fe80::1\nnameserver 2001:db8::53\nnameserver fe80::2%eth0\nsearch corp.example\n');
  try {
    // IPv6 servers too (the relay leaves from the host); a link-local one only with its interface.
    assert.deepEqual(upstreams(f.etc, f.systemd), ['10.20.0.2', '10.20.0.3', '2001:db8::53', 'fe80::2%eth0']);
    assert.match(hostResolvConf(f.etc, f.systemd), /search corp\.example/);
  } finally {
    f.done();
  }
});

test('a resolv.conf with real servers is used as it is; loopback servers are left out', () => {
  const f = files('nameserver 127.0.0.1\nnameserver ::1\nnameserver 192.0.2.53\n', 'nameserver 10.20.0.2\n');
  try {
    assert.deepEqual(upstreams(f.etc, f.systemd), ['192.0.2.53']);
  } finally {
    f.done();
  }
});

test('a stub without systemd-resolved\'s file: no upstream (the server answers SERVFAIL for other names)', () => {
  const f = files('nameserver 127.0.0.53\n');
  try {
    assert.deepEqual(upstreams(f.etc, f.systemd), []);
  } finally {
    f.done();
  }
});
