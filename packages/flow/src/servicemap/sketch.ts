// A mergeable quantile sketch for latencies and RTTs: counts in logarithmic buckets with about 2%
// relative error (DDSketch's idea), so per-bucket, per-node aggregates add up exactly and a
// quantile of the sum is as good as one of the raw values.
import type { Sketch } from '../gen/flowctl/servicemap.js';

/** Bucket i holds values in (GAMMA^(i-1), GAMMA^i]. */
export const GAMMA = 1.04;
const LOG_GAMMA = Math.log(GAMMA);
/** Values at or below this (and 0) share bucket MIN_INDEX. */
const MIN_INDEX = 0;

export type Counts = Map<number, number>;

export function bucketOf(v: number): number {
  return v <= 1 ? MIN_INDEX : Math.ceil(Math.log(v) / LOG_GAMMA);
}

export function addValue(c: Counts, v: number, n = 1): void {
  const i = bucketOf(v);
  c.set(i, (c.get(i) ?? 0) + n);
}

export function mergeCounts(into: Counts, from: Counts): void {
  for (const [i, n] of from) into.set(i, (into.get(i) ?? 0) + n);
}

/** The value a bucket stands for: the middle of its range (relative error GAMMA-1 / 2 either side). */
function valueOf(i: number): number {
  return i <= MIN_INDEX ? (i === MIN_INDEX ? 1 : 0) : (2 * GAMMA ** i) / (GAMMA + 1);
}

/** The q-quantile (0..1) of the counted values, undefined when there are none. */
export function quantile(c: Counts, q: number): number | undefined {
  let total = 0;
  for (const n of c.values()) total += n;
  if (total === 0) return undefined;
  const rank = Math.max(1, Math.ceil(q * total));
  let seen = 0;
  for (const i of [...c.keys()].sort((a, b) => a - b)) {
    seen += c.get(i)!;
    if (seen >= rank) return valueOf(i);
  }
  return undefined;
}

export function toSketch(c: Counts): Sketch {
  const index: number[] = [];
  const count: bigint[] = [];
  for (const i of [...c.keys()].sort((a, b) => a - b)) {
    index.push(i);
    count.push(BigInt(c.get(i)!));
  }
  return { index, count };
}

export function fromSketch(s: Sketch | undefined, into: Counts = new Map()): Counts {
  const idx = s?.index ?? [];
  const cnt = s?.count ?? [];
  for (let k = 0; k < idx.length && k < cnt.length; k++) into.set(idx[k]!, (into.get(idx[k]!) ?? 0) + Number(cnt[k]!));
  return into;
}
