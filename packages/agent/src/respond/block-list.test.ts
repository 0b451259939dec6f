import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { FakeDatapath } from '../testing/fake-datapath.js';
import type { KernelBlock } from '../datapath/datapath.js';
import { parseBlockCidr } from '@flowctl/flow/block';
import { BlockList } from './block-list.js';
import { formatIp, parsePrefix, type Prefix } from '@flowctl/flow/ip';

const formatPrefix = (p: Prefix) => `${formatIp(p.v6, p.addr)}/${p.bits}`;

/** A datapath that records what the list writes into the XDP maps. */
class Recorder extends FakeDatapath {
  readonly kernel = new Map<number, KernelBlock>();
  writeBlock(e: KernelBlock): void {
    this.kernel.set(e.id, { ...e });
  }
  deleteBlock(e: KernelBlock): void {
    this.kernel.delete(e.id);
  }
  /** Isolated address -> entry id, as the kernel's `isolated` map. */
  readonly isolated = new Map<string, number>();
  readonly ended: number[] = [];
  writeIsolation(e: KernelBlock): void {
    this.isolated.set(formatPrefix(e.prefix), e.id);
  }
  deleteIsolation(e: KernelBlock): void {
    this.isolated.delete(formatPrefix(e.prefix));
  }
  endIsolation(id: number): void {
    this.ended.push(id);
  }
  blockCounts() {
    return new Map([...this.kernel.keys()].map((id) => [id, { packets: 10n * BigInt(id), bytes: 1000n }]));
  }
}

afterEach(() => vi.useRealTimers());

describe('BlockList', () => {
  it('canonicalises CIDRs, mirrors entries into the datapath and lists them with their counters', () => {
    const dp = new Recorder();
    const l = new BlockList();
    l.add('203.0.113.77/24', { reason: 'scanner' });
    l.bindDatapath(dp); // entries listed before the datapath came go to it now
    const b = l.add('2001:DB8::1');
    expect(b.cidr).toBe('2001:db8::1/128');
    expect([...dp.kernel.values()].map((e) => e.prefix.bits).sort()).toEqual([128, 24]);
    expect(l.list()).toMatchObject([
      { cidr: '2001:db8::1/128', origin: 'cli', packets: 20n },
      { cidr: '203.0.113.0/24', reason: 'scanner', packets: 10n },
    ]);
  });

  it('mirrors an isolated pod to TC even without XDP, drops only with it, and removes it by pod name', () => {
    const dp = new Recorder();
    const l = new BlockList();
    l.bindDatapath(dp, false);
    l.add('10.0.0.9', { isolate: 'shop/scanner-1', origin: 'alert:port-scan' });
    l.add('203.0.113.0/24');
    expect([...dp.isolated]).toEqual([['10.0.0.9/32', 1]]);
    expect(dp.kernel.size).toBe(0);
    expect(() => l.add('10.1.0.0/16', { isolate: 'shop/x' })).toThrow('isolate shop/x: 10.1.0.0/16 is not one address');
    expect(() => l.add('10.1.0.1', { isolate: 'not a pod' })).toThrow('isolate "not a pod": want a pod\'s namespace/name');
    // The same address blocked by hand is an entry of its own: the isolation is the pod's.
    l.bindDatapath(dp, true);
    l.add('10.0.0.9');
    expect([dp.isolated.size, dp.kernel.size]).toEqual([1, 2]);
    expect(l.remove('shop/scanner-1').cidr).toBe('10.0.0.9/32');
    expect([dp.isolated.size, dp.kernel.size, dp.ended]).toEqual([0, 2, [1]]);
    expect(() => l.remove('shop/scanner-1')).toThrow('shop/scanner-1 is not an isolated pod');
    // By address: the drop entry first, then an isolation made for or holding that address.
    l.add('10.0.0.8', { isolate: 'shop/scanner-2' });
    expect(l.remove('10.0.0.9').isolate).toBeUndefined();
    expect(l.remove('10.0.0.8').isolate).toBe('shop/scanner-2');
    l.close();
  });

  it('keys an isolation by its pod: it follows the pod\'s addresses, and not an address a new pod took', () => {
    const pods = new Map<string, string[]>([['shop/scanner-1', ['10.0.0.9', 'fd00::9']]]);
    const dp = new Recorder();
    const l = new BlockList();
    l.resolvePodsWith((pod) => pods.get(pod)?.map((ip) => parsePrefix(ip)!));
    l.bindDatapath(dp, false);
    const e = l.add('10.0.0.9', { isolate: 'shop/scanner-1' });
    // Every address of the pod, whichever the alert named: its IPv6 egress is isolated too.
    expect([...dp.isolated]).toEqual([['10.0.0.9/32', e.id], ['fd00::9/128', e.id]]);
    expect(l.list()[0]!.addresses.map(formatPrefix)).toEqual(['10.0.0.9/32', 'fd00::9/128']);
    // The pod is deleted and a new pod gets its address: nothing is isolated, the entry stays.
    pods.delete('shop/scanner-1');
    pods.set('shop/web-2', ['10.0.0.9']);
    l.podsChanged();
    expect(dp.isolated.size).toBe(0);
    expect(l.list()).toMatchObject([{ isolate: 'shop/scanner-1', cidr: '10.0.0.9/32', addresses: [] }]);
    // The pod comes back (a StatefulSet's, same name) at another address: isolated there.
    pods.set('shop/scanner-1', ['10.0.0.12']);
    l.podsChanged();
    expect([...dp.isolated]).toEqual([['10.0.0.12/32', e.id]]);
    expect(l.remove('10.0.0.12').isolate).toBe('shop/scanner-1');
    expect([dp.isolated.size, dp.ended]).toEqual([0, [e.id]]);
    l.close();
  });

  it('restores an isolation by pod after a restart: a new pod with the old address is not isolated', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fca-isolate-'));
    const file = join(dir, 'blocks.json');
    const a = new BlockList({ stateFile: file });
    a.add('10.0.0.9', { isolate: 'shop/scanner-1', origin: 'alert:port-scan' });
    a.close();
    const dp = new Recorder();
    const b = new BlockList({ stateFile: file });
    expect(b.load()).toBe(1);
    b.resolvePodsWith((pod) => (pod === 'shop/web-2' ? [parsePrefix('10.0.0.9')!] : undefined));
    b.bindDatapath(dp, false);
    expect(dp.isolated.size).toBe(0);
    expect(b.list()).toMatchObject([{ isolate: 'shop/scanner-1', addresses: [] }]);
    b.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('replaces the TTL and reason of a listed CIDR, keeping its id and creation time', () => {
    const dp = new Recorder();
    const l = new BlockList({ nowMs: () => 1000, nowNs: () => 5_000_000_000n });
    l.bindDatapath(dp);
    const a = l.add('10.0.0.0/8', { reason: 'a' });
    const b = l.add('10.1.2.3/8', { reason: 'b', ttlMs: 60_000, origin: 'alert:port-scan' });
    expect(b).toMatchObject({ id: a.id, createdMs: 1000, reason: 'b', origin: 'alert:port-scan', expiresMs: 61_000, expiresNs: 65_000_000_000n });
    expect(dp.kernel.get(a.id)?.expiresNs).toBe(65_000_000_000n);
    expect(l.size).toBe(1);
  });

  it('refuses bad CIDRs and TTLs with one line, and removes with NOT_FOUND for unknown ones', () => {
    const l = new BlockList();
    expect(() => l.add('10.0.0.256')).toThrow(/^invalid CIDR "10.0.0.256": want an IPv4 or IPv6 address or prefix/);
    expect(() => l.add('10.0.0.0/24', { ttlMs: 0 })).toThrow(/invalid TTL 0 ms/);
    expect(() => l.add('10.0.0.0/24', { ttlMs: -5 })).toThrow(/invalid TTL/);
    expect(() => l.remove('10.9.0.0/16')).toThrow(expect.objectContaining({ code: 'NOT_FOUND', message: '10.9.0.0/16 is not in the drop list' }));
    const full = new BlockList({ maxEntries: 1 });
    full.add('10.0.0.1');
    expect(() => full.add('10.0.0.2')).toThrow(/full \(1 entries\)/);
  });

  it('removes an entry at its expiry, and still names it for late drop events', () => {
    vi.useFakeTimers();
    const dp = new Recorder();
    const l = new BlockList();
    l.bindDatapath(dp);
    const e = l.add('192.0.2.0/24', { ttlMs: 2000, reason: 'short' });
    l.add('198.51.100.0/24', { ttlMs: 10_000 });
    vi.advanceTimersByTime(1999);
    expect(l.size).toBe(2);
    vi.advanceTimersByTime(2);
    expect(l.list().map((x) => x.cidr)).toEqual(['198.51.100.0/24']);
    expect(dp.kernel.has(e.id)).toBe(false);
    expect(l.byEntryId(e.id)).toMatchObject({ cidr: '192.0.2.0/24', reason: 'short' });
    vi.advanceTimersByTime(8000);
    expect(l.size).toBe(0);
    l.close();
  });
});

describe('BlockList entries of blocklist files (--block-from-lists)', () => {
  it('replaces a list\'s entries on reload, leaves others\' alone and keeps none in the state file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fca-lists-'));
    const file = join(dir, 'blocks.json');
    const dp = new Recorder();
    const l = new BlockList({ stateFile: file, maxEntries: 4 });
    l.bindDatapath(dp);
    l.add('192.0.2.0/24', { reason: 'by hand' });
    const p = (cidr: string) => parseBlockCidr(cidr).prefix;
    expect(l.setListed('/etc/lists/drop.txt', [p('192.0.2.0/24'), p('198.51.100.0/24'), p('2001:db8::/32')])).toEqual({ entries: 2, refused: 0 });
    expect(l.list().map((e) => [e.cidr, e.reason, e.origin])).toEqual([
      ['192.0.2.0/24', 'by hand', 'cli'],
      ['198.51.100.0/24', 'drop.txt', 'list:/etc/lists/drop.txt'],
      ['2001:db8::/32', 'drop.txt', 'list:/etc/lists/drop.txt'],
    ]);
    // Reloaded: what left the file leaves the drop list (and the kernel); over the limit is counted.
    const r = l.setListed('/etc/lists/drop.txt', [p('198.51.100.0/24'), p('203.0.113.0/24'), p('203.0.114.0/24'), p('203.0.115.0/24')]);
    expect(r).toMatchObject({ entries: 3, refused: 1, firstError: expect.stringMatching(/full/) });
    expect(l.list().map((e) => e.cidr)).toEqual(['192.0.2.0/24', '198.51.100.0/24', '203.0.113.0/24', '203.0.114.0/24']);
    expect(dp.kernel.size).toBe(4);
    l.close();
    expect(JSON.parse(readFileSync(file, 'utf8')).entries.map((e: { cidr: string }) => e.cidr)).toEqual(['192.0.2.0/24']);
    rmSync(dir, { recursive: true, force: true });
  });
});

describe('BlockList state file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fca-blocks-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('keeps the entries across a restart with what is left of their TTL; expired ones are not restored', () => {
    const file = join(dir, 'blocks.json');
    let now = 1_000_000;
    const clocks = { nowMs: () => now, nowNs: () => BigInt(now) * 1_000_000n };
    const a = new BlockList({ stateFile: file, ...clocks });
    a.add('192.0.2.0/24', { ttlMs: 60_000, reason: 'scanner', origin: 'alert:port-scan' });
    a.add('198.51.100.7', { ttlMs: 5_000 });
    a.add('2001:db8::/32', { reason: 'forever' });
    a.close(); // writes what a pending save would have
    now += 10_000;
    const b = new BlockList({ stateFile: file, ...clocks });
    expect(b.load()).toBe(2);
    expect(b.list()).toMatchObject([
      { cidr: '192.0.2.0/24', reason: 'scanner', origin: 'alert:port-scan', createdMs: 1_000_000, expiresMs: 1_060_000, expiresNs: 1_060_000_000_000n },
      { cidr: '2001:db8::/32', reason: 'forever', expiresNs: 0n },
    ]);
    b.remove('192.0.2.0/24');
    b.remove('2001:db8::/32');
    b.close();
    expect(existsSync(file)).toBe(false); // an empty list leaves no file
  });

  it('starts empty, with one warning, from a state file it cannot read', () => {
    const file = join(dir, 'bad.json');
    writeFileSync(file, '{"version":1,"entries":[{"cidr":"10.0.0.0/99"},');
    const warnings: string[] = [];
    const l = new BlockList({ stateFile: file, warn: (m) => warnings.push(m) });
    expect(l.load()).toBe(0);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/^drop list state .*bad\.json unreadable, starting empty: /);
    writeFileSync(file, '{"version":1,"entries":[{"cidr":"10.0.0.0/99"},{"cidr":"10.0.0.1","reason":"","origin":"cli","createdMs":1}]}');
    expect(l.load()).toBe(1);
    expect(warnings[1]).toMatch(/"10.0.0.0\/99" skipped: invalid CIDR/);
    l.close();
  });
});

describe('Agent with --xdp-interface', () => {
  it('refuses it in --replay mode, where there is no kernel datapath', async () => {
    const { Agent } = await import('../agent.js');
    const agent = new Agent({ replay: '/nonexistent.json', xdpInterfaces: ['eth0'], listenAddress: '', metricsAddress: '', detectOff: true, log: { info() {}, warn() {}, error() {} } });
    await expect(agent.start()).rejects.toThrow('--xdp-interface needs the kernel datapath: it cannot be used with --replay');
    await agent.stop();
  });
});
