// Writes a CompiledPolicy and the IP → identity table into the verdict program's maps
// (bpf/flowctl.h: ipcache, policy_enforce, policy, config). The kernel reads these maps live, so
// every replacement is ordered to never deny what both the old and the new policy allow: new rows
// first, then stale rows deleted, then the config epoch bumped so that connections re-evaluate
// their cached verdicts against the finished state.
//
// A big policy set is hundreds of thousands of rows, and a reload usually changes a few: the
// writer of a map set remembers what it last wrote, and the next write applies only the difference
// (diffCompiled), in batches (one syscall per 65,536 rows). What the maps hold is read back only
// when this process has no record of it: the first write into maps it did not fill itself
// (pinned, reused), and the write after one that failed half-way.
import { diffCompiled, type CompiledPolicy, type PolicyEntry } from '@flowctl/policy';
import { ipBytes, parseIp, parsePrefix } from '@flowctl/flow';
import { FlowctlError } from '../errors.js';
import { FqdnMapWriter, type FqdnMaps } from './fqdn-maps.js';
import {
  CONFIG_VALUE,
  DIR_EGRESS,
  DIR_INGRESS,
  ENFORCE_EGRESS,
  ENFORCE_FQDN,
  ENFORCE_INGRESS,
  IPCACHE_KEY,
  IPCACHE_VALUE,
  POLICY_KEY,
  POLICY_VALUE,
} from './abi.js';

/** What this module needs of a bpf-loader BpfMap (also satisfied by test doubles). */
export interface MapHandle {
  lookup(key: Buffer): Buffer | undefined;
  update(key: Buffer, value: Buffer, flags?: number): void;
  delete(key: Buffer): boolean;
  keys(): Buffer[];
  /** Keys and values packed back to back; returns how many were written (BpfMap.updateBatch). */
  updateBatch?(keys: Buffer, values: Buffer): number;
  /** Packed keys; keys not in the map are stepped over; returns how many were deleted. */
  deleteBatch?(keys: Buffer): number;
  /** The whole map, keys and values packed (BpfMap.lookupBatch); without it, keys() and lookup(). */
  lookupBatch?(): { keys: Buffer; values: Buffer; count: number };
}

export interface PolicyMaps {
  ipcache: MapHandle;
  policyEnforce: MapHandle;
  policy: MapHandle;
  config: MapHandle;
  /** toFQDNs maps (fqdn-maps.ts); without them, toFQDNs rules allow nothing. */
  fqdn?: FqdnMaps;
}

export interface WriteStats {
  written: number;
  deleted: number;
}

const ZERO_KEY = Buffer.alloc(4);

type KeyFields = Pick<PolicyEntry, 'endpointIdentity' | 'peerIdentity' | 'port' | 'proto' | 'direction'>;

function putPolicyKey(k: Buffer, at: number, e: KeyFields): void {
  k.writeUInt32LE(e.endpointIdentity, at + POLICY_KEY.endpoint_identity);
  k.writeUInt32LE(e.peerIdentity, at + POLICY_KEY.peer_identity);
  k.writeUInt16LE(e.port, at + POLICY_KEY.port);
  k.writeUInt8(e.proto, at + POLICY_KEY.proto);
  k.writeUInt8(e.direction === 'ingress' ? DIR_INGRESS : DIR_EGRESS, at + POLICY_KEY.direction);
}

function putPolicyValue(v: Buffer, at: number, deny: boolean, ruleRef: number): void {
  v.writeUInt32LE(ruleRef, at + POLICY_VALUE.rule_ref);
  v.writeUInt8(deny ? 1 : 0, at + POLICY_VALUE.deny);
}

export function encodePolicyKey(e: KeyFields): Buffer {
  const k = Buffer.alloc(POLICY_KEY.size);
  putPolicyKey(k, 0, e);
  return k;
}

export function encodePolicyValue(deny: boolean, ruleRef: number): Buffer {
  const v = Buffer.alloc(POLICY_VALUE.size);
  putPolicyValue(v, 0, deny, ruleRef);
  return v;
}

/** The enforce bits; with toFQDNs rules, also the ruleRef a default deny outside the cluster names (bits 8-31). */
export function encodeEnforce(dirs: { ingress: boolean; egress: boolean; fqdn?: number }): Buffer {
  const v = Buffer.alloc(4);
  const fqdn = dirs.fqdn && dirs.fqdn < 1 << 24 ? ENFORCE_FQDN | (dirs.fqdn << 8) : 0;
  v.writeUInt32LE(((dirs.ingress ? ENFORCE_INGRESS : 0) | (dirs.egress ? ENFORCE_EGRESS : 0) | fqdn) >>> 0);
  return v;
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
}

/**
 * ipcache LPM key of `cidr` (an address alone is a /32 or /128). Host bits are cleared so that two
 * spellings of one prefix are one key. Throws FlowctlError naming `where` for anything else.
 */
export function encodeIpcacheKey(cidr: string, where = 'ipcache entry'): Buffer {
  const slash = cidr.indexOf('/');
  const ip = parseIp(slash < 0 ? cidr : cidr.slice(0, slash));
  if (!ip || cidr.includes('%')) throw new FlowctlError('INVALID_ARGUMENT', `${where}: "${cidr}" is not an IP address or CIDR`);
  const p = parsePrefix(cidr);
  if (!p) throw new FlowctlError('INVALID_ARGUMENT', `${where}: "${cidr}" has an invalid prefix length (0-${ip.v6 ? 128 : 32})`);
  const k = Buffer.alloc(IPCACHE_KEY.size);
  k.writeUInt32LE(32 + p.bits, IPCACHE_KEY.prefixlen);
  k.writeUInt32LE(p.v6 ? 6 : 4, IPCACHE_KEY.family);
  k.set(ipBytes(p.v6, p.addr), IPCACHE_KEY.addr);
  return k;
}

export function encodeIpcacheValue(identity: number): Buffer {
  const v = Buffer.alloc(IPCACHE_VALUE.size);
  v.writeUInt32LE(identity, IPCACHE_VALUE.identity);
  return v;
}

export interface ConfigValue {
  epoch: bigint;
  policyRevision: bigint;
}

export function readConfig(config: MapHandle): ConfigValue {
  const v = config.lookup(ZERO_KEY);
  if (!v) return { epoch: 0n, policyRevision: 0n };
  return { epoch: v.readBigUInt64LE(CONFIG_VALUE.epoch), policyRevision: v.readBigUInt64LE(CONFIG_VALUE.policy_revision) };
}

export function encodeConfig(c: ConfigValue): Buffer {
  const v = Buffer.alloc(CONFIG_VALUE.size);
  v.writeBigUInt64LE(c.epoch, CONFIG_VALUE.epoch);
  v.writeBigUInt64LE(c.policyRevision, CONFIG_VALUE.policy_revision);
  return v;
}

/** Makes the kernel re-evaluate every cached verdict: the last step of every map change. */
function bumpEpoch(config: MapHandle, policyRevision?: bigint): void {
  const cur = readConfig(config);
  config.update(ZERO_KEY, encodeConfig({ epoch: cur.epoch + 1n, policyRevision: policyRevision ?? cur.policyRevision }));
}

/** Rows packed back to back, as the batch calls take them. */
class Rows {
  readonly keys: Buffer;
  readonly values: Buffer;
  n = 0;
  constructor(
    readonly keySize: number,
    readonly valueSize: number,
    capacity: number,
  ) {
    // Zeroed: struct padding is part of the key the kernel hashes.
    this.keys = Buffer.alloc(keySize * capacity);
    this.values = Buffer.alloc(valueSize * capacity);
  }
  key(i: number): Buffer {
    return this.keys.subarray(i * this.keySize, (i + 1) * this.keySize);
  }
  value(i: number): Buffer {
    return this.values.subarray(i * this.valueSize, (i + 1) * this.valueSize);
  }
  hex(i: number): string {
    return this.keys.toString('hex', i * this.keySize, (i + 1) * this.keySize);
  }
  push(k: Buffer, v: Buffer): void {
    k.copy(this.keys, this.n * this.keySize);
    v.copy(this.values, this.n * this.valueSize);
    this.n++;
  }
  /** The rows whose index passes `keep`, packed again. */
  filter(keep: (i: number) => boolean): Rows {
    const out = new Rows(this.keySize, this.valueSize, this.n);
    for (let i = 0; i < this.n; i++) if (keep(i)) out.push(this.key(i), this.value(i));
    return out;
  }
}

function policyRows(entries: readonly PolicyEntry[]): Rows {
  const r = new Rows(POLICY_KEY.size, POLICY_VALUE.size, entries.length);
  for (const e of entries) {
    putPolicyKey(r.keys, r.n * POLICY_KEY.size, e);
    putPolicyValue(r.values, r.n * POLICY_VALUE.size, e.deny, e.ruleRef);
    r.n++;
  }
  return r;
}

function enforceRows(list: readonly { identity: number; dirs: { ingress: boolean; egress: boolean; fqdn?: number } }[]): Rows {
  const r = new Rows(4, 4, list.length);
  for (const { identity, dirs } of list) r.push(u32(identity), encodeEnforce(dirs));
  return r;
}

function packKeys(keys: readonly Buffer[], size: number): Buffer {
  return Buffer.concat(keys as Buffer[], keys.length * size);
}

/** Writes every row: one batch when the map has batch calls, else one update per row. */
function putRows(map: MapHandle, rows: Rows): number {
  if (rows.n === 0) return 0;
  if (map.updateBatch) return map.updateBatch(rows.keys.subarray(0, rows.n * rows.keySize), rows.values.subarray(0, rows.n * rows.valueSize));
  for (let i = 0; i < rows.n; i++) map.update(rows.key(i), rows.value(i));
  return rows.n;
}

/** Deletes the packed keys (missing ones skipped); returns how many were there. */
function dropKeys(map: MapHandle, keys: Buffer, keySize: number): number {
  if (keys.length === 0) return 0;
  if (map.deleteBatch) return map.deleteBatch(keys);
  let deleted = 0;
  for (let at = 0; at < keys.length; at += keySize) if (map.delete(keys.subarray(at, at + keySize))) deleted++;
  return deleted;
}

/** A Uint32Array over `buf` (copied when not 4-byte aligned); keys are compared word by word. */
function words(buf: Buffer): Uint32Array {
  if (buf.byteOffset % 4 === 0) return new Uint32Array(buf.buffer, buf.byteOffset, buf.length >>> 2);
  const copy = new Uint8Array(buf.length);
  copy.set(buf);
  return new Uint32Array(copy.buffer);
}

/**
 * Open-addressing hash set over packed keys (sizes a multiple of 4): hundreds of thousands of rows
 * indexed without a string or an object per key.
 */
class KeyIndex {
  private readonly slots: Int32Array; // row + 1; 0 = empty
  private readonly mask: number;
  readonly w: Uint32Array;
  private readonly kw: number;
  constructor(keys: Buffer, keySize: number, rows: number) {
    this.w = words(keys);
    this.kw = keySize >>> 2;
    let size = 16;
    while (size < rows * 2) size *= 2;
    this.slots = new Int32Array(size);
    this.mask = size - 1;
  }
  private hash(w: Uint32Array, at: number): number {
    let h = 0x811c9dc5;
    for (let k = 0; k < this.kw; k++) {
      h = Math.imul(h ^ w[at + k]!, 0x01000193);
      h ^= h >>> 15;
    }
    return h;
  }
  private same(w: Uint32Array, at: number, row: number): boolean {
    const b = row * this.kw;
    for (let k = 0; k < this.kw; k++) if (w[at + k] !== this.w[b + k]) return false;
    return true;
  }
  /** The indexed row whose key equals key `i` of `w`, or -1. */
  find(w: Uint32Array, i: number): number {
    const at = i * this.kw;
    for (let s = this.hash(w, at) & this.mask; ; s = (s + 1) & this.mask) {
      const v = this.slots[s]!;
      if (v === 0) return -1;
      if (this.same(w, at, v - 1)) return v - 1;
    }
  }
  /** Indexes own row `i`, unless an equal key is indexed already: then returns that row, else -1. */
  add(i: number): number {
    const at = i * this.kw;
    for (let s = this.hash(this.w, at) & this.mask; ; s = (s + 1) & this.mask) {
      const v = this.slots[s]!;
      if (v === 0) {
        this.slots[s] = i + 1;
        return -1;
      }
      if (this.same(this.w, at, v - 1)) return v - 1;
    }
  }
}

/** Policy rows with one row per key: for a repeated key the first deny wins, else the first allow. */
function dedupPolicyRows(r: Rows): Rows {
  const idx = new KeyIndex(r.keys, r.keySize, r.n);
  let drop: Uint8Array | undefined;
  const vs = r.valueSize;
  for (let i = 0; i < r.n; i++) {
    const j = idx.add(i);
    if (j < 0) continue;
    (drop ??= new Uint8Array(r.n))[i] = 1;
    if (r.values[j * vs + POLICY_VALUE.deny] === 0 && r.values[i * vs + POLICY_VALUE.deny] === 1) r.values.copy(r.values, j * vs, i * vs, (i + 1) * vs);
  }
  return drop ? r.filter((i) => drop[i] === 0) : r;
}

/** Everything in `map`, packed; values only when the map reads them in batches. */
function dump(map: MapHandle, keySize: number): { keys: Buffer; values?: Buffer; n: number } {
  if (map.lookupBatch) {
    try {
      const { keys, values, count } = map.lookupBatch();
      return { keys, values, n: count };
    } catch {
      // A map kind or kernel without batch lookups: the same, one key at a time.
    }
  }
  const keys = map.keys();
  return { keys: packKeys(keys, keySize), n: keys.length };
}

/**
 * What `map` holds now compared with `want`: the rows of `want` it lacks or holds with another
 * value, and its keys `want` does not have. One batch lookup per 8,192 rows in the map (else one
 * get_next_key per key and one lookup per row in both); one call when the map is empty (a freshly
 * loaded program).
 */
function readBack(map: MapHandle, want: Rows): { put: Rows; stale: Buffer } {
  const have = dump(map, want.keySize);
  if (have.n === 0) return { put: want, stale: Buffer.alloc(0) };
  const idx = new KeyIndex(have.keys, want.keySize, have.n);
  for (let j = 0; j < have.n; j++) idx.add(j);
  const seen = new Uint8Array(have.n);
  const ww = words(want.keys);
  const vs = want.valueSize;
  const put = want.filter((i) => {
    const j = idx.find(ww, i);
    if (j < 0) return true;
    seen[j] = 1;
    const cur = have.values ? have.values.subarray(j * vs, (j + 1) * vs) : map.lookup(want.key(i));
    return !cur || !cur.equals(want.value(i));
  });
  const stale: Buffer[] = [];
  for (let j = 0; j < have.n; j++) if (seen[j] === 0) stale.push(have.keys.subarray(j * want.keySize, (j + 1) * want.keySize));
  return { put, stale: packKeys(stale, want.keySize) };
}

function checkU32(n: number, what: string, min = 0): void {
  if (!Number.isInteger(n) || n < min || n > 0xffffffff) {
    throw new FlowctlError('INVALID_ARGUMENT', `${what}: ${n} is not an integer in ${min}..4294967295`);
  }
}

const isU32 = (n: number, min: number): boolean => Number.isInteger(n) && n >= min && n <= 0xffffffff;

function checkEntry(e: PolicyEntry, i: number): void {
  // The common case, every field fine, without building a message per row.
  if (
    isU32(e.endpointIdentity, 1) &&
    isU32(e.peerIdentity, 0) &&
    isU32(e.ruleRef, 1) &&
    Number.isInteger(e.port) && e.port >= 0 && e.port <= 65535 &&
    Number.isInteger(e.proto) && e.proto >= 0 && e.proto <= 255 &&
    (e.direction === 'ingress' || e.direction === 'egress')
  ) {
    return;
  }
  const where = `policy entry ${i}`;
  checkU32(e.endpointIdentity, `${where} endpointIdentity`, 1);
  checkU32(e.peerIdentity, `${where} peerIdentity`);
  checkU32(e.ruleRef, `${where} ruleRef`, 1);
  if (!Number.isInteger(e.port) || e.port < 0 || e.port > 65535) {
    throw new FlowctlError('INVALID_ARGUMENT', `${where}: port ${e.port} is not in 0..65535`);
  }
  if (!Number.isInteger(e.proto) || e.proto < 0 || e.proto > 255) {
    throw new FlowctlError('INVALID_ARGUMENT', `${where}: proto ${e.proto} is not in 0..255`);
  }
  throw new FlowctlError('INVALID_ARGUMENT', `${where}: direction "${String(e.direction)}" is not ingress or egress`);
}

/**
 * diffCompiled packs (peer, port, proto) into one exact double, which holds for peer identities
 * below 2^29 (label identities < 2^16, CIDR identities from 2^24). Larger ones are valid map keys
 * but always take the read-back path.
 */
const DIFF_MAX_PEER = 2 ** 29;

/** The order every policy write keeps; see PolicyMapWriter.writePolicy. */
function applyPolicy(maps: PolicyMaps, put: Rows, enforcePut: Rows, enforceStale: Buffer, stale: Buffer): WriteStats {
  // New rows before new enforcement bits (an endpoint becoming enforced finds its allow rows in
  // place); stale enforcement bits removed before stale rows (an endpoint leaving enforcement
  // never sees its allow rows vanish while still enforced).
  const written = putRows(maps.policy, put) + putRows(maps.policyEnforce, enforcePut);
  const deleted = dropKeys(maps.policyEnforce, enforceStale, 4) + dropKeys(maps.policy, stale, POLICY_KEY.size);
  return { written, deleted };
}

/**
 * Writes policies and identities into one set of maps (a datapath holds one writer), remembering
 * what it wrote so that the next write applies only the difference.
 */
export class PolicyMapWriter {
  /** What the policy maps last received, when known exactly. */
  private writtenPolicy: CompiledPolicy | undefined;
  /** ipcache key (hex) → identity, as last written. */
  private writtenIpcache: Map<string, number> | undefined;

  /** The toFQDNs maps' writer, when the datapath has them. */
  readonly fqdn: FqdnMapWriter | undefined;
  /** The selectors fqdn_names teaches, when known exactly. */
  private writtenFqdn: CompiledPolicy['fqdnSelectors'] | undefined;

  constructor(readonly maps: PolicyMaps) {
    this.fqdn = maps.fqdn && new FqdnMapWriter(maps.fqdn);
  }

  /** Makes the kernel look again at every cached verdict (after removing learned addresses). */
  bumpEpoch(): void {
    bumpEpoch(this.maps.config);
  }

  /** Forget what was written (something else has written to the maps since): the next writes read them back. */
  forget(): void {
    this.writtenPolicy = undefined;
    this.writtenIpcache = undefined;
    this.writtenFqdn = undefined;
  }

  /**
   * Replaces the `policy` and `policy_enforce` maps with `compiled` and records its revision.
   * Validates everything before the first write, so a bad policy changes nothing. `compiled` must
   * not be changed afterwards (it is the record of what the maps hold).
   */
  writePolicy(compiled: CompiledPolicy): WriteStats {
    const maps = this.maps;
    let exact = true;
    const entries = compiled.entries;
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!;
      checkEntry(e, i);
      if (e.peerIdentity >= DIFF_MAX_PEER) exact = false;
    }
    for (const identity of compiled.enforced.keys()) checkU32(identity, 'enforced identity', 1);
    checkU32(compiled.revision, 'policy revision');

    const prev = this.writtenPolicy;
    // Until this write has finished, what the maps hold is not known: a failure part-way leaves no
    // record, so the next write reads them back.
    this.writtenPolicy = undefined;
    // Selectors that leave stop learning, and their numbers forget, before rows can reuse them.
    const fqdnPrev = this.writtenFqdn;
    this.writtenFqdn = undefined;
    this.fqdn?.retire(fqdnPrev, compiled.fqdnSelectors ?? []);
    let stats: WriteStats;
    if (exact && prev) {
      const d = diffCompiled(prev, compiled);
      stats = applyPolicy(
        maps,
        policyRows(d.upserts),
        enforceRows(d.enforceUpserts),
        packKeys(d.enforceDeletes.map(u32), 4),
        policyRows(d.deletes).keys,
      );
    } else {
      // Every row once, then compared with what the maps hold.
      const rows = dedupPolicyRows(policyRows(entries));
      const enforce = enforceRows([...compiled.enforced].filter(([, d]) => d.ingress || d.egress).map(([identity, dirs]) => ({ identity, dirs })));
      const p = readBack(maps.policy, rows);
      const en = readBack(maps.policyEnforce, enforce);
      stats = applyPolicy(maps, p.put, en.put, en.stale, p.stale);
    }
    this.fqdn?.teach(compiled.fqdnSelectors ?? []);
    bumpEpoch(maps.config, BigInt(compiled.revision));
    if (exact) this.writtenPolicy = compiled;
    this.writtenFqdn = compiled.fqdnSelectors ?? [];
    return stats;
  }

  /**
   * Replaces the ipcache with `entries` (endpoint IPs as addresses or /32, /128; CIDR identities as
   * prefixes), then bumps the epoch so that connections look their identities up again. When two
   * entries name the same prefix the first wins.
   */
  writeIdentities(entries: readonly { cidr: string; identity: number }[]): WriteStats {
    const map = this.maps.ipcache;
    const want = new Map<string, number>();
    const rows = new Rows(IPCACHE_KEY.size, IPCACHE_VALUE.size, entries.length);
    entries.forEach((ent, i) => {
      const where = `ipcache entry ${i}`;
      checkU32(ent.identity, `${where} (${ent.cidr}) identity`, 1);
      const k = encodeIpcacheKey(ent.cidr, where);
      const hex = k.toString('hex');
      if (want.has(hex)) return;
      want.set(hex, ent.identity);
      rows.push(k, encodeIpcacheValue(ent.identity));
    });
    const prev = this.writtenIpcache;
    this.writtenIpcache = undefined;
    let put: Rows;
    let stale: Buffer;
    if (prev) {
      put = rows.filter((i) => prev.get(rows.hex(i)) !== want.get(rows.hex(i)));
      stale = packKeys(
        [...prev.keys()].filter((hex) => !want.has(hex)).map((hex) => Buffer.from(hex, 'hex')),
        IPCACHE_KEY.size,
      );
    } else {
      ({ put, stale } = readBack(map, rows));
    }
    const stats = { written: putRows(map, put), deleted: dropKeys(map, stale, IPCACHE_KEY.size) };
    bumpEpoch(this.maps.config);
    this.writtenIpcache = want;
    return stats;
  }
}
