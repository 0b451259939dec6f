// Reserved security identities (cilium pkg/identity/numericidentity.go), indexed by number.
export const RESERVED_IDENTITIES: readonly string[] = [
  'unknown', 'host', 'world', 'unmanaged', 'health', 'init', 'remote-node', 'kube-apiserver', 'ingress',
  'world-ipv4', 'world-ipv6',
];

export function identityName(id: number): string | undefined {
  return RESERVED_IDENTITIES[id];
}
