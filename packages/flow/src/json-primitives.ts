// Scalar encoders/decoders shared by the generated per-message JSON codec (json-codec.gen.ts).
// They reproduce Go protojson + encoding/json byte for byte, which is what `hubble observe -o json`
// prints: protojson's string escapes, then encoding/json's HTML-safe compaction (<>& and
// U+2028/U+2029 as \u escapes).
import type { Timestamp } from './gen/google/protobuf/timestamp.js';

/** The codec's internal signal below the top level, which turns it into a MALFORMED FlowctlError naming the input and field. */
export class FieldError extends Error {
  constructor(public path: string, public reason: string) {
    super(reason);
  }
}

/** Prefixes a nested field error with the name of the field that holds it. */
export function nest<T>(name: string, fn: (v: unknown) => T, v: unknown): T {
  try {
    return fn(v);
  } catch (e) {
    if (e instanceof FieldError) {
      e.path = e.path ? `${name}.${e.path}` : name;
      throw e;
    }
    throw e;
  }
}

// ---- encoding ------------------------------------------------------------------------------

// str() quotes a string as a JSON value (the writers use it for strings with non-ASCII text).
// Characters that need more than quotes: JSON escapes, Go's HTML-safe escapes, and surrogates
// (left to JSON.stringify, which keeps valid pairs raw). DEL (0x7f) stays raw: the real hubble
// CLI (v0.12.3, checked by the interop test) prints it unescaped.
const NEEDS_ESCAPE = /["\\\u0000-\u001f<>&\u2028\u2029\ud800-\udfff]/;
const LONE_SURROGATE = /\\ud[89a-f][0-9a-f]{2}/g;
const GO_EXTRA = /[<>&\u2028\u2029]/g;
const GO_EXTRA_ESC: Record<string, string> = {
  '<': '\\u003c', '>': '\\u003e', '&': '\\u0026', '\u2028': '\\u2028', '\u2029': '\\u2029',
};

export function str(s: string): string {
  if (!NEEDS_ESCAPE.test(s)) return '"' + s + '"';
  // JSON.stringify's escapes for control characters (\b \f \n \r \t, else \u00xx lower-case)
  // are exactly protojson's.
  // JSON.stringify escapes only lone surrogates; Go holds strings as UTF-8, where they become U+FFFD.
  return JSON.stringify(s).replace(GO_EXTRA, (c) => GO_EXTRA_ESC[c]!).replace(LONE_SURROGATE, '\ufffd');
}

export function dbl(n: number): string {
  if (Number.isFinite(n)) return String(n); // same 'f'/'e' thresholds as Go's appendFloat
  return Number.isNaN(n) ? '"NaN"' : n > 0 ? '"Infinity"' : '"-Infinity"';
}

// Go protojson refuses timestamps outside 0001-01-01..9999-12-31.
const MIN_TS = -62135596800n;
const MAX_TS = 253402300799n;
const MIN_TS_N = Number(MIN_TS);
const MAX_TS_N = Number(MAX_TS);
const TWO = Array.from({ length: 60 }, (_, i) => String(i).padStart(2, '0'));

// ---- writing into a byte buffer ------------------------------------------------------------
// The generated writers (w_* in json-codec.gen.ts) store bytes into a JsonBuffer's reused Buffer;
// the line is made by a single latin1Slice (utf8Slice when a non-ASCII string was written). Building
// the line by string concatenation made a rope of ~200 nodes per flow whose allocation and flattening
// cost more than JSON.stringify; here each character is written once. Writers take the JsonBuffer
// and a position and return the new position. They never check capacity: stores past the end of a
// typed array are dropped, the position keeps counting, and the JsonBuffer retries with a buffer
// big enough for what was counted.

export type { NodeBuffer };
/** A generated writer: encodes `m` at `p` into `o.b`, returns the position after it. */
export type Writer<T> = (m: T, o: JsonBuffer, p: number) => number;

// Node's Buffer.prototype slice/write methods by encoding (what toString/write dispatch to) are not
// in @types/node; calling them directly saves the dispatch on every line.
interface NodeBuffer extends Buffer {
  latin1Slice(start: number, end: number): string;
  utf8Slice(start: number, end: number): string;
  utf8Write(s: string, offset: number, length: number): number;
}
const alloc = (n: number) => Buffer.allocUnsafeSlow(n) as NodeBuffer;
const MAX_KEPT = 1 << 22;

/** What one encoder reuses from line to line: the buffer writers fill and the text of recent times. */
export class JsonBuffer {
  /** Where the writers store bytes: replaced while a line does not fit. */
  b: NodeBuffer;
  /** A non-ASCII character was written as UTF-8: the line is decoded as UTF-8. */
  wide = false;
  /** The seconds of the last timestamp written, and their 'YYYY-MM-DDTHH:MM:SS'. */
  sec: bigint | number | undefined = undefined;
  dateTime = '';
  // The second most recent ones: lost-event lines alternate between two seconds (first/last).
  private prevSec: bigint | number | undefined = undefined;
  private prevDateTime = '';
  // Seconds at 00:00:00 UTC of `date` ('YYYY-MM-DDT'): only the time of day is formatted while
  // seconds advance within a day (toISOString is slow per flow).
  private dayStart = NaN;
  private date = '';
  /** For google.protobuf.Any, written while this buffer holds the outer message. */
  private inner: JsonBuffer | undefined;

  constructor(size = 1 << 16) {
    this.b = alloc(size);
  }

  /** One message as compact JSON. */
  line<T>(fn: Writer<T>, m: T): string {
    const r = this.run(fn, m);
    return typeof r === 'string' ? r : this.grow(fn, m, r, true) as string;
  }

  /** The same line as UTF-8 bytes, without making a string: a view of the buffer, valid until the next line. */
  bytes<T>(fn: Writer<T>, m: T): Buffer {
    const p = fn(m, this, 0);
    // Strings with non-ASCII text were written as UTF-8, the rest is ASCII: the bytes are the line.
    return p <= this.b.length ? this.b.subarray(0, p) : this.grow(fn, m, p, false) as Buffer;
  }

  /** A message inside the one being written (google.protobuf.Any), as compact JSON. */
  nested<T>(fn: Writer<T>, m: T): string {
    return (this.inner ??= new JsonBuffer(1 << 12)).line(fn, m);
  }

  private run<T>(fn: Writer<T>, m: T): string | number {
    this.wide = false;
    const b = this.b;
    const p = fn(m, this, 0);
    if (p > b.length) return p;
    return this.wide ? b.utf8Slice(0, p) : b.latin1Slice(0, p);
  }

  // Writes again into bigger buffers until the line fits (`need` bytes counted by the last try).
  private grow<T>(fn: Writer<T>, m: T, need: number, text: boolean): string | Buffer {
    const kept = this.b;
    try {
      for (let size = Math.max(need + (need >> 1), kept.length * 2); ; size = need * 2) {
        this.b = alloc(size);
        this.wide = false;
        need = fn(m, this, 0);
        if (need <= size) return text ? (this.wide ? this.b.utf8Slice(0, need) : this.b.latin1Slice(0, need)) : this.b.subarray(0, need);
      }
    } finally {
      // A buffer grown for a huge line is not kept: memory would stay at the largest line seen.
      if (this.b.length > MAX_KEPT) this.b = kept;
    }
  }

  /** Makes `dateTime` the text of second `s`; throws a FieldError outside protojson's range. */
  setSecond(s: bigint | number): void {
    let text: string;
    if (s === this.prevSec) {
      text = this.prevDateTime;
    } else {
      if (typeof s !== 'bigint' && !Number.isInteger(s)) throw new FieldError('', `timestamp seconds ${s} is not an integer`);
      const n = Number(s); // exact within the range checked next
      if (!(n >= MIN_TS_N && n <= MAX_TS_N)) throw new FieldError('', `timestamp seconds ${s} out of range`);
      let d = n - this.dayStart;
      if (!(d >= 0 && d < 86400)) {
        this.dayStart = Math.floor(n / 86400) * 86400;
        this.date = new Date(this.dayStart * 1000).toISOString().slice(0, 11);
        d = n - this.dayStart;
      }
      const h = Math.floor(d / 3600);
      const mi = Math.floor(d / 60) - h * 60;
      text = this.date + TWO[h] + ':' + TWO[mi] + ':' + TWO[d - h * 3600 - mi * 60];
    }
    this.prevSec = this.sec;
    this.prevDateTime = this.dateTime;
    this.dateTime = text;
    this.sec = s;
  }
}

/** RFC 3339 in UTC with 0, 3, 6 or 9 fraction digits (the shortest exact one), quoted, as wTs writes it. */
export function ts(t: Timestamp): string {
  return new JsonBuffer(64).line(writeTs, t);
}
const writeTs: Writer<Timestamp> = (t, o, p) => wTs(o, p, t);

// 1 for the characters a JSON line holds as they are: printable ASCII but '"', '\\' and Go's
// HTML-safe <>&, plus DEL (raw in hubble v0.12.3's output). Indexed by any UTF-16 unit, so a
// character costs one test.
const RAW = new Uint8Array(65536);
for (let c = 0x20; c < 0x80; c++) RAW[c] = 1;
for (const c of '"\\<>&') RAW[c.charCodeAt(0)] = 0;

/** A string value, quoted and escaped like Go protojson + encoding/json. */
export function wStr(o: JsonBuffer, p: number, s: string): number {
  const b = o.b;
  const n = s.length;
  const start = p;
  b[p] = 34;
  const q = p + 1;
  let i = 0;
  // Eight characters per test while all are plain (labels and names, most of a line, are); the
  // rest one by one with escapes.
  for (; i + 8 <= n; i += 8) {
    const c0 = s.charCodeAt(i);
    const c1 = s.charCodeAt(i + 1);
    const c2 = s.charCodeAt(i + 2);
    const c3 = s.charCodeAt(i + 3);
    const c4 = s.charCodeAt(i + 4);
    const c5 = s.charCodeAt(i + 5);
    const c6 = s.charCodeAt(i + 6);
    const c7 = s.charCodeAt(i + 7);
    if ((RAW[c0]! & RAW[c1]! & RAW[c2]! & RAW[c3]! & RAW[c4]! & RAW[c5]! & RAW[c6]! & RAW[c7]!) === 0) break;
    b[q + i] = c0;
    b[q + i + 1] = c1;
    b[q + i + 2] = c2;
    b[q + i + 3] = c3;
    b[q + i + 4] = c4;
    b[q + i + 5] = c5;
    b[q + i + 6] = c6;
    b[q + i + 7] = c7;
  }
  p = q + i;
  for (; i < n; i++) {
    const c = s.charCodeAt(i);
    if (RAW[c] === 1) b[p++] = c;
    else if (c < 128) p = wEsc(b, p, c);
    // Non-ASCII (UTF-8, U+2028/9, surrogates): rare, left to the string escaper.
    else return wRaw(o, start, str(s));
  }
  b[p] = 34;
  return p + 1;
}

const HEX = '0123456789abcdef';
function wEsc(b: NodeBuffer, p: number, c: number): number {
  b[p] = 92; // '\\'
  switch (c) {
    case 34: case 92: b[p + 1] = c; return p + 2;
    case 8: b[p + 1] = 98; return p + 2; // \b
    case 9: b[p + 1] = 116; return p + 2; // \t
    case 10: b[p + 1] = 110; return p + 2; // \n
    case 12: b[p + 1] = 102; return p + 2; // \f
    case 13: b[p + 1] = 114; return p + 2; // \r
    default: // other controls and Go's HTML-safe <>&, as \u00xx with lower-case hex
      b[p + 1] = 117; b[p + 2] = 48; b[p + 3] = 48;
      b[p + 4] = HEX.charCodeAt(c >> 4); b[p + 5] = HEX.charCodeAt(c & 15);
      return p + 6;
  }
}

/** Text known to be ASCII (enum names, timestamps, base64, digits). */
export function wLit(o: JsonBuffer, p: number, s: string): number {
  const b = o.b;
  const n = s.length;
  for (let i = 0; i < n; i++) b[p + i] = s.charCodeAt(i);
  return p + n;
}

/** Text that may hold non-ASCII characters (already escaped JSON). */
export function wRaw(o: JsonBuffer, p: number, s: string): number {
  const b = o.b;
  const n = s.length;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c > 127) {
      o.wide = true;
      const len = Buffer.byteLength(s, 'utf8');
      if (p + len <= b.length) b.utf8Write(s, p, len);
      return p + len;
    }
    b[p + i] = c;
  }
  return p + n;
}

/** A 32-bit integer field (or anything else typed as a number: printed as String(v) would). */
export function wNum(o: JsonBuffer, p: number, v: number): number {
  if (typeof v !== 'number') return wRaw(o, p, String(v)); // a bigint would throw in >>>
  if (v >>> 0 === v) return wDigits(o.b, p, v);
  if ((v | 0) === v) {
    o.b[p] = 45;
    return wDigits(o.b, p + 1, -v);
  }
  return wRaw(o, p, String(v));
}

function wDigits(b: NodeBuffer, p: number, v: number): number {
  if (v < 10) {
    b[p] = 48 + v;
    return p + 1;
  }
  const n = v < 100 ? 2 : v < 1000 ? 3 : v < 10000 ? 4 : v < 100000 ? 5 : v < 1000000 ? 6 : v < 10000000 ? 7 : v < 100000000 ? 8 : v < 1000000000 ? 9 : 10;
  let i = p + n;
  while (v >= 10) {
    const d = Math.floor(v / 10);
    b[--i] = 48 + v - d * 10;
    v = d;
  }
  b[--i] = 48 + v;
  return p + n;
}

/** A 64-bit integer as a quoted decimal string. */
export function wI64(o: JsonBuffer, p: number, v: bigint | number): number {
  const b = o.b;
  b[p] = 34;
  p = typeof v === 'number' && v >>> 0 === v ? wDigits(b, p + 1, v) : wRaw(o, p + 1, String(v));
  b[p] = 34;
  return p + 1;
}

/** An enum: its quoted name from `names` (indexed by number), or the bare number when unnamed. */
export function wEnum(o: JsonBuffer, p: number, names: (string | undefined)[], v: number): number {
  const s = names[v];
  return s === undefined ? wNum(o, p, v) : wLit(o, p, s);
}

/** A Timestamp as ts() formats it, written without building the string. */
export function wTs(o: JsonBuffer, p: number, t: Timestamp): number {
  const s = t.seconds ?? 0n;
  let n = t.nanos ?? 0;
  if (s !== o.sec) o.setSecond(s);
  if (!(n >= 0 && n < 1e9) || !Number.isInteger(n)) throw new FieldError('', `timestamp nanos ${n} out of range`);
  const b = o.b;
  b[p] = 34;
  p = wLit(o, p + 1, o.dateTime);
  if (n !== 0) {
    b[p++] = 46;
    let digits = 9;
    if (n % 1e6 === 0) {
      n /= 1e6;
      digits = 3;
    } else if (n % 1e3 === 0) {
      n /= 1e3;
      digits = 6;
    }
    for (let i = p + digits - 1; i >= p; i--) {
      const d = Math.floor(n / 10);
      b[i] = 48 + n - d * 10;
      n = d;
    }
    p += digits;
  }
  b[p] = 90;
  b[p + 1] = 34;
  return p + 2;
}

export function wBool(o: JsonBuffer, p: number, v: boolean): number {
  const b = o.b;
  if (v) {
    b[p] = 116; b[p + 1] = 114; b[p + 2] = 117; b[p + 3] = 101;
    return p + 4;
  }
  b[p] = 102; b[p + 1] = 97; b[p + 2] = 108; b[p + 3] = 115; b[p + 4] = 101;
  return p + 5;
}

const camel = (p: string) => p.replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase());
export function fieldMask(paths: string[]): string {
  return str(paths.map((p) => p.split('.').map(camel).join('.')).join(','));
}

// ---- decoding ------------------------------------------------------------------------------

const kind = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v === 'string' ? JSON.stringify(v) : typeof v === 'object' ? 'object' : String(v));

export function dObj(v: unknown): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new FieldError('', `expected an object, got ${kind(v)}`);
  return v as Record<string, unknown>;
}

export function dArr<T>(v: unknown, el: (x: unknown) => T): T[] {
  if (!Array.isArray(v)) throw new FieldError('', `expected a list, got ${kind(v)}`);
  const out: T[] = new Array(v.length);
  for (let i = 0; i < v.length; i++) {
    try {
      out[i] = el(v[i]);
    } catch (e) {
      if (e instanceof FieldError) e.path = e.path ? `[${i}].${e.path}` : `[${i}]`;
      throw e;
    }
  }
  return out;
}

export function dStr(v: unknown): string {
  if (typeof v !== 'string') throw new FieldError('', `expected a string, got ${kind(v)}`);
  return v;
}

export function dBool(v: unknown): boolean {
  if (typeof v !== 'boolean') throw new FieldError('', `expected true or false, got ${kind(v)}`);
  return v;
}

const INT_STR = /^-?(0|[1-9][0-9]*)$/;

function intOf(v: unknown, type: string): number {
  let n: number;
  if (typeof v === 'number') n = v;
  else if (typeof v === 'string' && INT_STR.test(v.trim())) n = Number(v.trim());
  else throw new FieldError('', `invalid value for ${type}: ${kind(v)}`);
  if (!Number.isInteger(n)) throw new FieldError('', `invalid value for ${type}: ${kind(v)}`);
  return n;
}

export function dU32(v: unknown): number {
  const n = intOf(v, 'uint32');
  if (n < 0 || n > 0xffffffff) throw new FieldError('', `invalid value for uint32: ${kind(v)} out of range`);
  return n;
}

export function dI32(v: unknown): number {
  const n = intOf(v, 'int32');
  if (n < -0x80000000 || n > 0x7fffffff) throw new FieldError('', `invalid value for int32: ${kind(v)} out of range`);
  return n;
}

function bigOf(v: unknown, type: string): bigint {
  if (typeof v === 'string' && INT_STR.test(v.trim())) return BigInt(v.trim());
  if (typeof v === 'number' && Number.isInteger(v)) return BigInt(v);
  throw new FieldError('', `invalid value for ${type}: ${kind(v)}`);
}

export function dU64(v: unknown): bigint {
  const n = bigOf(v, 'uint64');
  if (n < 0n || n > 0xffffffffffffffffn) throw new FieldError('', `invalid value for uint64: ${kind(v)} out of range`);
  return n;
}

export function dI64(v: unknown): bigint {
  const n = bigOf(v, 'int64');
  if (n < -(2n ** 63n) || n >= 2n ** 63n) throw new FieldError('', `invalid value for int64: ${kind(v)} out of range`);
  return n;
}

export function dDbl(v: unknown): number {
  if (typeof v === 'number') return v;
  if (v === 'NaN') return NaN;
  if (v === 'Infinity') return Infinity;
  if (v === '-Infinity') return -Infinity;
  if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) return Number(v);
  throw new FieldError('', `invalid value for double: ${kind(v)}`);
}

export function dEnum(v: unknown, names: Record<string, number>, enumName: string): number {
  if (typeof v === 'string') {
    const n = names[v];
    if (n === undefined) throw new FieldError('', `unknown enum value ${JSON.stringify(v)} for ${enumName}`);
    return n;
  }
  if (typeof v === 'number' && Number.isInteger(v) && v >= -0x80000000 && v <= 0x7fffffff) return v;
  throw new FieldError('', `invalid value for enum ${enumName}: ${kind(v)}`);
}

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;

// The date-time part of the last UTC timestamp parsed, and its seconds: in a stream of lines,
// consecutive times share it (and each line holds the same time twice).
let dPrefix = '\u0000'; // matches no timestamp until one is parsed
let dSeconds = 0n;

export function dTs(v: unknown): Timestamp {
  if (typeof v !== 'string') throw new FieldError('', `expected an RFC 3339 timestamp string, got ${kind(v)}`);
  const n = v.length;
  if (n >= 20 && v.charCodeAt(n - 1) === 90 && v.startsWith(dPrefix)) {
    if (n === 20) return { seconds: dSeconds, nanos: 0 };
    if (n <= 30 && n >= 22 && v.charCodeAt(19) === 46) {
      let nanos = 0;
      let i = 20;
      for (; i < n - 1; i++) {
        const d = v.charCodeAt(i) - 48;
        if (d < 0 || d > 9) break;
        nanos = nanos * 10 + d;
      }
      if (i === n - 1) {
        for (; i < 29; i++) nanos *= 10;
        return { seconds: dSeconds, nanos };
      }
    }
  }
  const t = dTsSlow(v);
  if (n >= 20 && v.charCodeAt(19) !== 43 && v.charCodeAt(19) !== 45 && v.charCodeAt(n - 1) === 90 && v.charCodeAt(10) === 84) {
    dPrefix = v.slice(0, 19);
    dSeconds = t.seconds ?? 0n;
  }
  return t;
}

function dTsSlow(v: string): Timestamp {
  const m = RFC3339.exec(v);
  if (!m) throw new FieldError('', `invalid RFC 3339 timestamp ${JSON.stringify(v)}`);
  const [, y, mo, d, h, mi, s, frac, , sign, oh, om] = m;
  const month = Number(mo), day = Number(d), hour = Number(h), min = Number(mi), sec = Number(s);
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || min > 59 || sec > 59) {
    throw new FieldError('', `invalid RFC 3339 timestamp ${JSON.stringify(v)}`);
  }
  const date = new Date(0);
  date.setUTCFullYear(Number(y), month - 1, day);
  if (date.getUTCDate() !== day) throw new FieldError('', `invalid RFC 3339 timestamp ${JSON.stringify(v)}`);
  date.setUTCHours(hour, min, sec, 0);
  let seconds = BigInt(date.getTime() / 1000);
  if (sign) seconds -= BigInt((sign === '-' ? -1 : 1) * (Number(oh) * 3600 + Number(om) * 60));
  if (seconds < MIN_TS || seconds > MAX_TS) throw new FieldError('', `timestamp ${JSON.stringify(v)} out of range`);
  const nanos = frac ? Number(frac.padEnd(9, '0')) : 0;
  return { seconds, nanos };
}

const snake = (p: string) => p.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
export function dFieldMask(v: unknown): string[] {
  const s = dStr(v);
  if (s === '') return [];
  return s.split(',').map((p) => p.split('.').map(snake).join('.'));
}

export function dBytes(v: unknown): Buffer {
  const s = dStr(v);
  if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(s)) throw new FieldError('', `invalid base64 ${JSON.stringify(s)}`);
  return Buffer.from(s, s.includes('-') || s.includes('_') ? 'base64url' : 'base64');
}

export function bytes(b: Uint8Array): string {
  return '"' + Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64') + '"';
}
