import { describe, expect, it } from 'vitest';
import { DnsCache } from './dns-cache.js';

describe('DnsCache', () => {
  it('returns learned names sorted, shares the array between flows, and expires them', () => {
    let now = 1_000_000;
    const c = new DnsCache(10, () => now);
    c.learn('web.shop.test.', ['10.203.1.20'], 300);
    c.learn('api.shop.test.', ['10.203.1.20', '10.203.1.21'], 30);
    const a = c.names('10.203.1.20');
    expect(a).toEqual(['api.shop.test', 'web.shop.test']);
    expect(c.names('10.203.1.20')).toBe(a);
    expect(c.names('10.203.9.9')).toEqual([]);
    now += 61_000; // api's 60 s floor has passed, web's 300 s has not
    expect(c.names('10.203.1.20')).toEqual(['web.shop.test']);
    expect(c.names('10.203.1.21')).toEqual([]);
  });

  it('stays bounded', () => {
    const c = new DnsCache(2);
    c.learn('a.', ['1.1.1.1'], 60);
    c.learn('b.', ['2.2.2.2'], 60);
    c.learn('c.', ['3.3.3.3'], 60);
    expect(c.names('1.1.1.1')).toEqual([]);
    expect(c.names('3.3.3.3')).toEqual(['c']);
  });
});
