import type { Timestamp } from '@flowctl/flow';

export function msToTimestamp(ms: number): Timestamp {
  const s = Math.floor(ms / 1000);
  return { seconds: BigInt(s), nanos: Math.round((ms - s * 1000) * 1e6) };
}

export function tsToMs(t: Timestamp): number {
  return Number(t.seconds ?? 0n) * 1000 + (t.nanos ?? 0) / 1e6;
}

export function cmpTs(a: Timestamp, b: Timestamp): number {
  const as = a.seconds ?? 0n, bs = b.seconds ?? 0n;
  if (as !== bs) return as < bs ? -1 : 1;
  return (a.nanos ?? 0) - (b.nanos ?? 0);
}
