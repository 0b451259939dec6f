import { describe, expect, it } from 'vitest';
import { isReservedIdentity, parseIdentity, reservedIdentityName, reservedIdentityNumber } from './identity.js';

describe('reserved identities', () => {
  it.each([
    ['host', 1], ['world', 2], ['unmanaged', 3], ['health', 4], ['init', 5], ['remote-node', 6],
    ['kube-apiserver', 7], ['ingress', 8], ['world-ipv4', 9], ['world-ipv6', 10],
  ] as const)('%s is %i both ways', (name, n) => {
    expect(reservedIdentityNumber(name)).toBe(n);
    expect(reservedIdentityName(n)).toBe(name);
  });

  it('parses --identity values', () => {
    expect(parseIdentity('reserved:world')).toBe(2);
    expect(parseIdentity('48211')).toBe(48211);
    expect(parseIdentity('nope')).toBeUndefined();
    expect(parseIdentity('toString')).toBeUndefined();
    expect(parseIdentity('4294967296')).toBeUndefined();
    expect(reservedIdentityName(48211)).toBeUndefined();
    expect(isReservedIdentity(11)).toBe(true);
    expect(isReservedIdentity(256)).toBe(false);
  });
});
