// The user-space half of toFQDNs in the kernel (bpf/fqdn.bpf.h): which question names teach which
// selectors (fqdn_names by hash, fqdn_globs by pattern, from the compiled policy), and the upkeep of what the kernel learned
// (fqdn_ips): expiry, the per-name limit of each endpoint, and forgetting selectors that left
// the policy before their numbers can mean another; and the pairs of addresses of dual-stack
// endpoints (fqdn_peers), so an answer over one family teaches the other family's records too.
import type { CompiledFqdnSelector } from '@flowctl/policy';
import { FQDN_MATCH_GLOB, MIN_FQDN_IDENTITY } from '@flowctl/policy';
import { formatIp } from '@flowctl/flow';
import { parseIp } from '@flowctl/flow/ip';
import { FQDN_GLOB, FQDN_IP_KEY, FQDN_IP_VALUE, FQDN_NAME_KEY, FQDN_PEER_KEY } from './abi.js';
import type { MapHandle } from './policy-maps.js';

export interface FqdnMaps {
  names: MapHandle;
  ips: MapHandle;
  peers?: MapHandle;
  globs?: MapHandle;
}

/** One address an endpoint learned, as the kernel holds it. */
export interface LearnedAddress {
  family: 4 | 6;
  endpoint: string;
  addr: string;
  expiresNs: bigint;
  /** identities of the selectors it was learned through */
  selectors: number[];
  nameHash: bigint;
}

const bit = (identity: number): bigint => 1n << BigInt(identity - MIN_FQDN_IDENTITY);

function nameKey(kind: number, hash: bigint): Buffer {
  const k = Buffer.alloc(FQDN_NAME_KEY.size);
  k.writeBigUInt64LE(hash, FQDN_NAME_KEY.hash);
  k.writeUInt32LE(kind, FQDN_NAME_KEY.kind);
  return k;
}

function u64(n: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(n);
  return b;
}

function ipBytes(ip: string, family: 4 | 6): Buffer {
  const p = parseIp(ip);
  if (!p || (p.v6 ? 6 : 4) !== family) throw new Error(`not an IPv${family} address: ${ip}`);
  return Buffer.from(p.value.toString(16).padStart(family === 4 ? 8 : 32, '0'), 'hex');
}

function addrText(b: Buffer, family: number): string {
  return formatIp(family === 6, BigInt('0x' + b.toString('hex')));
}

/** The fqdn_names rows of `selectors`: key hex → selector bits. */
function nameRows(selectors: readonly CompiledFqdnSelector[]): Map<string, bigint> {
  const rows = new Map<string, bigint>();
  for (const s of selectors) {
    if (s.kernel.kind === FQDN_MATCH_GLOB) continue;
    const hex = nameKey(s.kernel.kind, s.kernel.hash).toString('hex');
    rows.set(hex, (rows.get(hex) ?? 0n) | bit(s.identity));
  }
  return rows;
}

/** The fqdn_globs values of `selectors`, in index order. */
function globRows(selectors: readonly CompiledFqdnSelector[]): Buffer[] {
  return selectors.flatMap((s) => {
    if (s.kernel.kind !== FQDN_MATCH_GLOB) return [];
    const v = Buffer.alloc(FQDN_GLOB.size);
    v.writeBigUInt64LE(bit(s.identity), FQDN_GLOB.bits);
    v.writeUInt32LE(Buffer.byteLength(s.kernel.glob, 'latin1'), FQDN_GLOB.len);
    v.write(s.kernel.glob, FQDN_GLOB.pat, 'latin1');
    return [v];
  });
}

export class FqdnMapWriter {
  /** What fqdn_globs holds, packed from index 0. */
  private globs: Buffer[] = [];

  constructor(readonly maps: FqdnMaps) {}

  /**
   * Before the policy rows change: stops teaching selectors that leave or change, and forgets what
   * was learned through their numbers. `prev` undefined: what the maps hold is unknown, so all.
   */
  retire(prev: readonly CompiledFqdnSelector[] | undefined, next: readonly CompiledFqdnSelector[]): void {
    const want = nameRows(next);
    for (const k of this.maps.names.keys()) {
      const v = this.maps.names.lookup(k);
      const hex = k.toString('hex');
      if (!want.has(hex) || (v && v.readBigUInt64LE(0) & ~want.get(hex)!)) this.maps.names.delete(k);
    }
    const keep = new Set(globRows(next).map((v) => v.toString('hex')));
    this.writeGlobs(prev === undefined ? [] : this.globs.filter((v) => keep.has(v.toString('hex'))));
    let gone = 0n;
    if (prev === undefined) gone = ~0n;
    else {
      const now = new Map(next.map((s) => [s.identity, JSON.stringify(s.selector)]));
      for (const s of prev) if (now.get(s.identity) !== JSON.stringify(s.selector)) gone |= bit(s.identity);
    }
    if (gone) this.rewrite((v) => v & ~gone);
  }

  /** After the policy rows are written: teaches the selectors of `next`. */
  teach(next: readonly CompiledFqdnSelector[]): void {
    for (const [hex, bits] of nameRows(next)) this.maps.names.update(Buffer.from(hex, 'hex'), u64(bits));
    this.writeGlobs(globRows(next));
  }

  /** Makes fqdn_globs hold `rows` from index 0; an entry of length 0 ends them. */
  private writeGlobs(rows: Buffer[]): void {
    const m = this.maps.globs;
    if (!m) return;
    const key = (i: number) => {
      const k = Buffer.alloc(4);
      k.writeUInt32LE(i);
      return k;
    };
    // The end marker first, so the kernel never reads past what is being rewritten.
    if (rows.length < this.globs.length || this.globs.length === 0) m.update(key(rows.length), Buffer.alloc(FQDN_GLOB.size));
    rows.forEach((v, i) => m.update(key(i), v));
    for (let i = rows.length + 1; i < this.globs.length; i++) m.update(key(i), Buffer.alloc(FQDN_GLOB.size));
    this.globs = rows;
  }

  /**
   * What the kernel's fqdn_learn does, from user space (answers the kernel may have missed): stores
   * `addr` for `endpoint` through the selectors `bits`, keeping the later expiry. Returns true when
   * the endpoint did not know it through these selectors yet (cached verdicts must be looked at again).
   */
  learn(a: { family: 4 | 6; endpoint: string; addr: string; expiresNs: bigint; bits: bigint; nameHash: bigint }): boolean {
    const k = Buffer.alloc(FQDN_IP_KEY.size);
    k.writeUInt32LE(a.family, FQDN_IP_KEY.family);
    ipBytes(a.endpoint, a.family).copy(k, FQDN_IP_KEY.endpoint);
    ipBytes(a.addr, a.family).copy(k, FQDN_IP_KEY.addr);
    const v = this.maps.ips.lookup(k) ?? Buffer.alloc(FQDN_IP_VALUE.size);
    const had = v.readBigUInt64LE(FQDN_IP_VALUE.selectors);
    if (v.readBigUInt64LE(FQDN_IP_VALUE.expires_ns) < a.expiresNs) v.writeBigUInt64LE(a.expiresNs, FQDN_IP_VALUE.expires_ns);
    v.writeBigUInt64LE(had | a.bits, FQDN_IP_VALUE.selectors);
    v.writeBigUInt64LE(a.nameHash, FQDN_IP_VALUE.name_hash);
    this.maps.ips.update(k, v);
    return (a.bits & ~had) !== 0n;
  }

  /** Makes fqdn_peers hold each dual-stack endpoint's pair of addresses (both ways), and nothing else. */
  setPeers(pairs: readonly { v4: string; v6: string }[]): void {
    const m = this.maps.peers;
    if (!m) return;
    const want = new Map<string, Buffer>();
    const key = (ip: string, family: 4 | 6) => {
      const k = Buffer.alloc(FQDN_PEER_KEY.size);
      k.writeUInt32LE(family, FQDN_PEER_KEY.family);
      ipBytes(ip, family).copy(k, FQDN_PEER_KEY.addr);
      return k;
    };
    for (const { v4, v6 } of pairs) {
      want.set(key(v4, 4).toString('hex'), ipBytes(v6, 6));
      want.set(key(v6, 6).toString('hex'), key(v4, 4).subarray(FQDN_PEER_KEY.addr));
    }
    for (const k of [...m.keys()]) if (!want.has(k.toString('hex'))) m.delete(k);
    for (const [hex, v] of want) m.update(Buffer.from(hex, 'hex'), v);
  }

  /** Everything the kernel learned. */
  learned(): LearnedAddress[] {
    const out: LearnedAddress[] = [];
    for (const k of this.maps.ips.keys()) {
      const v = this.maps.ips.lookup(k);
      if (!v) continue;
      const family = k.readUInt32LE(FQDN_IP_KEY.family) === 6 ? 6 : 4;
      const len = family === 4 ? 4 : 16;
      const bits = v.readBigUInt64LE(FQDN_IP_VALUE.selectors);
      const selectors: number[] = [];
      for (let i = 0; i < 64; i++) if (bits & (1n << BigInt(i))) selectors.push(MIN_FQDN_IDENTITY + i);
      out.push({
        family,
        endpoint: addrText(k.subarray(FQDN_IP_KEY.endpoint, FQDN_IP_KEY.endpoint + len), family),
        addr: addrText(k.subarray(FQDN_IP_KEY.addr, FQDN_IP_KEY.addr + len), family),
        expiresNs: v.readBigUInt64LE(FQDN_IP_VALUE.expires_ns),
        selectors,
        nameHash: v.readBigUInt64LE(FQDN_IP_VALUE.name_hash),
      });
    }
    return out;
  }

  /**
   * Removes addresses expired at `nowNs` (the kernel's clock, CLOCK_MONOTONIC) and, per endpoint
   * and question name, those beyond `maxPerName` that expire first. Returns how many went.
   */
  sweep(nowNs: bigint, maxPerName: number): number {
    const byName = new Map<string, { key: Buffer; expires: bigint }[]>();
    let removed = 0;
    for (const k of this.maps.ips.keys()) {
      const v = this.maps.ips.lookup(k);
      if (!v) continue;
      const expires = v.readBigUInt64LE(FQDN_IP_VALUE.expires_ns);
      if (expires <= nowNs) {
        if (this.maps.ips.delete(k)) removed++;
        continue;
      }
      const group = `${k.toString('hex', FQDN_IP_KEY.family, FQDN_IP_KEY.addr)}/${v.readBigUInt64LE(FQDN_IP_VALUE.name_hash)}`;
      let l = byName.get(group);
      if (!l) byName.set(group, (l = []));
      l.push({ key: k, expires });
    }
    for (const l of byName.values()) {
      if (l.length <= maxPerName) continue;
      l.sort((a, b) => (a.expires < b.expires ? 1 : a.expires > b.expires ? -1 : 0));
      for (const e of l.slice(maxPerName)) if (this.maps.ips.delete(e.key)) removed++;
    }
    return removed;
  }

  /** Applies `f` to every learned address's selector bits; an address left with none is removed. */
  private rewrite(f: (bits: bigint) => bigint): void {
    for (const k of this.maps.ips.keys()) {
      const v = this.maps.ips.lookup(k);
      if (!v) continue;
      const bits = f(v.readBigUInt64LE(FQDN_IP_VALUE.selectors));
      if (bits === 0n) this.maps.ips.delete(k);
      else {
        v.writeBigUInt64LE(bits, FQDN_IP_VALUE.selectors);
        this.maps.ips.update(k, v);
      }
    }
  }
}
