// google.protobuf.Timestamp helpers. Timestamps are {seconds: bigint, nanos: number} (ts-proto
// with forceLong=bigint); the relay orders on them, the JSON codec prints them as RFC 3339.
import type { Timestamp } from './gen/google/protobuf/timestamp.js';
import { FlowctlError } from './errors.js';
import { FieldError, dTs, ts } from './json-primitives.js';

const NS = 1_000_000_000n;

export function timestampFromNs(ns: bigint): Timestamp {
  // Floor division keeps nanos in [0, 1e9) for times before 1970 too, as protobuf requires.
  let seconds = ns / NS;
  let nanos = ns % NS;
  if (nanos < 0n) {
    seconds -= 1n;
    nanos += NS;
  }
  return { seconds, nanos: Number(nanos) };
}

export function timestampFromMs(ms: number): Timestamp {
  const whole = Math.floor(ms);
  const sub = Math.round((ms - whole) * 1e6); // keep sub-millisecond precision of performance-style values
  return timestampFromNs(BigInt(whole) * 1_000_000n + BigInt(sub));
}

export function timestampNow(): Timestamp {
  return timestampFromMs(Date.now());
}

export function timestampToNs(t: Timestamp | undefined): bigint {
  if (!t) return 0n;
  return BigInt(t.seconds ?? 0n) * NS + BigInt(t.nanos ?? 0);
}

export function timestampToMs(t: Timestamp | undefined): number {
  if (!t) return 0;
  return Number(t.seconds ?? 0n) * 1000 + (t.nanos ?? 0) / 1e6;
}

/** Negative, zero or positive like a sort comparator; an absent timestamp sorts first. */
export function compareTimestamps(a: Timestamp | undefined, b: Timestamp | undefined): number {
  const as = BigInt(a?.seconds ?? 0n), bs = BigInt(b?.seconds ?? 0n);
  if (as !== bs) return as < bs ? -1 : 1;
  return (a?.nanos ?? 0) - (b?.nanos ?? 0);
}

/** RFC 3339 UTC with 0/3/6/9 fraction digits, exactly as Hubble's JSON prints it (unquoted). */
export function formatRfc3339(t: Timestamp): string {
  try {
    return ts(t).slice(1, -1);
  } catch (e) {
    if (e instanceof FieldError) throw new FlowctlError('MALFORMED', `cannot format timestamp: ${e.reason}`);
    throw e;
  }
}

/** Parses RFC 3339 (any offset, up to 9 fraction digits). Throws a MALFORMED FlowctlError. */
export function parseRfc3339(s: string): Timestamp {
  try {
    return dTs(s);
  } catch (e) {
    if (e instanceof FieldError) throw new FlowctlError('MALFORMED', e.reason);
    throw e;
  }
}
