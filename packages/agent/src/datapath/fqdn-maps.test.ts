import { describe, expect, it } from 'vitest';
import { MIN_FQDN_IDENTITY, kernelMatch, wireNameHash } from '@flowctl/policy';
import { FQDN_GLOB } from './abi.js';
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

describe('FqdnMapWriter: patterns the kernel matches as text (fqdn_globs)', () => {
  const glob = (text: string, n: number) => ({ identity: MIN_FQDN_IDENTITY + n, selector: { matchPattern: text }, kernel: kernelMatch({ matchPattern: text }) });
  const rows = (m: MemMap) => {
    const out: [number, bigint, string][] = [];
    for (let i = 0; ; i++) {
      const k = Buffer.alloc(4);
      k.writeUInt32LE(i);
      const v = m.lookup(k);
      if (!v || !v.readUInt32LE(FQDN_GLOB.len)) return out;
      out.push([i, v.readBigUInt64LE(FQDN_GLOB.bits), v.subarray(FQDN_GLOB.pat, FQDN_GLOB.pat + v.readUInt32LE(FQDN_GLOB.len)).toString('latin1')]);
    }
  };

  it('writes them packed from index 0 with their bits; a pattern that leaves is gone before the rows change', () => {
    const globs = new MemMap();
    const names = new MemMap();
    const w = new FqdnMapWriter({ names, ips: new MemMap(), globs });
    const a = [glob('api-*.x.test', 0), { identity: MIN_FQDN_IDENTITY + 1, selector: { matchName: 'n.test' }, kernel: kernelMatch({ matchName: 'n.test' }) }, glob('*.*.y.test', 2)];
    w.retire(undefined, a);
    w.teach(a);
    expect(rows(globs)).toEqual([[0, 1n, 'api-*.x.test'], [1, 4n, '*.*.y.test']]);
    expect(names.keys()).toHaveLength(1);
    const b = [a[2]!];
    w.retire(a, b);
    expect(rows(globs)).toEqual([[0, 4n, '*.*.y.test']]);
    w.teach(b);
    expect(rows(globs)).toEqual([[0, 4n, '*.*.y.test']]);
  });
});
