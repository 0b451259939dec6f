// Pass-through for `--input-file ... -o json` without filters: a line already in the exact form
// the encoder writes is printed as its own bytes, with no JSON.parse, decode or encode.
//
// Proof of canonicality, per line, without parsing into objects: one byte scan validates the JSON
// and reduces the line to a *shape*: keys and structure verbatim, each scalar replaced by a class
// chosen so that, in any field of the schema, either every member of the class round-trips
// unchanged or none does (non-empty strings; canonical non-zero integers that fit int32; canonical
// 64-bit integer strings; valid timestamps with Go's 0/3/6/9 fraction digits; everything else, and
// every scalar under a key that is an enum somewhere in the schema, verbatim). The first line of
// each shape is decoded and re-encoded by the real codec; the answer holds for every later line of
// that shape. String escapes, characters the encoder escapes and invalid UTF-8 are checked against
// the encoder itself, so a line that would print differently never takes the shortcut.
import type { Flow } from '@flowctl/flow/gen/flow/flow';
import type { GetFlowsResponse } from '@flowctl/flow/gen/observer/observer';

export interface CanonicalCodec {
  decodeResponse(line: string, where?: string): GetFlowsResponse;
  encodeResponse(r: GetFlowsResponse): string;
  decodeFlow(text: string, where?: string): Flow;
  encodeFlow(f: Flow): string;
}

/**
 * `parent.field` for every enum field in the flow, observer and relay protos, where `parent` is
 * a name (proto or lowerCamel) of a field holding that message ('' for GetFlowsResponse itself):
 * an enum accepts only some names and numbers, so its values are kept verbatim in the shape. A
 * name shared with a non-enum field elsewhere is only kept verbatim more often than needed.
 * canonical.test.ts checks this list against proto/.
 */
export const ENUM_FIELDS = [
  'IP.ipVersion', 'agentEvent.type', 'agent_event.type', 'blacklist.dropReasonDesc', 'blacklist.drop_reason_desc',
  'blacklist.ipVersion', 'blacklist.ip_version', 'blacklist.trafficDirection', 'blacklist.traffic_direction',
  'blacklist.verdict', 'debugEvent.type', 'debug_event.type', 'flow.Type', 'flow.authType', 'flow.auth_type',
  'flow.debugCapturePoint', 'flow.debug_capture_point', 'flow.dropReasonDesc', 'flow.drop_reason_desc',
  'flow.sockXlatePoint', 'flow.sock_xlate_point', 'flow.traceObservationPoint', 'flow.traceReason',
  'flow.trace_observation_point', 'flow.trace_reason', 'flow.trafficDirection', 'flow.traffic_direction',
  'flow.verdict', 'l7.type', 'lostEvents.source', 'lost_events.source', 'nodeStatus.stateChange',
  'nodeStatus.state_change', 'node_status.stateChange', 'node_status.state_change', 'nodes.state', 'tunnel.protocol',
  'whitelist.dropReasonDesc', 'whitelist.drop_reason_desc', 'whitelist.ipVersion', 'whitelist.ip_version',
  'whitelist.trafficDirection', 'whitelist.traffic_direction', 'whitelist.verdict',
] as const;

// Shape markers: control bytes never appear raw in an accepted line, so they cannot collide.
const M_EMPTY = 1, M_STR = 2, M_TS = 3, M_I64 = 4, M_I64NEG = 5, M_INT = 6, M_INTNEG = 7;
const MAX_DEPTH = 64;
/** `\X` escape letter → the character it stands for (-1: not an escape). */
const SHORT_ESCAPES = new Int16Array(128).fill(-1);
for (const [x, c] of [[0x22, 0x22], [0x5c, 0x5c], [0x2f, 0x2f], [0x62, 8], [0x66, 12], [0x6e, 10], [0x72, 13], [0x74, 9]] as const) SHORT_ESCAPES[x] = c;

function keyHash(s: string): number {
  let h = 0;
  for (let i = 0; i < s.length; i++) h = (Math.imul(h, 31) + s.charCodeAt(i)) | 0;
  return (Math.imul(h, 31) + s.length) | 0;
}

const pairHash = (parent: number, key: number) => (Math.imul(parent, 0x01000193) ^ key) | 0;
const ROOT = keyHash('');

const isDigit = (c: number) => c >= 48 && c <= 57;

export class CanonicalLines {
  private readonly shapes = new Map<number, { sk: Buffer; ok: boolean }[]>();
  private count = 0;
  private readonly stackKey = new Int32Array(MAX_DEPTH);
  private readonly stackArr = new Uint8Array(MAX_DEPTH);
  private readonly stackEnum = new Uint8Array(MAX_DEPTH);
  private readonly dateTimes = new Map<string, boolean>();
  private readonly enumFields = new Set(
    ENUM_FIELDS.map((f) => pairHash(keyHash(f.slice(0, f.indexOf('.'))), keyHash(f.slice(f.indexOf('.') + 1)))),
  );
  /** Low 12 bits of the enumFields hashes: most keys are ruled out without a Set lookup. */
  private readonly enumBloom = new Uint8Array(4096);
  private readonly typeKey = keyHash('@type');
  /** Per byte inside a string: 1 = written raw by the encoder, 0 = needs a closer look. */
  private readonly plain = new Uint8Array(256);
  /** Char code → the escape sequence the encoder writes for it (bytes after the backslash). */
  private readonly escapes = new Map<number, string>();
  private raw2028 = false;
  private rawNonAscii = false;
  private ready = false;
  // Scan state (one line at a time).
  private b: Buffer = Buffer.alloc(0);
  private e = 0;
  private readonly lastDt = Buffer.alloc(19); // zeros: never a date-time
  private sk = Buffer.allocUnsafe(4096);
  /** Lines answered from a known shape, and shapes checked with the codec (tests, --debug). */
  hits = 0;
  misses = 0;

  constructor(
    private readonly codec: CanonicalCodec,
    private readonly maxShapes = 100_000,
  ) {
    for (const h of this.enumFields) this.enumBloom[h & 4095] = 1;
  }

  // Learns the encoder's string escaping by encoding each ASCII character, U+2028/9 and the
  // other non-ASCII characters as a flow summary.
  private learnEscapes(): void {
    this.ready = true;
    const enc = (s: string): string | undefined => {
      const line = this.codec.encodeFlow({ Summary: s } as Flow);
      const pre = '{"Summary":"';
      return line.startsWith(pre) && line.endsWith('"}') ? line.slice(pre.length, -2) : undefined;
    };
    for (let c = 0; c < 128; c++) {
      const ch = String.fromCharCode(c);
      const out = enc(ch);
      if (out === ch && c >= 0x20 && c !== 0x22 && c !== 0x5c) this.plain[c] = 1;
      else if (out !== undefined && out.startsWith('\\') && JSON.parse(`"${out}"`) === ch) this.escapes.set(c, out.slice(1));
    }
    for (const c of [0x2028, 0x2029]) {
      const ch = String.fromCharCode(c);
      const out = enc(ch);
      if (out === ch) this.raw2028 = true;
      else if (out !== undefined && out.startsWith('\\') && JSON.parse(`"${out}"`) === ch) this.escapes.set(c, out.slice(1));
    }
    // Every non-ASCII BMP character (and an astral one) at once: raw, apart from U+2028/9.
    const codes = new Uint16Array(0x10000 - 0x80 - 0x800 - 2);
    let n = 0;
    for (let c = 0x80; c < 0x10000; c++) if ((c < 0xd800 || c > 0xdfff) && c !== 0x2028 && c !== 0x2029) codes[n++] = c;
    const all = '😀' + Buffer.from(codes.buffer, 0, n * 2).toString('utf16le');
    this.rawNonAscii = enc(all) === all;
    if (this.rawNonAscii) for (let c = 0x80; c < 256; c++) this.plain[c] = 1;
    this.plain[0xe2] = 0; // lead byte of U+2028/U+2029
  }

  /**
   * True when `buf[start, end)` (valid UTF-8, no newline) is exactly what `encodeResponse` writes
   * for the flow it decodes to, so printing it as it is equals decode + encode.
   */
  isCanonical(buf: Buffer, start: number, end: number): boolean {
    if (!this.ready) this.learnEscapes();
    if (end - start < 2 || buf[start] !== 0x7b) return false;
    if (buf[end] !== 0x0a) {
      // The scan may look at the byte after the line: give it a newline there, never stale bytes.
      const copy = Buffer.allocUnsafe(end - start + 1);
      buf.copy(copy, 0, start, end);
      copy[end - start] = 0x0a;
      return this.isCanonical(copy, 0, end - start);
    }
    const need = 2 * (end - start) + 16;
    if (this.sk.length < need) this.sk = Buffer.allocUnsafe(need);
    this.b = buf;
    this.e = end;
    const o = this.scan(buf, start, end);
    if (o < 0) return false;
    // Shapes are indexed by length and a few sampled words, and compared in full (memcmp).
    const sk = this.sk;
    let h = o;
    for (let k = 1; k <= 16; k++) h = (Math.imul(h, 0x01000193) ^ sk[((o - 1) * k) >> 4]!) | 0;
    const bucket = this.shapes.get(h);
    if (bucket !== undefined) {
      for (const shape of bucket) {
        if (shape.sk.length === o && sk.compare(shape.sk, 0, o, 0, o) === 0) {
          this.hits++;
          return shape.ok;
        }
      }
    }
    this.misses++;
    const line = buf.toString('utf8', start, end);
    let ok = false;
    try {
      const r = this.codec.decodeResponse(line);
      ok = r.flow !== undefined && r.lost_events === undefined && r.node_status === undefined && this.codec.encodeResponse(r) === line;
    } catch {
      ok = false;
    }
    if (this.count < this.maxShapes) {
      this.count++;
      const shape = { sk: Buffer.from(sk.subarray(0, o)), ok };
      if (bucket) bucket.push(shape);
      else this.shapes.set(h, [shape]);
    }
    return ok;
  }

  /** The shape of `b[p, e)` into `this.sk`; its length, or -1 when the line is not eligible. */
  private scan(b: Buffer, p: number, e: number): number {
    const sk = this.sk, plain = this.plain, enumFields = this.enumFields, enumBloom = this.enumBloom;
    const keys = this.stackKey, isArr = this.stackArr, enums = this.stackEnum;
    let o = 0;
    let top = -1;
    let key = ROOT; // hash of the field name the next value belongs to
    let inEnum = false;
    // 0: a value is expected; 1: a key (or the end of an empty object) is expected; 2: after a value.
    let state = 0;
    for (;;) {
      if (state === 0) {
        const c = b[p]!;
        if (c === 0x7b || c === 0x5b) {
          if (++top >= MAX_DEPTH) return -1;
          keys[top] = key;
          isArr[top] = c === 0x5b ? 1 : 0;
          enums[top] = inEnum ? 1 : 0;
          sk[o++] = c;
          p++;
          const close = c === 0x7b ? 0x7d : 0x5d;
          if (b[p] === close) {
            sk[o++] = close;
            p++;
            top--;
            state = 2;
          } else state = c === 0x7b ? 1 : 0;
          continue;
        }
        if (c === 0x22) {
          const s = p + 1;
          let i = s;
          for (;;) {
            const x = b[i]!;
            if (plain[x] === 1) {
              i++;
              continue;
            }
            if (x === 0x22) break;
            if (x === 0x5c) {
              if (!this.escapeOk(i)) return -1;
              i += b[i + 1] === 0x75 ? 6 : 2;
              continue;
            }
            if (x === 0xe2 && this.rawNonAscii && !(b[i + 1] === 0x80 && (b[i + 2] === 0xa8 || b[i + 2] === 0xa9) && !this.raw2028)) {
              i++;
              continue;
            }
            return -1; // a newline (the end of the line) included
          }
          if (i >= e) return -1;
          p = i + 1;
          state = 2;
          if (inEnum) {
            for (let k = s - 1; k <= i; k++) sk[o++] = b[k]!;
            continue;
          }
          const n = i - s;
          if (n === 0) {
            sk[o++] = M_EMPTY;
            continue;
          }
          const c0 = b[s]!;
          if (!isDigit(c0) && c0 !== 0x2d) {
            sk[o++] = M_STR;
            continue;
          }
          if (n >= 20 && b[s + 10] === 0x54 && b[i - 1] === 0x5a) {
            if (!this.timestampOk(s, i)) return -1;
            sk[o++] = M_TS;
            continue;
          }
          // Digits only: a 64-bit integer in canonical form (no sign, leading zero or "-0"),
          // short enough to be in range for both int64 and uint64, or else kept verbatim.
          const ds = c0 === 0x2d ? s + 1 : s;
          let k = ds;
          while (k < i && isDigit(b[k]!)) k++;
          if (k < i) sk[o++] = M_STR;
          else if (k > ds && b[ds] !== 0x30 && k - ds <= 18) sk[o++] = c0 === 0x2d ? M_I64NEG : M_I64;
          else for (let q = s - 1; q <= i; q++) sk[o++] = b[q]!;
          continue;
        }
        if (c === 0x2d || isDigit(c)) {
          const s = p;
          let i = c === 0x2d ? p + 1 : p;
          const ds = i;
          while (isDigit(b[i]!)) i++;
          if (i === ds || i > e) return -1;
          let plainInt = true;
          if (b[i] === 0x2e) {
            plainInt = false;
            const f = ++i;
            while (isDigit(b[i]!)) i++;
            if (i === f) return -1;
          }
          if (b[i] === 0x65 || b[i] === 0x45) {
            plainInt = false;
            i++;
            if (b[i] === 0x2b || b[i] === 0x2d) i++;
            const f = i;
            while (isDigit(b[i]!)) i++;
            if (i === f) return -1;
          }
          if (i > e || (b[ds] === 0x30 && i - ds > 1 && isDigit(b[ds + 1]!))) return -1;
          p = i;
          state = 2;
          // Non-zero, at most 9 digits: canonical in every 32-bit integer field.
          if (!inEnum && plainInt && b[ds] !== 0x30 && i - ds <= 9) sk[o++] = ds === s ? M_INT : M_INTNEG;
          else for (let k = s; k < i; k++) sk[o++] = b[k]!;
          continue;
        }
        const word = c === 0x74 ? 'true' : c === 0x66 ? 'false' : c === 0x6e ? 'null' : undefined;
        if (word === undefined || p + word.length > e) return -1;
        for (let k = 0; k < word.length; k++) {
          if (b[p + k] !== word.charCodeAt(k)) return -1;
          sk[o++] = b[p + k]!;
        }
        p += word.length;
        state = 2;
        continue;
      }
      if (state === 1) {
        // Keys are copied verbatim; an escaped key is never what the encoder writes.
        if (b[p] !== 0x22) return -1;
        sk[o++] = 0x22;
        let h = 0;
        const ks = ++p;
        for (;;) {
          const x = b[p]!;
          if (x === 0x22) break;
          if (plain[x] !== 1) return -1;
          h = (Math.imul(h, 31) + x) | 0;
          sk[o++] = x;
          p++;
        }
        h = (Math.imul(h, 31) + (p - ks)) | 0;
        if (h === this.typeKey || b[p + 1] !== 0x3a) return -1; // "@type": google.protobuf.Any
        sk[o++] = 0x22;
        sk[o++] = 0x3a;
        p += 2;
        const ph = pairHash(keys[top]!, h);
        inEnum = enumBloom[ph & 4095] === 1 && enumFields.has(ph);
        key = h;
        state = 0;
        continue;
      }
      // state 2: after a value
      if (top < 0) return p === e ? o : -1;
      if (p >= e) return -1;
      const d = b[p++]!;
      sk[o++] = d;
      if (d === 0x2c) {
        if (isArr[top] === 1) {
          key = keys[top]!;
          inEnum = enums[top] === 1;
          state = 0;
        } else state = 1;
        continue;
      }
      if (d !== (isArr[top] === 1 ? 0x5d : 0x7d)) return -1;
      top--;
    }
  }

  private escapeOk(i: number): boolean {
    const b = this.b;
    const x = b[i + 1];
    let code: number;
    let len: number;
    if (x === 0x75) {
      if (i + 5 >= this.e) return false;
      code = 0;
      for (let k = i + 2; k < i + 6; k++) {
        const h = b[k]!;
        const v = isDigit(h) ? h - 48 : h >= 0x61 && h <= 0x66 ? h - 87 : h >= 0x41 && h <= 0x46 ? h - 55 : -1;
        if (v < 0) return false;
        code = code * 16 + v;
      }
      len = 5;
    } else {
      const c = x === undefined ? -1 : (SHORT_ESCAPES[x] ?? -1);
      if (c < 0) return false;
      code = c;
      len = 1;
    }
    const want = this.escapes.get(code);
    if (want === undefined || want.length !== len) return false;
    for (let k = 0; k < len; k++) if (b[i + 1 + k] !== want.charCodeAt(k)) return false;
    return true;
  }

  // `YYYY-MM-DDTHH:MM:SS[.fff|.ffffff|.fffffffff]Z` with Go's trimming of zero groups, and a
  // date-time the codec itself accepts and writes back unchanged (cached per second).
  private timestampOk(s: number, end: number): boolean {
    const b = this.b;
    const n = end - s;
    if (n !== 20 && n !== 24 && n !== 27 && n !== 30) return false;
    if (n > 20) {
      if (b[s + 19] !== 0x2e) return false;
      for (let k = s + 20; k < end - 1; k++) if (!isDigit(b[k]!)) return false;
      if (b[end - 2] === 0x30 && b[end - 3] === 0x30 && b[end - 4] === 0x30) return false;
    }
    // Flows come in time order: most timestamps share their second with the previous one.
    const lastDt = this.lastDt;
    let k = 0;
    while (k < 19 && b[s + k] === lastDt[k]) k++;
    if (k === 19) return true;
    const dt = b.toString('latin1', s, s + 19);
    let ok = this.dateTimes.get(dt);
    if (ok === undefined) {
      const line = `{"time":"${dt}Z"}`;
      try {
        ok = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$/.test(dt) && this.codec.encodeFlow(this.codec.decodeFlow(line)) === line;
      } catch {
        ok = false;
      }
      if (this.dateTimes.size > 10_000) this.dateTimes.clear();
      this.dateTimes.set(dt, ok);
    }
    if (ok) b.copy(lastDt, 0, s, s + 19);
    return ok;
  }
}
