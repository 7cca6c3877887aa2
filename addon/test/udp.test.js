'use strict';
// UdpRelaySocket (src/js/udp.cc), the relay's UDP socket: each datagram comes with the address it was sent
// to, and an answer leaves from the address given with it. On loopback only (127.0.0.0/8 is all the
// loopback's, so 127.0.0.1 and 127.0.0.2 are two addresses of one interface; ::1 for IPv6).
const test = require('node:test');
const assert = require('node:assert/strict');
const dgram = require('node:dgram');
const { addon } = require('./support');

/** A free UDP port on loopback (asked of the kernel, then let go). */
function freePort(type, host) {
  return new Promise((resolve) => {
    const s = dgram.createSocket(type);
    s.bind(0, host, () => { const p = s.address().port; s.close(() => resolve(p)); });
  });
}

/** Sends `text` to host:port from a fresh client and resolves with the first answer and where it came from. */
function ask(type, host, port, text) {
  return new Promise((resolve, reject) => {
    const c = dgram.createSocket(type);
    const timer = setTimeout(() => { c.close(); reject(new Error(`no answer from ${host}:${port}`)); }, 3000);
    c.on('message', (m, r) => { clearTimeout(timer); c.close(); resolve({ text: String(m), from: `${r.address} ${r.port}` }); });
    c.send(text, port, host);
  });
}

test('IPv4 on 0.0.0.0: the destination of each datagram, and the answer from it', async () => {
  const port = await freePort('udp4', '127.0.0.1');
  const seen = [];
  const s = new addon.UdpRelaySocket(4, '0.0.0.0', port, (msg, fromAddr, fromPort, toAddr) => {
    // (Asserted outside: an exception here ends at the addon, which drops it.)
    seen.push(`${fromAddr}>${toAddr} ${s.send(Buffer.from(`re:${msg}`), fromAddr, fromPort, toAddr)}`);
  });
  try {
    assert.deepEqual(await ask('udp4', '127.0.0.2', port, 'a'), { text: 're:a', from: `127.0.0.2 ${port}` });
    assert.deepEqual(await ask('udp4', '127.0.0.1', port, 'b'), { text: 're:b', from: `127.0.0.1 ${port}` });
    assert.deepEqual(seen, ['127.0.0.1>127.0.0.2 true', '127.0.0.1>127.0.0.1 true']);
    // The port is held: a second bind fails as Node's would.
    assert.throws(() => new addon.UdpRelaySocket(4, '0.0.0.0', port, () => {}), { code: 'EADDRINUSE' });
  } finally {
    s.close();
  }
  // Closed: the port is free again, and send says the datagram was not taken.
  assert.equal(s.send(Buffer.from('x'), '127.0.0.1', port, ''), false);
  const again = new addon.UdpRelaySocket(4, '127.0.0.1', port, () => {});
  again.close();
});

test('IPv6 on ::, v6-only: the IPv4 port stays free; answers from ::1', async () => {
  const port = await freePort('udp6', '::1');
  const s = new addon.UdpRelaySocket(6, '::', port, (msg, fromAddr, fromPort, toAddr) => {
    s.send(Buffer.concat([Buffer.from('re:'), msg]), fromAddr, fromPort, toAddr);
  });
  try {
    assert.deepEqual(await ask('udp6', '::1', port, 'six'), { text: 're:six', from: `::1 ${port}` });
    const v4 = new addon.UdpRelaySocket(4, '0.0.0.0', port, () => {});
    v4.close();
  } finally {
    s.close();
  }
});

test('bad arguments are TypeErrors', () => {
  assert.throws(() => new addon.UdpRelaySocket(4, 'not an address', 1, () => {}), { code: 'ERR_INVALID_ARG_VALUE' });
  assert.throws(() => new addon.UdpRelaySocket(4, '127.0.0.1', 1), { code: 'ERR_INVALID_ARG_TYPE' });
});
