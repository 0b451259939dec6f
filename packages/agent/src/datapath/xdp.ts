// The XDP drop list in the kernel (bpf/xdp.bpf.c): loads the object, attaches it to node
// interfaces, writes entries into the tries (and the bitmaps and host hashes that keep passing
// packets off them) and reads the per-entry counters. The owner of the entries is the agent's BlockList;
// this only mirrors them into the maps.
import { BpfObject, forEachRecord, type BpfLink, type RingBuffer } from '@flowctl/bpf-loader';
import { FlowctlError } from '../errors.js';
import { FCX_EV_SUPPRESSED, decodeSuppressedEvent, readEntryCounts, sumPerCpuU64 } from './abi.js';
import { setBudget } from './budget.js';
import { BITS6_WORDS, XDP_COUNTERS, decodeXdpDropEvent, encodeDropEntry, encodeDropKey, hash32, hash64, slash24Range } from './abi-xdp.js';
import { DEFAULT_CONN_BUDGET, type ConnBudget, type KernelBlock, type XdpMode } from './datapath.js';
import type { SuppressedEvent, XdpDropEvent } from './events.js';

export interface XdpDropListOptions {
  /** Path of xdp.bpf.o. */
  object: string;
  /** Ring buffer bytes (power of two); drop events are sampled, so 1 MiB is plenty. */
  ringBytes?: number;
  /** Most drop events per CPU and second (the rest are counted, not sent). */
  eventsPerSec?: number;
  /** Seconds between two events of one entry and source. */
  eventIntervalS?: number;
  /** --syn-flood-protect's half-open threshold (0 or unset: off) and the per-source budget it drops SYNs over. */
  synFloodProtect?: number;
  budget?: ConnBudget | null;
}

export class XdpDropList {
  /** The loaded object (tests and benchmarks run its program with BPF_PROG_TEST_RUN). */
  readonly obj: BpfObject;
  private readonly links = new Map<string, BpfLink>();
  /** Trie keys written (hex), so a replaced entry is not counted twice in the bitmap. */
  private readonly present = new Set<string>();
  /** IPv4 /32 entries per /24 (bit index), so a bit is cleared only when the last one goes. */
  private readonly hosts24 = new Map<number, number>();
  /** IPv4 entries of /24 to /31 per /24. */
  private readonly mid24 = new Map<number, number>();
  /** IPv4 entries shorter than /24 (few, usually): each covers a run of bits. */
  private readonly short = new Map<string, [first: number, last: number]>();
  /** IPv6: entries of /64 or longer by the hash of their /64, those of /64 to /127 too, and shorter ones by /32. */
  private readonly bits6 = new HashedBits('drop6_bits');
  private readonly mid6 = new HashedBits('drop6_mid');
  private readonly short6 = new HashedBits('drop6_short');
  private ring: RingBuffer | undefined;
  private closed = false;

  constructor(opts: XdpDropListOptions) {
    this.obj = BpfObject.open(opts.object, { name: 'flowctl_xdp' });
    try {
      if (opts.ringBytes !== undefined) this.obj.setMaxEntries('xdp_events', opts.ringBytes);
      if (opts.eventsPerSec !== undefined) this.obj.setRodata('events_per_sec', opts.eventsPerSec);
      if (opts.eventIntervalS !== undefined) this.obj.setRodata('event_interval_ns', BigInt(Math.round(opts.eventIntervalS * 1e9)));
      setBudget(this.obj, opts.budget === undefined ? DEFAULT_CONN_BUDGET : opts.budget, { synProtect: opts.synFloodProtect ?? 0, onlyForSynProtect: true });
      this.obj.load();
    } catch (err) {
      this.obj.close();
      throw err;
    }
  }

  /** Drop events and summaries of the SYNs --syn-flood-protect dropped; `onError` gets records that could not be decoded. */
  start(onEvents: (events: (XdpDropEvent | SuppressedEvent)[]) => void, onError: (err: unknown) => void): RingBuffer {
    this.ring = this.obj.ringBuffer('xdp_events', (batch, count) => {
      const out: (XdpDropEvent | SuppressedEvent)[] = [];
      forEachRecord(batch, count, (buf, off, len) => {
        try {
          out.push(buf.readUInt8(off) === FCX_EV_SUPPRESSED ? decodeSuppressedEvent(buf, off, len) : decodeXdpDropEvent(buf, off, len));
        } catch (err) {
          onError(err);
        }
      });
      if (out.length) onEvents(out);
    });
    return this.ring;
  }

  attach(ifname: string): XdpMode {
    if (this.links.has(ifname)) return this.links.get(ifname)!.info().xdpMode ?? 'native';
    let link: BpfLink;
    try {
      link = this.obj.program('flowctl_xdp_drop').attachXdp({ ifname, mode: 'auto' });
    } catch (e) {
      throw new FlowctlError('CONFIG', `--xdp-interface ${ifname}: cannot attach XDP: ${e instanceof Error ? e.message : String(e)}`);
    }
    this.links.set(ifname, link);
    return link.info().xdpMode ?? 'native';
  }

  get interfaces(): string[] {
    return [...this.links.keys()];
  }

  /** Adds or replaces an entry: the trie first, then the bitmap, so a packet never sees a bit without its entry. */
  write(e: KernelBlock): void {
    const p = e.prefix;
    const key = encodeDropKey(p);
    const value = encodeDropEntry(e.id, e.expiresNs);
    this.obj.map(p.v6 ? 'drop6' : 'drop4').update(key, value);
    const host = hostMap(p);
    if (host) this.obj.map(host).update(key.subarray(4), value);
    const hex = key.toString('hex');
    if (this.present.has(hex)) return;
    this.present.add(hex);
    if (p.v6) this.cover6(p, +1);
    else this.cover(p, hex, +1);
  }

  /** Removes an entry and its counters: the bitmap first, then the trie. */
  delete(e: KernelBlock): void {
    const p = e.prefix;
    const key = encodeDropKey(p);
    const hex = key.toString('hex');
    if (this.present.delete(hex)) {
      if (p.v6) this.cover6(p, -1);
      else this.cover(p, hex, -1);
    }
    const host = hostMap(p);
    if (host) this.obj.map(host).delete(key.subarray(4));
    this.obj.map(p.v6 ? 'drop6' : 'drop4').delete(key);
    this.obj.map('drop_counts').delete(u32(e.id));
  }

  /** Packets and bytes per entry id, summed over CPUs (entries that never dropped are absent). */
  counts(): Map<number, { packets: bigint; bytes: bigint }> {
    return readEntryCounts(this.obj.map('drop_counts').entries());
  }

  counters(): Record<(typeof XDP_COUNTERS)[number], bigint> {
    const m = this.obj.map('xdp_counters');
    const out = {} as Record<(typeof XDP_COUNTERS)[number], bigint>;
    XDP_COUNTERS.forEach((n, i) => {
      const v = this.closed ? undefined : m.lookup(u32(i));
      out[n] = v ? sumPerCpuU64(v) : 0n;
    });
    return out;
  }

  /** Detaches from every interface and frees the maps (idempotent). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.ring?.close();
    for (const l of this.links.values()) l.detach();
    this.links.clear();
    this.obj.close();
  }

  /** Accounts one more (or one fewer) IPv4 entry and rewrites the bitmap words it spans. */
  private cover(p: KernelBlock['prefix'], hex: string, delta: 1 | -1): void {
    const [first, last] = slash24Range(p);
    if (p.bits < 24) {
      if (delta > 0) this.short.set(hex, [first, last]);
      else this.short.delete(hex);
    } else {
      const counts = p.bits === 32 ? this.hosts24 : this.mid24;
      const n = (counts.get(first) ?? 0) + delta;
      if (n > 0) counts.set(first, n);
      else counts.delete(first);
    }
    const words: number[] = [];
    for (let w = first >>> 6; w <= last >>> 6; w++) words.push(w);
    const keys = Buffer.alloc(words.length * 4);
    const any = Buffer.alloc(words.length * 8);
    const shorter = Buffer.alloc(words.length * 8);
    words.forEach((w, i) => {
      keys.writeUInt32LE(w, i * 4);
      const s = this.word(w, false);
      shorter.writeBigUInt64LE(s, i * 8);
      any.writeBigUInt64LE(s === ALL_BITS ? s : s | this.word(w, true), i * 8);
    });
    // Entries are written before and removed after the bits, so either order of the two maps is safe.
    for (const [name, values] of [['drop4_short', shorter], ['drop4_bits', any]] as const) {
      const bits = this.obj.map(name);
      if (words.length === 1) bits.update(keys, values);
      else bits.updateBatch(keys, values);
    }
  }

  /** Accounts one more (or one fewer) IPv6 entry in the bitmaps that route its lookups. */
  private cover6(p: KernelBlock['prefix'], delta: 1 | -1): void {
    const w0 = Number(p.addr >> 96n);
    if (p.bits < 64) {
      // The /32s the entry overlaps; past 2^16 of them, every bit (such entries are rare and huge).
      const span = p.bits >= 32 ? 1 : 2 ** (32 - p.bits);
      const bits: number[] | 'all' = span > 1 << 16 ? 'all' : Array.from({ length: span }, (_, i) => hash32((w0 + i) >>> 0));
      this.short6.change(this.obj, bits, delta);
      return;
    }
    const h = hash64(w0, Number((p.addr >> 64n) & 0xffffffffn));
    // Written before the bit that sends a lookup to the hash, cleared after it.
    if (p.bits < 128 && delta > 0) this.mid6.change(this.obj, [h], delta);
    this.bits6.change(this.obj, [h], delta);
    if (p.bits < 128 && delta < 0) this.mid6.change(this.obj, [h], delta);
  }

  /** Bitmap word `w` (bits w*64 .. w*64+63): of the /32 entries (`hosts`), or of the shorter ones. */
  private word(w: number, hosts: boolean): bigint {
    const lo = w * 64;
    const hi = lo + 63;
    let word = 0n;
    if (hosts) {
      for (let i = 0; i < 64; i++) if (this.hosts24.has(lo + i)) word |= 1n << BigInt(i);
      return word;
    }
    for (const [first, last] of this.short.values()) {
      if (last < lo || first > hi) continue;
      if (first <= lo && last >= hi) return ALL_BITS;
      for (let b = Math.max(first, lo); b <= Math.min(last, hi); b++) word |= 1n << BigInt(b - lo);
    }
    for (let i = 0; i < 64; i++) if (this.mid24.has(lo + i)) word |= 1n << BigInt(i);
    return word;
  }
}

const ALL_BITS = (1n << 64n) - 1n;

/** The hash that holds a host entry again (IPv4 /32, IPv6 /128), if it is one. */
function hostMap(p: KernelBlock['prefix']): 'drop4_hosts' | 'drop6_hosts' | undefined {
  if (p.bits === (p.v6 ? 128 : 32)) return p.v6 ? 'drop6_hosts' : 'drop4_hosts';
  return undefined;
}

/** An IPv6 bitmap (bpf/xdp.bpf.c) whose bits are hashes: each counts the entries that set it. */
class HashedBits {
  private readonly refs = new Map<number, number>();
  /** Entries that set every bit. */
  private all = 0;

  constructor(private readonly map: string) {}

  change(obj: BpfObject, bits: number[] | 'all', delta: 1 | -1): void {
    const words = new Set<number>();
    const allBefore = this.all > 0;
    if (bits === 'all') this.all += delta;
    else
      for (const b of bits) {
        const n = (this.refs.get(b) ?? 0) + delta;
        if (n > 0) this.refs.set(b, n);
        else this.refs.delete(b);
        words.add(b >>> 6);
      }
    const every = allBefore !== this.all > 0;
    const list = every ? Array.from({ length: BITS6_WORDS }, (_, i) => i) : [...words];
    const keys = Buffer.alloc(list.length * 4);
    const values = Buffer.alloc(list.length * 8);
    list.forEach((w, i) => {
      keys.writeUInt32LE(w, i * 4);
      values.writeBigUInt64LE(this.word(w), i * 8);
    });
    const m = obj.map(this.map);
    if (list.length === 1) m.update(keys, values);
    else if (list.length > 1) m.updateBatch(keys, values);
  }

  private word(w: number): bigint {
    if (this.all > 0) return ALL_BITS;
    let word = 0n;
    for (let i = 0; i < 64; i++) if (this.refs.has(w * 64 + i)) word |= 1n << BigInt(i);
    return word;
  }
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
}

function u64(n: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(n);
  return b;
}
