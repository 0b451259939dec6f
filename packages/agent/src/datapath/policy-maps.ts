// Writes a CompiledPolicy and the IP → identity table into the verdict program's maps
// (bpf/flowctl.h: ipcache, policy_enforce, policy, config). The kernel reads these maps live, so
// every replacement is ordered to never deny what both the old and the new policy allow: new rows
// first, then stale rows deleted, then the config epoch bumped so that connections re-evaluate
// their cached verdicts against the finished state.
import type { CompiledPolicy, PolicyEntry } from '@flowctl/policy';
import { FlowctlError } from '../errors.js';
import {
  CONFIG_VALUE,
  DIR_EGRESS,
  DIR_INGRESS,
  ENFORCE_EGRESS,
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
}

export interface PolicyMaps {
  ipcache: MapHandle;
  policyEnforce: MapHandle;
  policy: MapHandle;
  config: MapHandle;
}

export interface WriteStats {
  written: number;
  deleted: number;
}

const ZERO_KEY = Buffer.alloc(4);

export function encodePolicyKey(e: Pick<PolicyEntry, 'endpointIdentity' | 'peerIdentity' | 'port' | 'proto' | 'direction'>): Buffer {
  const k = Buffer.alloc(POLICY_KEY.size);
  k.writeUInt32LE(e.endpointIdentity, POLICY_KEY.endpoint_identity);
  k.writeUInt32LE(e.peerIdentity, POLICY_KEY.peer_identity);
  k.writeUInt16LE(e.port, POLICY_KEY.port);
  k.writeUInt8(e.proto, POLICY_KEY.proto);
  k.writeUInt8(e.direction === 'ingress' ? DIR_INGRESS : DIR_EGRESS, POLICY_KEY.direction);
  return k;
}

export function encodePolicyValue(deny: boolean, ruleRef: number): Buffer {
  const v = Buffer.alloc(POLICY_VALUE.size);
  v.writeUInt32LE(ruleRef, POLICY_VALUE.rule_ref);
  v.writeUInt8(deny ? 1 : 0, POLICY_VALUE.deny);
  return v;
}

export function encodeEnforce(dirs: { ingress: boolean; egress: boolean }): Buffer {
  const v = Buffer.alloc(4);
  v.writeUInt32LE((dirs.ingress ? ENFORCE_INGRESS : 0) | (dirs.egress ? ENFORCE_EGRESS : 0));
  return v;
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
}

function parseV4(s: string): Buffer | undefined {
  const parts = s.split('.');
  if (parts.length !== 4) return undefined;
  const out = Buffer.alloc(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i]!;
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) return undefined;
    out[i] = Number(p);
  }
  return out;
}

function parseV6(s: string): Buffer | undefined {
  let text = s;
  let tail: Buffer | undefined;
  const dot = text.lastIndexOf(':');
  if (text.includes('.') && dot >= 0) {
    tail = parseV4(text.slice(dot + 1));
    if (!tail) return undefined;
    text = `${text.slice(0, dot + 1)}${tail.readUInt16BE(0).toString(16)}:${tail.readUInt16BE(2).toString(16)}`;
  }
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const head = halves[0] ? halves[0].split(':') : [];
  const rest = halves.length === 2 && halves[1] ? halves[1].split(':') : [];
  const fill = 8 - head.length - rest.length;
  if (halves.length === 2 ? fill < 1 : fill !== 0) return undefined;
  const groups = [...head, ...Array<string>(halves.length === 2 ? fill : 0).fill('0'), ...rest];
  const out = Buffer.alloc(16);
  for (let i = 0; i < 8; i++) {
    const g = groups[i]!;
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
    out.writeUInt16BE(parseInt(g, 16), 2 * i);
  }
  return out;
}

/**
 * ipcache LPM key of `cidr` (an address alone is a /32 or /128). Host bits are cleared so that two
 * spellings of one prefix are one key. Throws FlowctlError naming `where` for anything else.
 */
export function encodeIpcacheKey(cidr: string, where = 'ipcache entry'): Buffer {
  const slash = cidr.indexOf('/');
  const addrText = slash < 0 ? cidr : cidr.slice(0, slash);
  const v4 = parseV4(addrText);
  const addr = v4 ?? (addrText.includes(':') ? parseV6(addrText) : undefined);
  if (!addr) throw new FlowctlError('INVALID_ARGUMENT', `${where}: "${cidr}" is not an IP address or CIDR`);
  const max = addr.length * 8;
  const prefixText = slash < 0 ? String(max) : cidr.slice(slash + 1);
  const prefix = Number(prefixText);
  if (!/^\d{1,3}$/.test(prefixText) || prefix > max) {
    throw new FlowctlError('INVALID_ARGUMENT', `${where}: "${cidr}" has an invalid prefix length (0-${max})`);
  }
  const k = Buffer.alloc(IPCACHE_KEY.size);
  k.writeUInt32LE(32 + prefix, IPCACHE_KEY.prefixlen);
  k.writeUInt32LE(v4 ? 4 : 6, IPCACHE_KEY.family);
  for (let i = 0; i < addr.length; i++) {
    const keep = Math.max(0, Math.min(8, prefix - 8 * i));
    k[IPCACHE_KEY.addr + i] = addr[i]! & ((0xff00 >> keep) & 0xff);
  }
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

/** Writes `want` (hex key → [key, value]) into `map`, skipping rows that are already right. */
function writeAll(map: MapHandle, want: Map<string, [Buffer, Buffer]>): number {
  let written = 0;
  for (const [, [k, v]] of want) {
    const cur = map.lookup(k);
    if (cur && cur.equals(v)) continue;
    map.update(k, v);
    written++;
  }
  return written;
}

/** Deletes every key of `map` not in `want`. */
function prune(map: MapHandle, want: Map<string, [Buffer, Buffer]>): number {
  let deleted = 0;
  for (const k of map.keys()) {
    if (want.has(k.toString('hex'))) continue;
    if (map.delete(k)) deleted++;
  }
  return deleted;
}

function checkU32(n: number, what: string, min = 0): void {
  if (!Number.isInteger(n) || n < min || n > 0xffffffff) {
    throw new FlowctlError('INVALID_ARGUMENT', `${what}: ${n} is not an integer in ${min}..4294967295`);
  }
}

function checkEntry(e: PolicyEntry, i: number): void {
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
  if (e.direction !== 'ingress' && e.direction !== 'egress') {
    throw new FlowctlError('INVALID_ARGUMENT', `${where}: direction "${String(e.direction)}" is not ingress or egress`);
  }
}

/**
 * Replaces the `policy` and `policy_enforce` maps with `compiled` and records its revision.
 * Validates everything before the first write, so a bad policy changes nothing.
 */
export function writePolicyMaps(maps: PolicyMaps, compiled: CompiledPolicy): WriteStats {
  const rows = new Map<string, [Buffer, Buffer]>();
  compiled.entries.forEach((e, i) => {
    checkEntry(e, i);
    const k = encodePolicyKey(e);
    const hex = k.toString('hex');
    const prev = rows.get(hex);
    // Two rows for one key: the compiler should not emit them, but if it does, deny wins.
    if (prev && prev[1].readUInt8(POLICY_VALUE.deny) === 1) return;
    if (prev && !e.deny) return;
    rows.set(hex, [k, encodePolicyValue(e.deny, e.ruleRef)]);
  });
  const enforce = new Map<string, [Buffer, Buffer]>();
  for (const [identity, dirs] of compiled.enforced) {
    checkU32(identity, 'enforced identity', 1);
    if (!dirs.ingress && !dirs.egress) continue;
    const k = u32(identity);
    enforce.set(k.toString('hex'), [k, encodeEnforce(dirs)]);
  }
  checkU32(compiled.revision, 'policy revision');

  // New rows before new enforcement bits (an endpoint becoming enforced finds its allow rows in
  // place); stale enforcement bits removed before stale rows (an endpoint leaving enforcement
  // never sees its allow rows vanish while still enforced).
  const written = writeAll(maps.policy, rows) + writeAll(maps.policyEnforce, enforce);
  const deleted = prune(maps.policyEnforce, enforce) + prune(maps.policy, rows);
  bumpEpoch(maps.config, BigInt(compiled.revision));
  return { written, deleted };
}

/**
 * Replaces the ipcache with `entries` (endpoint IPs as addresses or /32, /128; CIDR identities as
 * prefixes). When two entries name the same prefix the first wins. With `config`, bumps the epoch
 * so that connections look their identities up again.
 */
export function writeIpcache(
  map: MapHandle,
  entries: readonly { cidr: string; identity: number }[],
  config?: MapHandle,
): WriteStats {
  const want = new Map<string, [Buffer, Buffer]>();
  entries.forEach((ent, i) => {
    const where = `ipcache entry ${i}`;
    checkU32(ent.identity, `${where} (${ent.cidr}) identity`, 1);
    const k = encodeIpcacheKey(ent.cidr, where);
    const hex = k.toString('hex');
    if (!want.has(hex)) want.set(hex, [k, encodeIpcacheValue(ent.identity)]);
  });
  const stats = { written: writeAll(map, want), deleted: prune(map, want) };
  if (config) bumpEpoch(config);
  return stats;
}

/** Names used by the loader (kernel.ts). */
export function writePolicy(maps: PolicyMaps, compiled: CompiledPolicy): WriteStats {
  return writePolicyMaps(maps, compiled);
}

export function writeIdentities(maps: PolicyMaps, entries: readonly { cidr: string; identity: number }[]): WriteStats {
  return writeIpcache(maps.ipcache, entries, maps.config);
}
