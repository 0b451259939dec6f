// An alert's updates at most once per interval: a change within the interval is held back and
// goes out on the next tick past it, so the last figures of a scan or flood that stopped still
// reach the alert. Detectors keep `reportedMs` on their own state; this holds which are due.
import type { Finding } from './detector.js';

export interface Reported {
  /** When the state's last finding went out (-Infinity before the first). */
  reportedMs: number;
}

export class HeldUpdates<S extends Reported> {
  private readonly held = new Set<S>();

  constructor(private readonly intervalMs: number) {}

  /** True when `s` may be reported now; otherwise it is held for tick(). */
  due(s: S, nowMs: number): boolean {
    if (nowMs - s.reportedMs < this.intervalMs) {
      this.held.add(s);
      return false;
    }
    this.held.delete(s);
    return true;
  }

  /** Whether an update of `s` is held back. */
  has(s: S): boolean {
    return this.held.has(s);
  }

  /** Drops a held update (the state was forgotten or its episode ended). */
  forget(s: S): void {
    this.held.delete(s);
  }

  /** The findings of the held states now past their interval, from `report`. */
  tick(nowMs: number, report: (s: S) => Finding[] | undefined): Finding[] | undefined {
    let out: Finding[] | undefined;
    for (const s of this.held) {
      if (nowMs - s.reportedMs < this.intervalMs) continue;
      this.held.delete(s);
      const f = report(s);
      if (f) (out ??= []).push(...f);
    }
    return out;
  }
}
