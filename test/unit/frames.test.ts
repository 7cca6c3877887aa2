import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FrameDecoder, encodeFrame, Frame } from '../../daemon/runtime/frames';

test('shim frames decode across arbitrary chunk boundaries', () => {
  const frames = [encodeFrame(Frame.STDOUT, Buffer.from('hello\n')), encodeFrame(Frame.STDERR, Buffer.from('err')),
    encodeFrame(Frame.EXITED, Buffer.from('{"exitCode":3}')), encodeFrame(Frame.STDOUT)];
  const all = Buffer.concat(frames);
  for (const step of [1, 3, 7, 8, 9, all.length]) {
    const dec = new FrameDecoder();
    const got: Array<[number, string]> = [];
    for (let i = 0; i < all.length; i += step) dec.push(all.subarray(i, i + step), (t, p) => got.push([t, p.toString()]));
    assert.deepEqual(got, [[1, 'hello\n'], [2, 'err'], [0x12, '{"exitCode":3}'], [1, '']], `step ${step}`);
  }
  assert.deepEqual([...encodeFrame(1, Buffer.from('hi\n')).subarray(0, 8)], [1, 0, 0, 0, 0, 0, 0, 3]);
});
