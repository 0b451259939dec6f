// The flow store: a ring of the most recent events, as Hubble's pkg/hubble/container/ring.go.
// Positions are absolute sequence numbers (writes since start), so a reader can tell exactly
// how many entries it lost when a writer laps it.
import { FlowctlError } from '../errors.js';

/** Flows kept by default: a one-second port scan (~6,000 events with the kernel drops) reaches a
 * following reader whole, and the full ring stays within the agent's memory goal
 * (docs/benchmarks.md, agent memory). */
export const DEFAULT_RING_CAPACITY = 32767;

/** Hubble accepts 2^i − 1 for i = 1..16 ("must be one less than an integer power of two"). */
export function validateCapacity(n: number): number {
  if (!Number.isInteger(n) || n < 1 || n > 65535 || ((n + 1) & n) !== 0) {
    throw new FlowctlError(
      'INVALID_ARGUMENT',
      `ring capacity ${n} is invalid: must be one less than a power of two, between 1 and 65535 (e.g. 4095)`,
    );
  }
  return n;
}

export class Ring<T> {
  readonly capacity: number;
  private readonly slots: (T | undefined)[];
  private readonly mask: number;
  private written = 0;

  constructor(capacity: number) {
    this.capacity = validateCapacity(capacity);
    this.slots = new Array<T | undefined>(capacity + 1).fill(undefined);
    this.mask = capacity; // capacity + 1 is a power of two
  }

  write(entry: T): void {
    this.slots[this.written & this.mask] = entry;
    this.written++;
  }

  /** Sequence number the next write gets; also the count of all writes so far. */
  get head(): number {
    return this.written;
  }

  /** Oldest sequence number still readable. */
  get tail(): number {
    return Math.max(0, this.written - this.capacity);
  }

  get length(): number {
    return this.written - this.tail;
  }

  /** The entry at sequence `seq`, or undefined if it is not written yet or already overwritten. */
  read(seq: number): T | undefined {
    if (seq < this.tail || seq >= this.written) return undefined;
    return this.slots[seq & this.mask];
  }
}
