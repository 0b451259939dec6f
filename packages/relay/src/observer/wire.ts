// Just enough protobuf to route GetFlowsResponse bytes without decoding them. The relay only needs
// each response's `time` (field 1001) to sort; re-encoding every flow through ts-proto would cost
// more than the whole fan-in, and raw pass-through also keeps fields this build does not know.
import { GetFlowsResponse } from '@flowctl/flow';
// FlowBatch framing lives in @flowctl/flow so agents and the CLI speak it too.
export { encodeBatch, decodeBatch } from '@flowctl/flow/batch';

/** Seconds and nanoseconds of a response's `time`; responses without one sort first (0, 0). */
export interface WireTime {
  sec: number;
  nsec: number;
}

import { FlowctlError } from '@flowctl/flow';
import { VarintReader, varintLength, writeVarint } from '@flowctl/flow/batch';

const TIME_FIELD = 1001;

/** Reads GetFlowsResponse.time from encoded bytes into `out`. Throws a MALFORMED FlowctlError on malformed input. */
export function readResponseTime(buf: Uint8Array, out: WireTime): void {
  new ResponseTimeReader().read(buf, 0, buf.length, out);
}

/** Reads the time of responses in place; each stream that scans responses owns one. */
export class ResponseTimeReader {
  private readonly v = new VarintReader();

  /** GetFlowsResponse.time of the response in bytes [start, end) of `buf` (e.g. inside a FlowBatch). */
  read(buf: Uint8Array, start: number, end: number, out: WireTime): void {
    const v = this.v;
    out.sec = 0;
    out.nsec = 0;
    let pos = start;
    while (pos < end) {
      const tag = v.read(buf, pos, end);
      const field = Math.floor(tag / 8);
      const wt = tag & 7;
      if (field === TIME_FIELD && wt === 2) {
        const len = v.read(buf, v.pos, end);
        const q = v.pos;
        if (q + len > end) throw new FlowctlError('MALFORMED', 'truncated time field');
        this.readTimestamp(buf, q, q + len, out);
        pos = q + len;
      } else pos = this.skipField(buf, wt, v.pos, end);
      if (pos > end) throw new FlowctlError('MALFORMED', `field ${field} runs past the end of the message`);
    }
  }

  /** Position after the field body that starts at `pos` (the tag already read). */
  private skipField(buf: Uint8Array, wireType: number, pos: number, end: number): number {
    const v = this.v;
    switch (wireType) {
      case 0: v.read(buf, pos, end); return v.pos;
      case 1: return pos + 8;
      case 2: { const len = v.read(buf, pos, end); return v.pos + len; }
      case 5: return pos + 4;
      default: throw new FlowctlError('MALFORMED', `unsupported wire type ${wireType}`);
    }
  }

  private readTimestamp(buf: Uint8Array, pos: number, end: number, out: WireTime): void {
    const v = this.v;
    let sec = 0;
    let nsec = 0;
    while (pos < end) {
      const tag = v.read(buf, pos, end);
      const field = tag >>> 3;
      const wt = tag & 7;
      if (wt === 0 && (field === 1 || field === 2)) {
        const x = v.read(buf, v.pos, end);
        // int64 seconds before 1970 arrive as 10-byte two's complement; clamp them to 0.
        if (field === 1) sec = x >= 2 ** 63 ? 0 : x;
        else nsec = x >= 2 ** 31 ? 0 : x;
        pos = v.pos;
      } else pos = this.skipField(buf, wt, v.pos, end);
    }
    out.sec = sec;
    out.nsec = nsec;
  }
}

/** google.protobuf.Timestamp bytes (no tag) for seconds/nanos, used by fast emitters. */
export function encodeTimestampBody(sec: number, nsec: number): Buffer {
  const len = (sec ? 1 + varintLength(sec) : 0) + (nsec ? 1 + varintLength(nsec) : 0);
  const out = Buffer.allocUnsafe(len);
  let pos = 0;
  if (sec) { out[pos++] = 0x08; pos = writeVarint(out, pos, sec); }
  if (nsec) { out[pos++] = 0x10; pos = writeVarint(out, pos, nsec); }
  return out;
}

/** A length-delimited field: tag bytes for (field, wire type 2), length, body. */
export function encodeLenField(field: number, body: Uint8Array): Buffer {
  const tag = field * 8 + 2;
  const out = Buffer.allocUnsafe(varintLength(tag) + varintLength(body.length) + body.length);
  let pos = writeVarint(out, 0, tag);
  pos = writeVarint(out, pos, body.length);
  out.set(body, pos);
  return out;
}

export function encodeResponse(r: GetFlowsResponse): Buffer {
  return Buffer.from(GetFlowsResponse.encode(r).finish());
}
