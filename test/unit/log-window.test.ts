// --since and --until as Docker's log reader applies them (moby's forwarder, read for the facts): --since
// skips entries only until the first one at or after it, so later entries whose times go backwards (a clock
// set back) are shown; the first entry after --until ends the read, and nothing after it is shown even when
// its time is inside the window. Both look at every entry, whichever streams the client asked for (Docker
// picks the streams afterwards). Checked on the shim's own lines (the reader's fast path) and on lines in
// another field order, with attrs (its JSON.parse path).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { streamLogs, type LogOptions } from '../../daemon/logs/reader';
import { rfc3339Fixed9 } from '../../daemon/lib/time';

const root = mkdtempSync(path.join(os.tmpdir(), 'berth-log-window-'));
after(() => rmSync(root, { recursive: true, force: true }));

const T0 = 1_700_000_000_000_000_000n;
const at = (s: number) => T0 + BigInt(s) * 1_000_000_000n;
// Entry, stream and time (seconds after T0), in the order they were written.
const ENTRIES: Array<[string, 'stdout' | 'stderr', number]> = [
  ['a', 'stdout', 100],
  ['b', 'stderr', 200],
  ['c', 'stdout', 120], // back in time
  ['d', 'stdout', 300],
  ['e', 'stderr', 400],
  ['f', 'stdout', 310], // back in time, inside an --until of 320
  ['g', 'stdout', 500],
];

function logFile(shimFormat: boolean): string {
  const file = path.join(root, `${shimFormat ? 'shim' : 'other'}-json.log`);
  writeFileSync(file, ENTRIES.map(([text, stream, t]) => (shimFormat
    ? `{"log":"${text}\\n","stream":"${stream}","time":"${rfc3339Fixed9(at(t))}"}`
    : `{"stream":"${stream}","time":"${rfc3339Fixed9(at(t))}","attrs":{"k":"v"},"log":"${text}\\n"}`)).join('\n') + '\n');
  return file;
}

async function read(file: string, o: Partial<LogOptions>): Promise<string> {
  const out: Buffer[] = [];
  await streamLogs(file, { stdout: true, stderr: true, follow: false, timestamps: false, tail: -1, sinceNs: 0n, untilNs: 0n, ...o },
    true, (b) => { out.push(b); }, () => false, () => false);
  return Buffer.concat(out).toString().split('\n').filter(Boolean).join('');
}

for (const shimFormat of [true, false]) {
  const kind = shimFormat ? 'the shim\'s lines' : 'other writers\' lines';

  test(`--since stops filtering at the first entry at or after it (${kind})`, async () => {
    const file = logFile(shimFormat);
    assert.equal(await read(file, {}), 'abcdefg');
    assert.equal(await read(file, { sinceNs: at(150) }), 'bcdefg');
    // Only stdout asked for: the stderr entry b is the first in the window, so c (earlier) is shown.
    assert.equal(await read(file, { sinceNs: at(180), stderr: false }), 'cdfg');
    assert.equal(await read(file, { sinceNs: at(180), stdout: false }), 'be');
    // Nothing at or after --since: nothing at all.
    assert.equal(await read(file, { sinceNs: at(600) }), '');
  });

  test(`--until ends at the first later entry, of either stream (${kind})`, async () => {
    const file = logFile(shimFormat);
    assert.equal(await read(file, { untilNs: at(320) }), 'abcd');
    // e (stderr, 400) ends it even when only stdout is asked for: f (310) is not shown.
    assert.equal(await read(file, { untilNs: at(320), stderr: false }), 'acd');
    assert.equal(await read(file, { untilNs: at(320), stdout: false }), 'b');
    assert.equal(await read(file, { untilNs: at(150) }), 'a');
    // Both: the window opens at b and closes at e.
    assert.equal(await read(file, { sinceNs: at(180), untilNs: at(320), stderr: false }), 'cd');
    // --tail picks the last entries first; the window applies to them.
    assert.equal(await read(file, { tail: 4, untilNs: at(450) }), 'def');
  });
}
