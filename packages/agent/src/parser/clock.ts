// bpf_ktime_get_ns() is CLOCK_MONOTONIC (the clock of process.hrtime.bigint()); flows need wall time.
import type { Timestamp } from '@flowctl/flow';

export class MonotonicClock {
  private offsetNs = 0n;

  constructor() {
    this.calibrate();
  }

  /** Re-reads the offset (call periodically: NTP slews the wall clock, not the monotonic one). */
  calibrate(): void {
    const wallNs = BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6));
    this.offsetNs = wallNs - process.hrtime.bigint();
  }

  toWall(monotonicNs: bigint): Timestamp {
    const ns = monotonicNs + this.offsetNs;
    let seconds = ns / 1_000_000_000n;
    // Consecutive events share a second: keep one BigInt per second instead of one per flow.
    if (seconds === this.lastSeconds) seconds = this.lastSeconds;
    else this.lastSeconds = seconds;
    return { seconds, nanos: Number(ns % 1_000_000_000n) };
  }

  private lastSeconds = -1n;

  nowMonotonicNs(): bigint {
    return process.hrtime.bigint();
  }
}
