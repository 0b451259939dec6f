// The lookups a blocklist needs per flow, at a cost independent of the list's size: names by one
// hash probe per label suffix (a suffix trie flattened into a map: "c2.botnet.invalid" probes
// itself, then "botnet.invalid", then "invalid"), and addresses by longest prefix match with one
// hash map per prefix length present (a DROP list has a dozen lengths, an IP list one).
import { formatIp, parseIp } from '@flowctl/flow/ip';

/** What a lookup found: the entry as the list wrote it (normalised) and its reference, if any. */
export interface Hit {
  entry: string;
  ref: string | undefined;
}

const SHARDS = 32;

/**
 * A Map of entry → reference index split in 32 by a hash of the key. A Map that grows rehashes
 * every entry at once (170 ms at half a million); split, each growth moves a 32nd of them, so a
 * list of a million entries never holds up the agent's event loop for long while it loads.
 */
class ShardedMap<K extends string | number> {
  private readonly shards = Array.from({ length: SHARDS }, () => new Map<K, number>());
  size = 0;

  get(k: K): number | undefined {
    return this.shards[shardOf(k)]!.get(k);
  }

  has(k: K): boolean {
    return this.shards[shardOf(k)]!.has(k);
  }

  set(k: K, v: number): void {
    const m = this.shards[shardOf(k)]!;
    if (!m.has(k)) this.size++;
    m.set(k, v);
  }

  *keys(): Generator<K> {
    for (const m of this.shards) yield* m.keys();
  }
}

/** Top 5 bits of a multiplicative hash: of a number, or of a string's length and two of its characters. */
function shardOf(k: string | number): number {
  if (typeof k === 'number') return Math.imul(k, 0x9e3779b1) >>> 27;
  const n = k.length;
  return Math.imul((n * 31 + k.charCodeAt(n >> 1)) * 31 + k.charCodeAt(n >> 2), 0x9e3779b1) >>> 27;
}

/** Domain names, exact or `*.` wildcards (every name below the suffix, not the suffix itself). */
export class NameSet {
  private readonly exact = new ShardedMap<string>();
  private readonly below = new ShardedMap<string>();
  private readonly refs: string[] = [''];

  get size(): number {
    return this.exact.size + this.below.size;
  }

  /** Adds a lower-case name without trailing dot; `ref` is the feed's own id of the entry. */
  add(name: string, wildcard: boolean, ref?: string): void {
    const map = wildcard ? this.below : this.exact;
    if (map.has(name)) return;
    map.set(name, ref ? this.refs.push(ref) - 1 : 0);
  }

  /** The entry matching a lower-case name (a trailing dot is ignored). */
  lookup(query: string): Hit | undefined {
    const name = query.endsWith('.') ? query.slice(0, -1) : query;
    let r = this.exact.get(name);
    if (r !== undefined) return { entry: name, ref: this.refs[r] || undefined };
    if (this.below.size === 0) return undefined;
    for (let dot = name.indexOf('.'); dot >= 0; dot = name.indexOf('.', dot + 1)) {
      const suffix = name.slice(dot + 1);
      r = this.below.get(suffix);
      if (r !== undefined) return { entry: `*.${suffix}`, ref: this.refs[r] || undefined };
    }
    return undefined;
  }
}

/** IPv4 dotted quad as an unsigned 32-bit number; -1 when it is not one. */
export function parseV4(s: string): number {
  let v = 0, part = 0, digits = 0, dots = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      part = part * 10 + (c - 48);
      if (++digits > 3 || part > 255) return -1;
    } else if (c === 46 && digits > 0 && dots < 3) {
      v = v * 256 + part;
      part = digits = 0;
      dots++;
    } else return -1;
  }
  return dots === 3 && digits > 0 ? v * 256 + part : -1;
}

const BITMAP_BITS = 20;
const topBits = (net: number, len: number) => (len === 0 ? 0 : net >>> (32 - Math.min(len, BITMAP_BITS)));

const MASK4 = Array.from({ length: 33 }, (_, len) => (len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0));

/** IPv4 and IPv6 prefixes with longest-prefix match. */
export class CidrSet {
  private readonly v4 = new Map<number, ShardedMap<number>>();
  private v4Lens: number[] = [];
  /** Per prefix length, a bit per value of the prefix's top (up to 20) bits: most lengths are
   * ruled out without probing their map, whose misses cost a cache miss or more each. */
  private readonly v4Bits = new Map<number, Uint8Array>();
  // IPv6 networks keyed by their hex text: V8 hashes a BigInt by its low 64 bits only, which are
  // all zero in a /64 or shorter prefix.
  private readonly v6 = new Map<number, ShardedMap<string>>();
  private v6Lens: number[] = [];
  private readonly refs: string[] = [''];
  size = 0;

  /** Adds "a.b.c.d", "a.b.c.d/n", an IPv6 address or prefix; false when it is none of these. */
  add(text: string, ref?: string): boolean {
    const slash = text.indexOf('/');
    const addr = slash < 0 ? text : text.slice(0, slash);
    const lenText = slash < 0 ? '' : text.slice(slash + 1);
    if (slash >= 0 && !/^\d{1,3}$/.test(lenText)) return false;
    const r = ref ? this.refs.push(ref) - 1 : 0;
    const v4 = parseV4(addr);
    if (v4 >= 0) {
      const len = slash < 0 ? 32 : Number(lenText);
      if (len > 32) return false;
      let m = this.v4.get(len);
      if (!m) {
        this.v4.set(len, (m = new ShardedMap()));
        this.v4Lens = [...this.v4.keys()].sort((x, y) => y - x);
      }
      const net = (v4 & MASK4[len]!) >>> 0;
      if (!m.has(net)) {
        m.set(net, r);
        this.size++;
        let bits = this.v4Bits.get(len);
        if (!bits) this.v4Bits.set(len, (bits = new Uint8Array(Math.max(1, (1 << Math.min(len, BITMAP_BITS)) >>> 3))));
        const top = topBits(net, len);
        bits[top >>> 3]! |= 1 << (top & 7);
      }
      return true;
    }
    const ip = addr.includes(':') ? parseIp(addr) : undefined;
    if (!ip?.v6) return false;
    const len = slash < 0 ? 128 : Number(lenText);
    if (len > 128) return false;
    let m = this.v6.get(len);
    if (!m) {
      this.v6.set(len, (m = new ShardedMap()));
      this.v6Lens = [...this.v6.keys()].sort((x, y) => y - x);
    }
    const shift = BigInt(128 - len);
    const net = ((ip.value >> shift) << shift).toString(16);
    if (!m.has(net)) {
      m.set(net, r);
      this.size++;
    }
    return true;
  }

  /** Every listed prefix (for the XDP drop list of --block-from-lists). */
  *prefixes(): Generator<{ v6: boolean; addr: bigint; bits: number }> {
    for (const [bits, m] of this.v4) for (const net of m.keys()) yield { v6: false, addr: BigInt(net), bits };
    for (const [bits, m] of this.v6) for (const net of m.keys()) yield { v6: true, addr: BigInt(`0x${net}`), bits };
  }

  /** The longest listed prefix holding `ip`. */
  lookup(ip: string): Hit | undefined {
    const v4 = parseV4(ip);
    if (v4 >= 0) {
      for (const len of this.v4Lens) {
        const net = (v4 & MASK4[len]!) >>> 0;
        const top = topBits(net, len);
        if (!(this.v4Bits.get(len)![top >>> 3]! & (1 << (top & 7)))) continue;
        const r = this.v4.get(len)!.get(net);
        if (r !== undefined) return { entry: `${net >>> 24}.${(net >>> 16) & 255}.${(net >>> 8) & 255}.${net & 255}/${len}`, ref: this.refs[r] || undefined };
      }
      return undefined;
    }
    if (this.v6Lens.length === 0 || !ip.includes(':')) return undefined;
    const p = parseIp(ip);
    if (!p?.v6) return undefined;
    for (const len of this.v6Lens) {
      const shift = BigInt(128 - len);
      const net = (p.value >> shift) << shift;
      const r = this.v6.get(len)!.get(net.toString(16));
      if (r !== undefined) return { entry: `${formatIp(true, net)}/${len}`, ref: this.refs[r] || undefined };
    }
    return undefined;
  }
}
