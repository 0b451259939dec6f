// The agent's drop list: the one owner of its entries (CIDR, reason, origin, expiry). It mirrors
// them into the datapath's XDP maps, removes each at its expiry (the kernel also stops dropping at
// that instant by itself, so a late timer costs nothing), and answers what the Blocks service and
// the parser ask: the list with the kernel's counters, and the entry behind a drop event's id.
// With a state file it keeps the entries there, so that they outlive a restart of the agent: read
// back at start with what is left of their TTL.
// An isolation is keyed by its pod ("namespace/name"), not by an address: it is enforced on the
// addresses that pod has on this node now (podAddresses), so a restored isolation whose pod is gone
// isolates nothing, and a new pod given the same address is not isolated.
import { basename } from 'node:path';
import { FlowctlError } from '../errors.js';
import { parseBlockCidr } from '@flowctl/flow/block';
import { formatIp, type Prefix } from '@flowctl/flow/ip';
import { readStateFile, writeStateFile } from '@flowctl/flow/state-file';
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
  /** Set for a local pod ("namespace/name") isolated by an alert: its egress is denied but DNS, at
   *  TC, instead of its address being dropped at XDP. `cidr` is then the address the alert named. */
  isolate?: string;
}

/** The addresses local pod "namespace/name" has now; undefined: no such pod on this node. */
export type PodAddresses = (pod: string) => Prefix[] | undefined;

export interface BlockListOptions {
  /** Most entries (the tries hold 262,144 per family). */
  maxEntries?: number;
  /** Wall clock and monotonic clock, for tests. */
  nowMs?: () => number;
  nowNs?: () => bigint;
  /** The file the entries are kept in (JSON), read back by load(); none: they die with the agent. */
  stateFile?: string;
  /** Told when the state file cannot be read or written (the list goes on in memory). */
  warn?: (msg: string) => void;
}

/** The state file's content. */
interface StateFile {
  version: 1;
  entries: { cidr: string; reason: string; origin: string; createdMs: number; expiresMs?: number; isolate?: string }[];
}

/** Origin of the entries of a blocklist file (--block-from-lists), before the file's path. */
export const LIST_ORIGIN = 'list:';
/** "namespace/name" of a pod (never a CIDR: the part after the slash is not a prefix length). */
const POD_NAME = /^[a-z0-9][a-z0-9.-]*\/[a-z0-9.-]*[a-z.-][a-z0-9.-]*$/;
/** Ids of removed entries kept for drop events still in flight. */
const RECENT = 1024;
/** The longest TTL: a year. */
export const MAX_TTL_MS = 365 * 24 * 3600 * 1000;

export class BlockList {
  /** By CIDR; isolations by pod name (keyOf). */
  private readonly entries = new Map<string, BlockEntryState>();
  /** Where each isolation is written in the kernel now, by entry id. */
  private readonly isolatedAt = new Map<number, Prefix[]>();
  /** Unset (tests, replay): an isolation holds the address it was made for. */
  private podAddresses: PodAddresses | undefined;
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
  private xdp = false;
  private readonly stateFile: string | undefined;
  private readonly warn: (msg: string) => void;
  private saving: NodeJS.Immediate | undefined;

  constructor(opts: BlockListOptions = {}) {
    this.maxEntries = opts.maxEntries ?? 262_144;
    this.nowMs = opts.nowMs ?? Date.now;
    this.nowNs = opts.nowNs ?? process.hrtime.bigint;
    this.stateFile = opts.stateFile;
    this.warn = opts.warn ?? (() => {});
  }

  /** Reads the state file back: entries not yet expired, with what is left of their TTL. Returns how many. */
  load(): number {
    if (!this.stateFile) return 0;
    let state: StateFile | undefined;
    try {
      state = readStateFile<StateFile>(this.stateFile);
    } catch (e) {
      this.warn(`drop list state ${this.stateFile} unreadable, starting empty: ${(e as Error).message}`);
      return 0;
    }
    const now = this.nowMs();
    let n = 0;
    const saved = state?.entries;
    for (const e of Array.isArray(saved) ? saved : []) {
      if (e.expiresMs !== undefined && e.expiresMs <= now) continue;
      try {
        this.add(e.cidr, { reason: e.reason, origin: e.origin, createdMs: e.createdMs, ...(e.isolate && { isolate: e.isolate }), ...(e.expiresMs !== undefined && { ttlMs: Math.min(e.expiresMs - now, MAX_TTL_MS), now }) });
        n++;
      } catch (err) {
        this.warn(`drop list state ${this.stateFile}: ${JSON.stringify(e.cidr)} skipped: ${(err as Error).message}`);
      }
    }
    return n;
  }

  /** From now on mirrors the entries into `dp` (drops into its XDP maps only with `xdp`), starting with those already listed. */
  bindDatapath(dp: Datapath, xdp = true): void {
    this.datapath = dp;
    this.xdp = xdp;
    for (const e of this.entries.values()) this.enforce(e);
  }

  /** From now on isolations follow the addresses `fn` gives their pods; call podsChanged() when those change. */
  resolvePodsWith(fn: PodAddresses): void {
    this.podAddresses = fn;
    this.podsChanged();
  }

  /** Moves every isolation to the addresses its pod has now (none when the pod is gone). */
  podsChanged(): void {
    for (const e of this.entries.values()) if (e.isolate) this.enforce(e);
  }

  /** The addresses isolation `e` applies to now. */
  addressesOf(e: BlockEntryState): Prefix[] {
    if (!e.isolate) return [];
    return this.podAddresses ? (this.podAddresses(e.isolate) ?? []) : [e.prefix];
  }

  /** Adds `cidr`, or replaces the TTL, reason and origin of the entry already there (its counters stay). */
  add(cidrText: string, o: { ttlMs?: number; reason?: string; origin?: string; createdMs?: number; now?: number; isolate?: string } = {}): BlockEntryState {
    const { cidr, prefix } = parseBlockCidr(cidrText);
    if (o.ttlMs !== undefined && !(Number.isFinite(o.ttlMs) && o.ttlMs > 0 && o.ttlMs <= MAX_TTL_MS)) {
      throw new FlowctlError('INVALID_ARGUMENT', `invalid TTL ${o.ttlMs} ms: want more than 0 and at most a year`);
    }
    if (o.isolate !== undefined && !POD_NAME.test(o.isolate)) throw new FlowctlError('INVALID_ARGUMENT', `isolate "${o.isolate}": want a pod's namespace/name`);
    const key = o.isolate ?? cidr;
    const old = this.entries.get(key);
    if (!old && this.entries.size >= this.maxEntries) {
      throw new FlowctlError('INVALID_ARGUMENT', `the drop list is full (${this.maxEntries} entries): remove some first`);
    }
    const now = o.now ?? this.nowMs();
    const e: BlockEntryState = {
      id: old?.id ?? this.nextId++,
      cidr,
      prefix,
      reason: o.reason ?? '',
      origin: o.origin || 'cli',
      createdMs: old?.createdMs ?? o.createdMs ?? now,
      expiresNs: o.ttlMs === undefined ? 0n : this.nowNs() + BigInt(Math.round(o.ttlMs * 1e6)),
      ...(o.ttlMs !== undefined && { expiresMs: now + o.ttlMs }),
      ...(o.isolate && { isolate: o.isolate }),
    };
    if (e.isolate && (prefix.bits !== (prefix.v6 ? 128 : 32))) {
      throw new FlowctlError('INVALID_ARGUMENT', `isolate ${o.isolate}: ${cidr} is not one address`);
    }
    this.enforce(e);
    this.entries.set(key, e);
    this.byId.set(e.id, e);
    this.schedule();
    this.changed();
    return e;
  }

  /**
   * Makes the entries of blocklist file `file` (--block-from-lists) those of `prefixes`: reason
   * the file's name, origin "list:FILE", no TTL, not kept in the state file (the list is read at
   * start). A CIDR already listed otherwise (by hand, by an alert, by another list) stays as it is.
   */
  setListed(file: string, prefixes: Iterable<Pick<Prefix, 'v6' | 'addr' | 'bits'>>): { entries: number; refused: number; firstError?: string } {
    const origin = `${LIST_ORIGIN}${file}`;
    const listed = new Set<string>();
    for (const p of prefixes) listed.add(`${formatIp(p.v6, p.addr)}/${p.bits}`);
    // What left the file goes first, making room for what came.
    for (const e of [...this.entries.values()]) if (e.origin === origin && !listed.has(e.cidr)) this.drop(e);
    let entries = 0;
    let refused = 0;
    let firstError: string | undefined;
    for (const cidr of listed) {
      const old = this.entries.get(cidr);
      if (old) {
        if (old.origin === origin) entries++;
        continue;
      }
      try {
        this.add(cidr, { reason: basename(file), origin });
        entries++;
      } catch (e) {
        refused++;
        firstError ??= (e as Error).message;
      }
    }
    this.changed();
    return { entries, refused, ...(firstError && { firstError }) };
  }

  /** Removes `cidr`, or the isolation of pod "namespace/name"; NOT_FOUND when it is not listed. */
  remove(cidrText: string): BlockEntryState {
    let e = this.entries.get(cidrText);
    if (!e?.isolate) {
      if (POD_NAME.test(cidrText)) throw new FlowctlError('NOT_FOUND', `${cidrText} is not an isolated pod`);
      const { cidr, prefix } = parseBlockCidr(cidrText);
      // A drop entry, else the isolation made for that address or holding it now.
      e = this.entries.get(cidr) ?? [...this.entries.values()].find((x) => x.isolate && (x.cidr === cidr || this.addressesOf(x).some((a) => samePrefix(a, prefix))));
      if (!e) throw new FlowctlError('NOT_FOUND', `${cidr} is not in the drop list`);
    }
    this.drop(e);
    this.schedule();
    this.changed();
    return e;
  }

  /** Entries by CIDR, with what each dropped (and an isolation, the addresses it applies to now). */
  list(): (BlockEntryState & { packets: bigint; bytes: bigint; addresses: Prefix[] })[] {
    this.expire();
    const counts = this.datapath?.blockCounts?.() ?? new Map<number, { packets: bigint; bytes: bigint }>();
    return [...this.entries.values()]
      .sort((a, b) => a.cidr.localeCompare(b.cidr) || (a.isolate ?? '').localeCompare(b.isolate ?? ''))
      .map((e) => ({ ...e, packets: counts.get(e.id)?.packets ?? 0n, bytes: counts.get(e.id)?.bytes ?? 0n, addresses: this.addressesOf(e) }));
  }

  /** The entry behind a drop event's id, also shortly after its removal. */
  byEntryId(id: number): BlockEntryState | undefined {
    return this.byId.get(id) ?? this.recent.get(id);
  }

  get size(): number {
    return this.entries.size;
  }

  /** Stops the expiry timer and writes the state file a last time; the kernel maps go with the datapath. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.saving) {
      clearImmediate(this.saving);
      this.saving = undefined;
      this.save();
    }
  }

  /** Writes the state file once the current burst of changes is over. */
  private changed(): void {
    if (!this.stateFile || this.saving || this.closed) return;
    this.saving = setImmediate(() => {
      this.saving = undefined;
      this.save();
    });
  }

  /** Replaces the state file whole (a reader never sees half of one); no entries, no file. */
  private save(): void {
    const file = this.stateFile!;
    try {
      const kept = [...this.entries.values()].filter((e) => !e.origin.startsWith(LIST_ORIGIN));
      const state: StateFile | undefined = kept.length ? {
        version: 1,
        entries: kept.map((e) => ({
          cidr: e.cidr, reason: e.reason, origin: e.origin, createdMs: e.createdMs, ...(e.expiresMs !== undefined && { expiresMs: e.expiresMs }), ...(e.isolate && { isolate: e.isolate }),
        })),
      } : undefined;
      writeStateFile(file, state);
    } catch (e) {
      this.warn(`drop list state ${file} not written: ${(e as Error).message}`);
    }
  }

  private drop(e: BlockEntryState): void {
    this.entries.delete(e.isolate ?? e.cidr);
    this.byId.delete(e.id);
    this.recent.set(e.id, e);
    if (this.recent.size > RECENT) this.recent.delete(this.recent.keys().next().value!);
    this.unenforce(e);
  }

  /** Mirrors `e` into the kernel: the XDP drop list, or the TC isolation of a local pod's addresses. */
  private enforce(e: BlockEntryState): void {
    if (!e.isolate) {
      if (this.xdp) this.datapath?.writeBlock?.(e);
      return;
    }
    const dp = this.datapath;
    if (!dp?.writeIsolation) return;
    const had = this.isolatedAt.get(e.id) ?? [];
    const want = this.addressesOf(e);
    for (const a of had) if (!want.some((w) => samePrefix(w, a))) dp.deleteIsolation?.({ ...e, prefix: a });
    for (const a of want) if (!had.some((h) => samePrefix(h, a))) dp.writeIsolation({ ...e, prefix: a });
    this.isolatedAt.set(e.id, want);
  }

  private unenforce(e: BlockEntryState): void {
    if (!e.isolate) {
      if (this.xdp) this.datapath?.deleteBlock?.(e);
      return;
    }
    for (const a of this.isolatedAt.get(e.id) ?? []) this.datapath?.deleteIsolation?.({ ...e, prefix: a });
    this.isolatedAt.delete(e.id);
    this.datapath?.endIsolation?.(e.id);
  }

  /** Removes every entry whose time has come. */
  private expire(): void {
    const now = this.nowMs();
    for (const e of [...this.entries.values()]) {
      if (e.expiresMs === undefined || e.expiresMs > now) continue;
      this.drop(e);
      this.changed();
    }
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

function samePrefix(a: Prefix, b: Prefix): boolean {
  return a.v6 === b.v6 && a.addr === b.addr && a.bits === b.bits;
}
