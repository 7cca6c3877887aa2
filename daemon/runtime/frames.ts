// The frame format spoken with berth-shim (addon/shim/PROTOCOL.md): an 8-byte header of
// [type u8][0 0 0][length u32 BE] and the payload. It is the shape of Docker's multiplexed stream, so output
// frames of non-TTY containers go to Docker clients as they are.

export const Frame = {
  STDOUT: 1,
  STDERR: 2,
  STARTED: 0x10,
  START_FAILED: 0x11,
  EXITED: 0x12,
  STATUS: 0x13,
  SUBSCRIBE: 0x20,
  STDIN: 0x21,
  STDIN_CLOSE: 0x22,
  SIGNAL: 0x23,
  RESIZE: 0x24,
  STATUS_REQ: 0x25,
} as const;

export function encodeFrame(type: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const out = Buffer.allocUnsafe(8 + payload.length);
  out[0] = type;
  out[1] = 0; out[2] = 0; out[3] = 0;
  out.writeUInt32BE(payload.length, 4);
  payload.copy(out, 8);
  return out;
}

/** Incremental decoder: feed chunks, get whole frames. */
export class FrameDecoder {
  private buf: Buffer = Buffer.alloc(0);

  push(chunk: Buffer, onFrame: (type: number, payload: Buffer) => void): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    let off = 0;
    while (this.buf.length - off >= 8) {
      const len = this.buf.readUInt32BE(off + 4);
      if (this.buf.length - off < 8 + len) break;
      onFrame(this.buf[off], this.buf.subarray(off + 8, off + 8 + len));
      off += 8 + len;
    }
    this.buf = off === this.buf.length ? Buffer.alloc(0) : this.buf.subarray(off);
  }
}
