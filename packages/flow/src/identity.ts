// Cilium's reserved security identities (pkg/identity/numericidentity.go). Compact output prints
// them as `(name)`; `--identity world` resolves a name to its number.

export const RESERVED_IDENTITIES = {
  unknown: 0,
  host: 1,
  world: 2,
  unmanaged: 3,
  health: 4,
  init: 5,
  'remote-node': 6,
  'kube-apiserver': 7,
  ingress: 8,
  'world-ipv4': 9,
  'world-ipv6': 10,
} as const;

export type ReservedIdentityName = keyof typeof RESERVED_IDENTITIES;

/** Identities at or above this value are allocated from label sets (cluster-local). */
export const MIN_ALLOCATED_IDENTITY = 256;

const byNumber = new Map<number, ReservedIdentityName>(
  Object.entries(RESERVED_IDENTITIES).map(([k, v]) => [v, k as ReservedIdentityName]),
);

/** The reserved name of an identity number, or undefined for an allocated identity. */
export function reservedIdentityName(id: number): ReservedIdentityName | undefined {
  return byNumber.get(id);
}

/** The number of a reserved identity name (`world`, also accepted as `reserved:world`). */
export function reservedIdentityNumber(name: string): number | undefined {
  const n = name.startsWith('reserved:') ? name.slice('reserved:'.length) : name;
  return Object.prototype.hasOwnProperty.call(RESERVED_IDENTITIES, n) ? RESERVED_IDENTITIES[n as ReservedIdentityName] : undefined;
}

/** True for the reserved range (0–255), including numbers without a name. */
export function isReservedIdentity(id: number): boolean {
  return id >= 0 && id < MIN_ALLOCATED_IDENTITY;
}

/** `--identity` value: a number or a reserved name. Undefined when it is neither. */
export function parseIdentity(s: string): number | undefined {
  if (/^[0-9]+$/.test(s)) {
    const n = Number(s);
    return n <= 0xffffffff ? n : undefined;
  }
  return reservedIdentityNumber(s);
}
