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
  private readonly shapes = new Map<string, boolean>();
  private readonly dateTimes = new Map<string, boolean>();
  private readonly enumFields = new Set(
    ENUM_FIELDS.map((f) => pairHash(keyHash(f.slice(0, f.indexOf('.'))), keyHash(f.slice(f.indexOf('.') + 1)))),
  );
  private readonly typeKey = keyHash('@type');
  /** Per ASCII byte inside a string: 1 = written raw by the encoder, 0 = needs a closer look. */
  private readonly plain = new Uint8Array(256);
  /** Char code → the escape sequence the encoder writes for it (bytes after the backslash). */
  private readonly escapes = new Map<number, string>();
  private raw2028 = false;
  private rawNonAscii = false;
  private ready = false;
  // Scan state (one line at a time).
  private b: Buffer = Buffer.alloc(0);
  private p = 0;
  private e = 0;
  private sk = Buffer.allocUnsafe(4096);
  private o = 0;
  private depth = 0;
  /** Lines answered from a known shape, and shapes checked with the codec (for tests and --debug). */
  hits = 0;
  misses = 0;

  constructor(
    private readonly codec: CanonicalCodec,
    private readonly maxShapes = 100_000,
  ) {}

  // Learns the encoder's string escaping by encoding each ASCII character (and U+2028/9, and a
  // few non-ASCII ones) as a flow summary.
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
    const samples = ['é', '中', '😀', '\u00a0', '\ufeff', '\ufffd', '\u0080'];
    this.rawNonAscii = samples.every((s) => enc(s) === s);
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
    this.p = start;
    this.e = end;
    this.o = 0;
    this.depth = 0;
    if (!this.value(false, ROOT) || this.p !== end) return false;
    const shape = this.sk.toString('latin1', 0, this.o);
    const known = this.shapes.get(shape);
    if (known !== undefined) {
      this.hits++;
      return known;
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
    if (this.shapes.size < this.maxShapes) this.shapes.set(shape, ok);
    return ok;
  }

  private emit(c: number): void {
    this.sk[this.o++] = c;
  }

  // `key`: hash of the field name this value belongs to (the parent of an object's fields).
  private value(enumCtx: boolean, key: number): boolean {
    const c = this.b[this.p];
    if (c === 0x7b) return this.object(key);
    if (c === 0x5b) return this.array(enumCtx, key);
    if (c === 0x22) return this.stringValue(enumCtx);
    if (c === 0x2d || (c !== undefined && isDigit(c))) return this.number(enumCtx);
    if (c === 0x74) return this.literal('true');
    if (c === 0x66) return this.literal('false');
    if (c === 0x6e) return this.literal('null');
    return false;
  }

  private literal(word: string): boolean {
    const b = this.b;
    if (this.p + word.length > this.e) return false;
    for (let i = 0; i < word.length; i++) if (b[this.p + i] !== word.charCodeAt(i)) return false;
    for (let i = 0; i < word.length; i++) this.emit(word.charCodeAt(i));
    this.p += word.length;
    return true;
  }

  private object(parent: number): boolean {
    if (++this.depth > MAX_DEPTH) return false;
    const b = this.b;
    this.emit(0x7b);
    this.p++;
    if (b[this.p] === 0x7d) {
      this.emit(0x7d);
      this.p++;
      this.depth--;
      return true;
    }
    for (;;) {
      if (b[this.p] !== 0x22) return false;
      // Keys are copied verbatim; an escaped key is never what the encoder writes.
      let h = 0;
      const ks = this.p + 1;
      let i = ks;
      this.emit(0x22);
      for (; i < this.e; i++) {
        const k = b[i]!;
        if (k === 0x22) break;
        if (k === 0x5c || this.plain[k] === 0) return false;
        h = (Math.imul(h, 31) + k) | 0;
        this.emit(k);
      }
      if (i >= this.e) return false;
      h = (Math.imul(h, 31) + (i - ks)) | 0;
      if (h === this.typeKey) return false; // google.protobuf.Any: the schema depends on a value
      this.emit(0x22);
      this.p = i + 1;
      if (b[this.p] !== 0x3a) return false;
      this.emit(0x3a);
      this.p++;
      if (!this.value(this.enumFields.has(pairHash(parent, h)), h)) return false;
      if (this.p >= this.e) return false;
      const d = b[this.p++]!;
      this.emit(d);
      if (d === 0x2c) continue;
      if (d === 0x7d) {
        this.depth--;
        return true;
      }
      return false;
    }
  }

  private array(enumCtx: boolean, key: number): boolean {
    if (++this.depth > MAX_DEPTH) return false;
    const b = this.b;
    this.emit(0x5b);
    this.p++;
    if (b[this.p] === 0x5d) {
      this.emit(0x5d);
      this.p++;
      this.depth--;
      return true;
    }
    for (;;) {
      if (!this.value(enumCtx, key)) return false;
      if (this.p >= this.e) return false;
      const d = b[this.p++]!;
      this.emit(d);
      if (d === 0x2c) continue;
      if (d === 0x5d) {
        this.depth--;
        return true;
      }
      return false;
    }
  }

  // Validates one string (escapes exactly as the encoder writes them) and classifies it.
  private stringValue(enumCtx: boolean): boolean {
    const b = this.b, e = this.e, plain = this.plain;
    const s = this.p + 1;
    let i = s;
    for (; i < e; i++) {
      const c = b[i]!;
      if (plain[c] === 1) continue;
      if (c === 0x22) break;
      if (c === 0x5c) {
        if (!this.escapeOk(i)) return false;
        i += b[i + 1] === 0x75 ? 5 : 1;
        continue;
      }
      if (c === 0xe2 && this.rawNonAscii) {
        if (b[i + 1] === 0x80 && (b[i + 2] === 0xa8 || b[i + 2] === 0xa9) && !this.raw2028) return false;
        continue;
      }
      return false;
    }
    if (i >= e) return false;
    this.p = i + 1;
    if (enumCtx) {
      for (let k = s - 1; k <= i; k++) this.emit(b[k]!);
      return true;
    }
    const n = i - s;
    if (n === 0) {
      this.emit(M_EMPTY);
      return true;
    }
    const c0 = b[s]!;
    if (!isDigit(c0) && c0 !== 0x2d) {
      this.emit(M_STR);
      return true;
    }
    if (n >= 20 && b[s + 10] === 0x54 && b[i - 1] === 0x5a) {
      if (!this.timestampOk(s, i)) return false;
      this.emit(M_TS);
      return true;
    }
    // Digits only: a 64-bit integer in canonical form (no sign, leading zero or "-0"), short
    // enough to be in range for both int64 and uint64, or else kept verbatim.
    let k = c0 === 0x2d ? s + 1 : s;
    const ds = k;
    for (; k < i; k++) if (!isDigit(b[k]!)) break;
    if (k < i) {
      this.emit(M_STR);
      return true;
    }
    if (k > ds && b[ds] !== 0x30 && k - ds <= 18) {
      this.emit(c0 === 0x2d ? M_I64NEG : M_I64);
      return true;
    }
    for (let q = s - 1; q <= i; q++) this.emit(b[q]!);
    return true;
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
    return ok;
  }

  private number(enumCtx: boolean): boolean {
    const b = this.b, e = this.e;
    const s = this.p;
    let i = s;
    if (b[i] === 0x2d) i++;
    const ds = i;
    while (i < e && isDigit(b[i]!)) i++;
    if (i === ds) return false;
    let plainInt = true;
    if (b[i] === 0x2e) {
      plainInt = false;
      i++;
      const f = i;
      while (i < e && isDigit(b[i]!)) i++;
      if (i === f) return false;
    }
    if (b[i] === 0x65 || b[i] === 0x45) {
      plainInt = false;
      i++;
      if (b[i] === 0x2b || b[i] === 0x2d) i++;
      const f = i;
      while (i < e && isDigit(b[i]!)) i++;
      if (i === f) return false;
    }
    if (b[ds] === 0x30 && i - ds > 1 && isDigit(b[ds + 1]!)) return false; // leading zero: not JSON
    this.p = i;
    // Non-zero, at most 9 digits: canonical in every 32-bit integer field.
    if (!enumCtx && plainInt && b[ds] !== 0x30 && i - ds <= 9) {
      this.emit(ds === s ? M_INT : M_INTNEG);
      return true;
    }
    for (let k = s; k < i; k++) this.emit(b[k]!);
    return true;
  }
}
