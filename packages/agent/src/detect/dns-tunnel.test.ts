import { describe, expect, it } from 'vitest';
import type { Finding } from './detector.js';
import { DnsTunnelDetector, entropy } from './dns-tunnel.js';
import { a, blob, CLIENT, randomChars, Traffic } from './fixtures.js';

const NULL = 10, TXT = 16, SRV = 33, CNAME = 5;

/** A name the way iodine builds one: data in 63-character labels under the tunnel's domain. */
function tunnelName(chars: number, seed: number, domain = 't.fcd.test'): string {
  const data = randomChars(chars, seed);
  const labels = data.match(/.{1,63}/g)!;
  return `${labels.join('.')}.${domain}`;
}

/** Feeds each lookup's query and answer at `ms`, collecting findings with their times. */
class Feed {
  readonly t = new Traffic();
  readonly findings: Finding[] = [];
  readonly at: number[] = [];
  constructor(readonly d = new DnsTunnelDetector()) {}
  lookup(ms: number, name: string, o: Parameters<Traffic['lookup']>[1] = {}): void {
    const { query, answer } = this.t.lookup(name, o);
    for (const f of [query, answer]) {
      const out = this.d.observe(f, 1_700_000_000_000 + ms);
      for (const x of out ?? []) {
        this.findings.push(x);
        this.at.push(ms);
      }
    }
  }
}

describe('DnsTunnelDetector', () => {
  it('catches an iodine-like upload (240-character names, NULL queries) within the first seconds of data', () => {
    const f = new Feed();
    // 100 KB up: iodine carries ~150 bytes per query; ~700 queries over ~3 s.
    for (let i = 0; i < 700; i++) f.lookup(i * 4, tunnelName(240, i + 1), { qtype: NULL, answers: [blob(NULL, 20, i)] });
    expect(f.findings.length).toBeGreaterThanOrEqual(1);
    const first = f.findings[0]!;
    expect(first).toMatchObject({ kind: 'dns-tunnel', severity: 'high', target: 'fcd.test', source: { ip: CLIENT, endpoint: { namespace: 'shop', pod_name: 'client-7d9f8b6c5-bcdfg' } } });
    expect(f.at[0]).toBeLessThan(1000);
    expect(first.evidence).toMatchObject({ domain: 'fcd.test', shape: expect.arrayContaining(['long random names', 'text record types']) });
    expect(first.evidence.distinct_names).toBeGreaterThanOrEqual(20);
    expect(first.evidence.entropy_bits_per_char as number).toBeGreaterThan(4.5);
    expect((first.evidence.sample_names as string[])[0]).toMatch(/\.t\.fcd\.test$/);
    expect(first.summary).toMatch(/^possible DNS tunnel: 10\.231\.1\.10 \(shop\/client-7d9f8b6c5-bcdfg\) asked \d+ distinct names under fcd\.test in 60s/);
    // Updated at most every 5 s, not once per query.
    expect(f.findings.length).toBeLessThanOrEqual(2);
  });

  it('counts answer bytes from the packet length, past the 512-byte snippet (a download through big answers)', () => {
    const f = new Feed();
    // Short names (below the long-name bar), A queries (not a text type): only the answers carry data.
    for (let i = 0; i < 100; i++) f.lookup(i * 50, `${randomChars(16, i + 7)}.dl.evil.test`, { answers: Array.from({ length: 8 }, (_, k) => blob(NULL, 150, i * 8 + k)) });
    expect(f.findings).toHaveLength(1);
    const e = f.findings[0]!.evidence;
    expect(e.shape).toEqual(['big answers']);
    // 8 records of 162 bytes: ~1,300 bytes each, more than the 512-byte snippet holds.
    expect((e.answer_bytes as number) / (e.distinct_names as number)).toBeGreaterThan(1200);
  });

  it('sees a tunnel through TXT records with hex names (dnscat2-like)', () => {
    const f = new Feed();
    for (let i = 0; i < 200; i++) f.lookup(i * 100, `${randomChars(30, i + 3, '0123456789abcdef')}.c2.example`, { qtype: TXT, answers: [blob(TXT, 60, i)] });
    expect(f.findings.length).toBeGreaterThanOrEqual(1);
    expect(f.findings[0]!.evidence.shape).toEqual(['text record types']);
  });

  it('does not fire on ordinary lookups, CDN names, long service names or search-domain misses', () => {
    const f = new Feed();
    const ordinary = ['www.example.com', 'api.github.com', 'registry.npmjs.org', 'login.microsoftonline.com', 'www.google.com', 'fonts.gstatic.com', 'pypi.org', 'deb.debian.org'];
    const cdn = Array.from({ length: 60 }, (_, i) => `d${randomChars(13, i + 100, '0123456789abcdefghijklmnopqrstuvwxyz')}.cloudfront.net`);
    const akamai = Array.from({ length: 40 }, (_, i) => `e${1000 + i * 37}.dscb.akamaiedge.net`);
    const services = ['_ldap._tcp.dc._msdcs.corp.example', '_kerberos._tcp.dc._msdcs.corp.example', '_ldap._tcp.default-first-site-name._sites.dc._msdcs.corp.example',
      '_gc._tcp.corp.example', '_kpasswd._udp.corp.example', ...Array.from({ length: 25 }, (_, i) => `ws-${String(i).padStart(4, '0')}.office.corp.example`)];
    const search = Array.from({ length: 40 }, (_, i) => `svc-${i}.payments`).flatMap((n) => [`${n}.shop.svc.cluster.local`, `${n}.svc.cluster.local`, `${n}.cluster.local`]);
    let ms = 0;
    for (let round = 0; round < 5; round++) {
      for (const n of ordinary) f.lookup((ms += 25), n, { answers: [a('192.0.2.1'), a('192.0.2.2')] });
      for (const n of cdn) f.lookup((ms += 25), n, { answers: Array.from({ length: 8 }, (_, k) => a(`198.51.100.${k + 1}`)) });
      for (const n of akamai) f.lookup((ms += 25), n, { answers: [a('203.0.113.7')] });
      for (const n of services) f.lookup((ms += 25), n, { qtype: n.startsWith('_') ? SRV : 1, answers: [blob(n.startsWith('_') ? SRV : 1, n.startsWith('_') ? 40 : 4, ms)] });
      for (const n of search) f.lookup((ms += 25), n);
      // Mail server: SPF and DKIM TXT for many sender domains, one or two names each.
      for (let i = 0; i < 30; i++) f.lookup((ms += 25), `sel${round}._domainkey.sender${i}.example`, { qtype: TXT, answers: [blob(TXT, 400, i)] });
      f.lookup((ms += 25), 'www.example.com', { qtype: CNAME, answers: [blob(CNAME, 20)] });
    }
    expect(ms).toBeLessThan(60_000); // all of it inside one window
    expect(f.findings).toEqual([]);
  });

  it('does not fire on an idle tunnel: one short keep-alive query every 4 s', () => {
    const f = new Feed();
    for (let i = 0; i < 60; i++) f.lookup(i * 4000, `r${randomChars(12, i + 1)}.t.fcd.test`, { qtype: NULL, answers: [blob(NULL, 4, i)] });
    expect(f.findings).toEqual([]);
  });

  it('keeps its word on options: a domain to ignore, a lower bar, bounded state', () => {
    const ignoring = new Feed(new DnsTunnelDetector({ ignoreDomains: ['fcd.test'] }));
    for (let i = 0; i < 300; i++) ignoring.lookup(i * 4, tunnelName(240, i + 1), { qtype: NULL });
    expect(ignoring.findings).toEqual([]);

    const small = new DnsTunnelDetector({ maxClients: 8 });
    const f = new Feed(small);
    for (let c = 0; c < 20; c++) f.lookup(c, `www.site${c}.example`);
    expect(small.stateSize()).toBe(8);
    expect(small.stateEvicted()).toBe(12);
  });

  it("leaves a pod of another node to that node's agent", () => {
    const f = new Feed(new DnsTunnelDetector({}, (ip) => ip !== CLIENT));
    for (let i = 0; i < 300; i++) f.lookup(i * 4, tunnelName(240, i + 1), { qtype: NULL });
    expect(f.findings).toEqual([]);
  });

  it('measures entropy in bits per character', () => {
    expect(entropy('aaaa')).toBe(0);
    expect(entropy('abab')).toBe(1);
    expect(entropy(randomChars(4000, 9))).toBeGreaterThan(4.9);
  });
});
