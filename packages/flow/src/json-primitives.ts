// Scalar encoders/decoders shared by the generated per-message JSON codec (json-codec.gen.ts).
// They reproduce Go protojson + encoding/json byte for byte, which is what `hubble observe -o json`
// prints: protojson's string escapes, then encoding/json's HTML-safe compaction (<>& and
// U+2028/U+2029 as \u escapes).
import type { Timestamp } from './gen/google/protobuf/timestamp.js';

/** A malformed JSON document or a value that protojson would refuse. `where` prefixes the message. */
export class JsonCodecError extends Error {
  override readonly name = 'JsonCodecError';
  readonly code = 'JSON_CODEC';
  /** Dotted proto path of the offending field, when known (e.g. `flow.verdict`). */
  readonly field: string | undefined;
  constructor(message: string, field?: string) {
    super(message);
    this.field = field;
  }
}

/** Raised below the top level; the top level turns it into a JsonCodecError naming the input. */
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

// Characters that make a string leave the fast path: JSON escapes, Go's HTML-safe escapes, and
// surrogates (left to JSON.stringify, which keeps valid pairs raw). DEL (0x7f) stays raw: the
// real hubble CLI (v0.12.3, checked by the interop test) prints it unescaped.
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
let lastSec: bigint | number | undefined;
let lastPrefix = '';

let lastNanos = -1;
let lastOut = '';

/** RFC 3339 in UTC with 0, 3, 6 or 9 fraction digits (the shortest exact one), quoted. */
export function ts(t: Timestamp): string {
  const s = t.seconds ?? 0n;
  const n = t.nanos ?? 0;
  // A response carries the same time as its flow: the second call is a hit.
  if (n === lastNanos && s === lastSec) return lastOut;
  lastNanos = -1; // tsSlow may throw after moving lastSec
  lastOut = tsSlow(s, n);
  lastNanos = n;
  return lastOut;
}

function tsSlow(s: bigint | number, n: number): string {
  if (s !== lastSec) {
    const b = BigInt(s);
    if (b < MIN_TS || b > MAX_TS) throw new FieldError('', `timestamp seconds ${b} out of range`);
    lastPrefix = new Date(Number(b) * 1000).toISOString().slice(0, 19);
    lastSec = s;
  }
  if (n === 0) return '"' + lastPrefix + 'Z"';
  if (!(n > 0 && n < 1e9) || !Number.isInteger(n)) throw new FieldError('', `timestamp nanos ${n} out of range`);
  const f = String(1e9 + n);
  if (n % 1e6 === 0) return '"' + lastPrefix + '.' + f.slice(1, 4) + 'Z"';
  if (n % 1e3 === 0) return '"' + lastPrefix + '.' + f.slice(1, 7) + 'Z"';
  return '"' + lastPrefix + '.' + f.slice(1) + 'Z"';
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

export function dTs(v: unknown): Timestamp {
  if (typeof v !== 'string') throw new FieldError('', `expected an RFC 3339 timestamp string, got ${kind(v)}`);
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
