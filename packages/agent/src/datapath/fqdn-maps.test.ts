import { describe, expect, it } from 'vitest';
import { MIN_FQDN_IDENTITY, wireNameHash } from '@flowctl/policy';
import { FqdnMapWriter } from './fqdn-maps.js';
import type { MapHandle } from './policy-maps.js';

class MemMap implements MapHandle {
  readonly m = new Map<string, Buffer>();
  lookup(k: Buffer): Buffer | undefined {
    const v = this.m.get(k.toString('hex'));
    return v && Buffer.from(v);
  }
  update(k: Buffer, v: Buffer): void {
    this.m.set(k.toString('hex'), Buffer.from(v));
  }
  delete(k: Buffer): boolean {
    return this.m.delete(k.toString('hex'));
  }
  keys(): Buffer[] {
    return [...this.m.keys()].map((h) => Buffer.from(h, 'hex'));
  }
}

describe('FqdnMapWriter.learn: what the kernel stores, from user space', () => {
  const nameHash = wireNameHash('api-v2.allowed.test');

  it('stores an address per endpoint as the kernel reads it back, ORs selectors, keeps the later expiry', () => {
    const w = new FqdnMapWriter({ names: new MemMap(), ips: new MemMap() });
    expect(w.learn({ family: 4, endpoint: '10.1.0.2', addr: '192.0.2.1', expiresNs: 100n, bits: 1n, nameHash })).toBe(true);
    expect(w.learn({ family: 4, endpoint: '10.1.0.2', addr: '192.0.2.1', expiresNs: 50n, bits: 1n, nameHash })).toBe(false);
    expect(w.learn({ family: 4, endpoint: '10.1.0.2', addr: '192.0.2.1', expiresNs: 80n, bits: 2n, nameHash })).toBe(true);
    expect(w.learn({ family: 6, endpoint: 'fd00::2', addr: '2001:db8::1', expiresNs: 70n, bits: 1n, nameHash })).toBe(true);
    expect(w.learned()).toEqual([
      { family: 4, endpoint: '10.1.0.2', addr: '192.0.2.1', expiresNs: 100n, selectors: [MIN_FQDN_IDENTITY, MIN_FQDN_IDENTITY + 1], nameHash },
      { family: 6, endpoint: 'fd00::2', addr: '2001:db8::1', expiresNs: 70n, selectors: [MIN_FQDN_IDENTITY], nameHash },
    ]);
  });

  it('is expired and limited per name by the same sweep as the kernel\'s entries', () => {
    const w = new FqdnMapWriter({ names: new MemMap(), ips: new MemMap() });
    for (const [addr, expiresNs] of [['192.0.2.1', 100n], ['192.0.2.2', 300n], ['192.0.2.3', 200n]] as const) {
      w.learn({ family: 4, endpoint: '10.1.0.2', addr, expiresNs, bits: 1n, nameHash });
    }
    expect(w.sweep(150n, 1)).toBe(2);
    expect(w.learned().map((a) => a.addr)).toEqual(['192.0.2.2']);
  });

  it('refuses an address of the other family', () => {
    const w = new FqdnMapWriter({ names: new MemMap(), ips: new MemMap() });
    expect(() => w.learn({ family: 4, endpoint: '10.1.0.2', addr: '2001:db8::1', expiresNs: 1n, bits: 1n, nameHash })).toThrow(/not an IPv4 address/);
  });
});
