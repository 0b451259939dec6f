// Exponential backoff with jitter between reconnect attempts (cilium pkg/hubble/relay/pool/backoff.go),
// so that agents restarting together are not redialled in lockstep.

export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
  factor?: number;
  /** Fraction of the delay randomised either way (0.2 = ±20 %). */
  jitter?: number;
  random?: () => number;
}

export class Backoff {
  private attempt = 0;

  constructor(private readonly opts: BackoffOptions) {}

  /** The delay before the next attempt; grows until maxMs. */
  next(): number {
    const factor = this.opts.factor ?? 2;
    const base = Math.min(this.opts.maxMs, this.opts.initialMs * factor ** this.attempt);
    this.attempt++;
    const jitter = this.opts.jitter ?? 0.2;
    const r = (this.opts.random ?? Math.random)();
    return Math.max(0, Math.round(base * (1 + jitter * (2 * r - 1))));
  }

  reset(): void {
    this.attempt = 0;
  }
}
