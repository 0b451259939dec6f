// Security identities. Reserved numbers are Hubble's (cilium pkg/identity/numericidentity.go);
// label identities are a hash of the canonical label list, so every node computes the same number
// from the same cluster-wide endpoints file without talking to the others.

import { MIN_ALLOCATED_IDENTITY, RESERVED_IDENTITIES, reservedIdentityName } from '@flowctl/flow/identity';

export { RESERVED_IDENTITIES, reservedIdentityName };
export type { ReservedIdentityName } from '@flowctl/flow/identity';

/** Labels a flow shows for a reserved identity, e.g. `['reserved:world']`. */
export function reservedLabels(id: number): string[] {
  const name = reservedIdentityName(id);
  return name && name !== 'unknown' ? [`reserved:${name}`] : [];
}

/** Cilium's cluster-local identity range for label identities. */
export const MIN_LABEL_IDENTITY = MIN_ALLOCATED_IDENTITY;
export const MAX_LABEL_IDENTITY = 65535;
/**
 * CIDR identities live in Cilium's "local" scope (bit 24 set), disjoint from label identities, so
 * a number tells which kind it is.
 */
export const MIN_CIDR_IDENTITY = 1 << 24;
/**
 * toFQDNs selector identities: above any CIDR identity, below 2^29 (policy-maps.ts packs peers
 * below it). At most MAX_FQDN_SELECTORS: the kernel keeps which ones an address was learned
 * through as bits of a u64.
 */
export const MIN_FQDN_IDENTITY = 1 << 28;
export const MAX_FQDN_SELECTORS = 64;

const LABEL_RANGE = MAX_LABEL_IDENTITY - MIN_LABEL_IDENTITY + 1;

/** FNV-1a 32-bit over UTF-16 code units; stable across Node versions and machines. */
export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

export function canonicalLabels(labelList: readonly string[]): string {
  return [...labelList].sort().join('\n');
}

/**
 * Identity of a label set: the hash slot in [256, 65535], moved forward past numbers in `taken`
 * (collision resolution). Callers that assign many sets at once must visit them in a deterministic
 * order (see `assignLabelIdentities`) so that every node resolves collisions the same way.
 */
export function identityForLabels(labelList: readonly string[], taken?: ReadonlySet<number>): number {
  let slot = fnv1a(canonicalLabels(labelList)) % LABEL_RANGE;
  if (taken) {
    for (let i = 0; i < LABEL_RANGE && taken.has(MIN_LABEL_IDENTITY + slot); i++) slot = (slot + 1) % LABEL_RANGE;
  }
  return MIN_LABEL_IDENTITY + slot;
}

/**
 * Assigns identities to many label sets. Sets are visited in order of (hash slot, canonical text),
 * so the result depends only on the set of label sets, never on file order.
 */
export function assignLabelIdentities(labelSets: Iterable<readonly string[]>): Map<string, number> {
  const byKey = new Map<string, number>();
  for (const l of labelSets) byKey.set(canonicalLabels(l), fnv1a(canonicalLabels(l)) % LABEL_RANGE);
  if (byKey.size > LABEL_RANGE) throw new RangeError(`${byKey.size} label sets exceed the ${LABEL_RANGE} label identities`);
  const order = [...byKey.entries()].sort((a, b) => a[1] - b[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const taken = new Set<number>();
  const out = new Map<string, number>();
  for (const [key, slot0] of order) {
    let slot = slot0;
    while (taken.has(MIN_LABEL_IDENTITY + slot)) slot = (slot + 1) % LABEL_RANGE;
    taken.add(MIN_LABEL_IDENTITY + slot);
    out.set(key, MIN_LABEL_IDENTITY + slot);
  }
  return out;
}
