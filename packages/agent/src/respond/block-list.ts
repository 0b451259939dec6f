// The agent's drop list: the one owner of its entries (CIDR, reason, origin, expiry). It mirrors
// them into the datapath's XDP maps, removes each at its expiry (the kernel also stops dropping at
// that instant by itself, so a late timer costs nothing), and answers what the Blocks service and
// the parser ask: the list with the kernel's counters, and the entry behind a drop event's id.
import { FlowctlError } from '../errors.js';
import { parseBlockCidr } from '@flowctl/flow/block';
import type { Prefix } from '@flowctl/flow/ip';
import type { Datapath } from '../datapath/datapath.js';

export interface BlockEntryState {
  id: number;
  cidr: string;
  prefix: Prefix;
  reason: string;
  origin: string;
  createdMs: number;
  /** Wall clock; undefined: until removed. */
  expiresMs?: number;
  /** The same instant on the monotonic clock the kernel compares with (0n: never). */
  expiresNs: bigint;
}

export interface BlockListOptions {
  /** Most entries (the tries hold 262,144 per family). */
  maxEntries?: number;
  /** Wall clock and monotonic clock, for tests. */
  nowMs?: () => number;
  nowNs?: () => bigint;
}

/** Ids of removed entries kept for drop events still in flight. */
const RECENT = 1024;
/** The longest TTL: a year. */
export const MAX_TTL_MS = 365 * 24 * 3600 * 1000;

export class BlockList {
  private readonly entries = new Map<string, BlockEntryState>();
  private readonly byId = new Map<number, BlockEntryState>();
  private readonly recent = new Map<number, BlockEntryState>();
  private nextId = 1;
  private timer: NodeJS.Timeout | undefined;
  private readonly maxEntries: number;
  private readonly nowMs: () => number;
  private readonly nowNs: () => bigint;
  private closed = false;
  /** The datapath holding the XDP maps; none (replay, fake) keeps the list without enforcing it. */
  private datapath: Datapath | undefined;

  constructor(opts: BlockListOptions = {}) {
    this.maxEntries = opts.maxEntries ?? 262_144;
    this.nowMs = opts.nowMs ?? Date.now;
    this.nowNs = opts.nowNs ?? process.hrtime.bigint;
  }

  /** From now on mirrors the entries into `dp`'s XDP maps, starting with those already listed. */
  bindDatapath(dp: Datapath): void {
    this.datapath = dp;
    for (const e of this.entries.values()) dp.writeBlock?.(e);
  }

  /** Adds `cidr`, or replaces the TTL, reason and origin of the entry already there (its counters stay). */
  add(cidrText: string, o: { ttlMs?: number; reason?: string; origin?: string } = {}): BlockEntryState {
    const { cidr, prefix } = parseBlockCidr(cidrText);
    if (o.ttlMs !== undefined && !(Number.isFinite(o.ttlMs) && o.ttlMs > 0 && o.ttlMs <= MAX_TTL_MS)) {
      throw new FlowctlError('INVALID_ARGUMENT', `invalid TTL ${o.ttlMs} ms: want more than 0 and at most a year`);
    }
    const old = this.entries.get(cidr);
    if (!old && this.entries.size >= this.maxEntries) {
      throw new FlowctlError('INVALID_ARGUMENT', `the drop list is full (${this.maxEntries} entries): remove some first`);
    }
    const now = this.nowMs();
    const e: BlockEntryState = {
      id: old?.id ?? this.nextId++,
      cidr,
      prefix,
      reason: o.reason ?? '',
      origin: o.origin || 'cli',
      createdMs: old?.createdMs ?? now,
      expiresNs: o.ttlMs === undefined ? 0n : this.nowNs() + BigInt(Math.round(o.ttlMs * 1e6)),
      ...(o.ttlMs !== undefined && { expiresMs: now + o.ttlMs }),
    };
    this.datapath?.writeBlock?.(e);
    this.entries.set(cidr, e);
    this.byId.set(e.id, e);
    this.schedule();
    return e;
  }

  /** Removes `cidr`; NOT_FOUND when it is not listed. */
  remove(cidrText: string): BlockEntryState {
    const { cidr } = parseBlockCidr(cidrText);
    const e = this.entries.get(cidr);
    if (!e) throw new FlowctlError('NOT_FOUND', `${cidr} is not in the drop list`);
    this.drop(e);
    this.schedule();
    return e;
  }

  /** Entries by CIDR, with what each dropped. */
  list(): (BlockEntryState & { packets: bigint; bytes: bigint })[] {
    this.expire();
    const counts = this.datapath?.blockCounts?.() ?? new Map<number, { packets: bigint; bytes: bigint }>();
    return [...this.entries.values()]
      .sort((a, b) => a.cidr.localeCompare(b.cidr))
      .map((e) => ({ ...e, packets: counts.get(e.id)?.packets ?? 0n, bytes: counts.get(e.id)?.bytes ?? 0n }));
  }

  /** The entry behind a drop event's id, also shortly after its removal. */
  byEntryId(id: number): BlockEntryState | undefined {
    return this.byId.get(id) ?? this.recent.get(id);
  }

  get size(): number {
    return this.entries.size;
  }

  /** Stops the expiry timer; the kernel maps go with the datapath. */
  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private drop(e: BlockEntryState): void {
    this.entries.delete(e.cidr);
    this.byId.delete(e.id);
    this.recent.set(e.id, e);
    if (this.recent.size > RECENT) this.recent.delete(this.recent.keys().next().value!);
    this.datapath?.deleteBlock?.(e);
  }

  /** Removes every entry whose time has come. */
  private expire(): void {
    const now = this.nowMs();
    for (const e of [...this.entries.values()]) if (e.expiresMs !== undefined && e.expiresMs <= now) this.drop(e);
  }

  /** One timer, for the soonest expiry. */
  private schedule(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.closed) return;
    let next = Infinity;
    for (const e of this.entries.values()) if (e.expiresMs !== undefined && e.expiresMs < next) next = e.expiresMs;
    if (next === Infinity) return;
    // setTimeout holds at most 2^31-1 ms; a longer TTL is re-armed when that fires.
    const delay = Math.min(Math.max(0, next - this.nowMs()), 2 ** 31 - 1);
    this.timer = setTimeout(() => {
      this.expire();
      this.schedule();
    }, delay);
    this.timer.unref();
  }
}
