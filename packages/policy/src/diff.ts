// What changes in the kernel maps from one compiled policy to the next. A reload usually changes a
// few policies while the maps hold hundreds of thousands of rows; a writer that applies only the
// difference, from its own record of what it wrote, needs no read-back of the maps and one syscall
// (or one batch) per changed row instead of two per row.
import type { CompiledPolicy, PolicyEntry } from './compile.js';

export interface EnforceBits {
  ingress: boolean;
  egress: boolean;
}

export interface PolicyDiff {
  /** Rows whose key is new or whose value (deny, ruleRef) changed: write these first. */
  upserts: PolicyEntry[];
  /** Rows whose key is gone (as they were in `prev`): delete these last. */
  deletes: PolicyEntry[];
  /** Identities whose enforcement bits are new or changed (never both false). */
  enforceUpserts: { identity: number; dirs: EnforceBits }[];
  /** Identities no longer enforced in either direction. */
  enforceDeletes: number[];
}

const P24 = 2 ** 24;

// Rows keyed by (endpoint identity, direction) then by (peer, port, proto) as one number each;
// the value is ruleRef * 2 + deny. Peer identities stay below 2^29 (CIDR identities start at
// 2^24), so the inner key stays an exact integer.
type RowIndex = Map<number, Map<number, number>>;

function index(entries: readonly PolicyEntry[]): RowIndex {
  const out: RowIndex = new Map();
  let lastOuter = -1;
  let inner: Map<number, number> | undefined;
  for (const e of entries) {
    const outer = e.endpointIdentity * 2 + (e.direction === 'egress' ? 1 : 0);
    if (outer !== lastOuter || !inner) {
      inner = out.get(outer);
      if (!inner) out.set(outer, (inner = new Map()));
      lastOuter = outer;
    }
    const key = e.peerIdentity * P24 + e.port * 256 + e.proto;
    const v = e.ruleRef * 2 + (e.deny ? 1 : 0);
    const prev = inner.get(key);
    // Two rows for one key: deny wins, as the map writer does.
    if (prev === undefined || ((prev & 1) === 0 && (v & 1) === 1)) inner.set(key, v);
  }
  return out;
}

function entry(outer: number, key: number, v: number): PolicyEntry {
  return {
    endpointIdentity: Math.floor(outer / 2),
    peerIdentity: Math.floor(key / P24),
    port: Math.floor(key / 256) % 65536,
    proto: key % 256,
    direction: outer % 2 ? 'egress' : 'ingress',
    deny: (v & 1) === 1,
    ruleRef: Math.floor(v / 2),
  };
}

/**
 * The changes that turn the maps written for `prev` (nothing, when undefined) into those for
 * `next`. Applying upserts, then enforceUpserts, then enforceDeletes, then deletes keeps the
 * order writePolicyMaps documents: no moment denies what both policies allow.
 */
export function diffCompiled(prev: CompiledPolicy | undefined, next: CompiledPolicy): PolicyDiff {
  const before = index(prev?.entries ?? []);
  const after = index(next.entries);
  const upserts: PolicyEntry[] = [];
  const deletes: PolicyEntry[] = [];
  for (const [outer, rows] of after) {
    const old = before.get(outer);
    for (const [key, v] of rows) if (old?.get(key) !== v) upserts.push(entry(outer, key, v));
  }
  for (const [outer, rows] of before) {
    const now = after.get(outer);
    for (const [key, v] of rows) if (!now?.has(key)) deletes.push(entry(outer, key, v));
  }
  const on = (d: EnforceBits | undefined): boolean => d !== undefined && (d.ingress || d.egress);
  const enforceUpserts: PolicyDiff['enforceUpserts'] = [];
  const enforceDeletes: number[] = [];
  for (const [identity, dirs] of next.enforced) {
    if (!on(dirs)) continue;
    const old = prev?.enforced.get(identity);
    if (!on(old) || old!.ingress !== dirs.ingress || old!.egress !== dirs.egress) enforceUpserts.push({ identity, dirs: { ingress: dirs.ingress, egress: dirs.egress } });
  }
  for (const [identity, dirs] of prev?.enforced ?? []) if (on(dirs) && !on(next.enforced.get(identity))) enforceDeletes.push(identity);
  return { upserts, deletes, enforceUpserts, enforceDeletes };
}
