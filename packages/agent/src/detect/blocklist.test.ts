import { mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CidrSet, NameSet, parseV4 } from './blocklist-index.js';
import { ListParser, parseBlocklist } from './blocklist-formats.js';
import { BlocklistDetector, Blocklists } from './blocklist.js';
import type { Finding } from './detector.js';
import { a, CLIENT, Traffic, WEB } from './fixtures.js';

const HOSTS = `# StevenBlack-style hosts file
127.0.0.1 localhost
::1 localhost ip6-localhost
0.0.0.0 c2.botnet.invalid   # botnet
0.0.0.0 Ads.Example.COM tracker.example.net
`;
const DOMAINS = `# one per line
exfil.attacker.example
*.botnet.invalid
evil.example.
`;
const IPS = `; addresses
203.0.113.66
198.51.100.0/24 ; SBL-like comment
2001:db8:bad::/48
`;
const DROP = `{"cidr":"192.0.2.0/25","sblid":"SBL000001","rir":"arin"}
{"cidr":"2001:db8:dead::/48","sblid":"SBL000002","rir":"ripencc"}
{"type":"metadata","timestamp":1700000000,"size":2,"records":2,"copyright":"(c) Spamhaus"}
`;
const URLHAUS = `################################################################
# abuse.ch URLhaus Database Dump (CSV)                         #
################################################################
#
# id,dateadded,url,url_status,last_online,threat,tags,urlhaus_link,reporter
"3141592","2024-05-01 10:00:00","http://Malware.Example.ORG:8080/bins/x86","online","2024-05-01 10:00:00","malware_download","elf,mirai","https://urlhaus.abuse.ch/url/3141592/","anonymous"
"3141593","2024-05-01 10:01:00","https://203.0.113.99/payload.exe","online","2024-05-01 10:00:00","malware_download","exe","https://urlhaus.abuse.ch/url/3141593/","anonymous"
"3141594","2024-05-01 10:02:00","http://[2001:db8:beef::1]/a","offline","","malware_download","","https://urlhaus.abuse.ch/url/3141594/","x"
`;

function parse(text: string) {
  const bad: [number, string][] = [];
  const p = parseBlocklist(text, (line, why) => bad.push([line, why]));
  return { ...p, bad };
}

describe('blocklist formats, recognised from the content', () => {
  it('reads a hosts file: every name after the address, not localhost', () => {
    const p = parse(HOSTS);
    expect(p.format).toBe('hosts');
    expect(p.bad).toEqual([]);
    expect(p.names.size).toBe(3);
    expect(p.names.lookup('c2.botnet.invalid.')?.entry).toBe('c2.botnet.invalid');
    expect(p.names.lookup('ads.example.com')?.entry).toBe('ads.example.com');
    expect(p.names.lookup('x.ads.example.com')).toBeUndefined();
    expect(p.names.lookup('localhost')).toBeUndefined();
  });
  it('reads one domain per line, *. meaning every name below', () => {
    const p = parse(DOMAINS);
    expect(p.format).toBe('plain');
    expect(p.names.lookup('exfil.attacker.example.')?.entry).toBe('exfil.attacker.example');
    expect(p.names.lookup('a.b.botnet.invalid')?.entry).toBe('*.botnet.invalid');
    expect(p.names.lookup('botnet.invalid')).toBeUndefined();
    expect(p.names.lookup('evil.example')?.entry).toBe('evil.example');
  });
  it('reads one IP or CIDR per line, IPv4 and IPv6, longest prefix first', () => {
    const p = parse(IPS);
    expect(p.format).toBe('plain');
    expect(p.bad).toEqual([]);
    expect(p.cidrs.lookup('203.0.113.66')?.entry).toBe('203.0.113.66/32');
    expect(p.cidrs.lookup('203.0.113.67')).toBeUndefined();
    expect(p.cidrs.lookup('198.51.100.200')?.entry).toBe('198.51.100.0/24');
    expect(p.cidrs.lookup('2001:db8:bad:1::5')?.entry).toBe('2001:db8:bad::/48');
    expect(p.cidrs.lookup('2001:db8:bae::1')).toBeUndefined();
    const nested = new CidrSet();
    nested.add('10.0.0.0/8', 'wide');
    nested.add('10.1.0.0/16', 'narrow');
    expect(nested.lookup('10.1.2.3')).toEqual({ entry: '10.1.0.0/16', ref: 'narrow' });
    expect(nested.lookup('10.2.2.3')).toEqual({ entry: '10.0.0.0/8', ref: 'wide' });
  });
  it('reads Spamhaus DROP JSON lines with their SBL ids, skipping the metadata line', () => {
    const p = parse(DROP);
    expect(p.format).toBe('drop-json');
    expect(p.bad).toEqual([]);
    expect(p.cidrs.lookup('192.0.2.100')).toEqual({ entry: '192.0.2.0/25', ref: 'SBL000001' });
    expect(p.cidrs.lookup('192.0.2.200')).toBeUndefined();
    expect(p.cidrs.lookup('2001:db8:dead:ffff::1')).toEqual({ entry: '2001:db8:dead::/48', ref: 'SBL000002' });
  });
  it('reads URLhaus CSV: the host of the url column, a name or an address', () => {
    const p = parse(URLHAUS);
    expect(p.format).toBe('urlhaus-csv');
    expect(p.bad).toEqual([]);
    expect(p.names.lookup('malware.example.org')).toEqual({ entry: 'malware.example.org', ref: 'urlhaus:3141592' });
    expect(p.cidrs.lookup('203.0.113.99')?.entry).toBe('203.0.113.99/32');
    expect(p.cidrs.lookup('2001:db8:beef::1')?.entry).toBe('2001:db8:beef::1/128');
  });
  it('reads URLhaus lines with quotes inside a field, and unquoted ones', () => {
    const p = parse('# id,dateadded,url,tags\n"1","d","http://q.example/a""b","x"\n2,d,https://bare.example.net/,y\n');
    expect(p.bad).toEqual([]);
    expect(p.names.lookup('q.example')?.ref).toBe('urlhaus:1');
    expect(p.names.lookup('bare.example.net')?.ref).toBe('urlhaus:2');
  });
  it('counts bad lines with their line numbers and keeps the good ones', () => {
    const p = parse('good.example\nnot a domain\n300.1.2.3/8\nexa mple\n-\n*.fine.example\n');
    expect(p.names.lookup('x.fine.example')).toBeDefined();
    expect(p.bad.map(([l]) => l)).toEqual([2, 3, 4, 5]);
    expect(p.badLines).toBe(4);
    const j = parse('{"cidr":"192.0.2.0/24","sblid":"SBL1"}\n{oops\n{"sblid":"SBL2"}\n{"cidr":"nope"}\n');
    expect(j.bad.map(([l, w]) => `${l} ${w.split(':')[0]}`)).toEqual(['2 not JSON', '3 no "cidr"', '4 not a CIDR']);
  });
  it('parses IPv4 strictly', () => {
    expect(parseV4('10.0.0.1')).toBe(0x0a000001);
    expect(parseV4('255.255.255.255')).toBe(0xffffffff);
    for (const bad of ['1.2.3', '1.2.3.4.5', '256.1.1.1', '1..2.3', 'a.b.c.d', '1.2.3.4 ']) expect(parseV4(bad)).toBe(-1);
    const n = new NameSet();
    n.add('x.example', false);
    expect(n.lookup('y.x.example')).toBeUndefined();
  });
});

describe('ListParser', () => {
  it('parses a list fed in pieces cut anywhere as it parses the whole text', () => {
    for (const text of [HOSTS, DOMAINS, IPS, DROP, URLHAUS, 'no.newline.at.end']) {
      const whole = parse(text);
      for (const size of [1, 3, 7, 64]) {
        const bad: [number, string][] = [];
        const p = new ListParser((line, why) => bad.push([line, why]));
        for (let i = 0; i < text.length; i += size) p.write(text.slice(i, i + size));
        const got = p.end();
        expect({ format: got.format, names: got.names.size, cidrs: got.cidrs.size, bad }).toEqual({ format: whole.format, names: whole.names.size, cidrs: whole.cidrs.size, bad: whole.bad });
      }
    }
  });
});

describe('BlocklistDetector', () => {
  let dir = '';
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = '';
  });
  const warnings: string[] = [];
  const log = { info: () => {}, warn: (_o: object | string, m?: string) => void warnings.push(m ?? ''), error: (_o: object | string, m?: string) => void warnings.push(m ?? '') };

  function setup(files: Record<string, string>, opts = {}) {
    dir = mkdtempSync(join(tmpdir(), 'fcd-blocklist-'));
    const paths = Object.entries(files).map(([n, text]) => {
      const p = join(dir, n);
      writeFileSync(p, text);
      return p;
    });
    const lists = new Blocklists(paths, log);
    lists.load();
    return { lists, d: new BlocklistDetector(lists, opts), paths, t: new Traffic() };
  }
  const feed = (d: BlocklistDetector, flows: object[], ms = 0): Finding[] => flows.flatMap((f) => d.observe(f as never, 1_700_000_000_000 + ms) ?? []);

  it('raises blocklisted-domain for a query, naming the client pod, the list and the entry', () => {
    const { d, paths, t } = setup({ 'domains.txt': DOMAINS, 'hosts': HOSTS, 'urlhaus.csv': URLHAUS });
    const { query, answer } = t.lookup('exfil.attacker.example');
    const found = feed(d, [query, answer]);
    expect(found).toHaveLength(1);
    expect(found[0]).toMatchObject({
      kind: 'blocklisted-domain', severity: 'high', target: 'exfil.attacker.example',
      source: { ip: CLIENT, endpoint: { namespace: 'shop', pod_name: 'client-7d9f8b6c5-bcdfg' } },
      destination: { ip: '10.231.1.53' },
      evidence: { list: paths[0], format: 'plain', entry: 'exfil.attacker.example', name: 'exfil.attacker.example', matched_in: 'query', count: 1 },
    });
    expect(found[0]!.summary).toBe(`10.231.1.10 (shop/client-7d9f8b6c5-bcdfg) looked up blocklisted exfil.attacker.example (exfil.attacker.example in ${paths[0]})`);
    // Each format matches.
    expect(feed(d, [t.lookup('c2.botnet.invalid').query])[0]?.evidence).toMatchObject({ entry: '*.botnet.invalid', format: 'plain' });
    expect(feed(d, [t.lookup('tracker.example.net').query])[0]?.evidence).toMatchObject({ entry: 'tracker.example.net', format: 'hosts' });
    expect(feed(d, [t.lookup('malware.example.org').query])[0]?.evidence).toMatchObject({ entry: 'malware.example.org', format: 'urlhaus-csv', ref: 'urlhaus:3141592' });
    expect(feed(d, [...Object.values(t.lookup('www.example.com', { answers: [a('192.0.2.1')] }))])).toEqual([]);
  });

  it('raises it for an answer whose CNAME is listed', () => {
    const { d, t } = setup({ 'domains.txt': DOMAINS });
    const cname = Buffer.from([4, ...Buffer.from('evil'), 7, ...Buffer.from('example'), 0]);
    const { answer } = t.lookup('innocent.example.com', { answers: [{ type: 5, data: cname }] });
    expect(feed(d, [answer])[0]).toMatchObject({ kind: 'blocklisted-domain', target: 'evil.example', evidence: { matched_in: 'CNAME in the answer for innocent.example.com.' } });
  });

  it('raises blocklisted-ip for connections to and from listed addresses (plain list and DROP JSON)', () => {
    const { d, t } = setup({ 'ips.txt': IPS, 'drop.json': DROP });
    const out = feed(d, [t.connect(CLIENT, '198.51.100.7', 443)]);
    expect(out).toHaveLength(1);
    expect(out[0]).toMatchObject({
      kind: 'blocklisted-ip', target: '198.51.100.7', source: { ip: CLIENT, endpoint: { pod_name: 'client-7d9f8b6c5-bcdfg' } },
      destination: { ip: '198.51.100.7' }, evidence: { entry: '198.51.100.0/24', format: 'plain', direction: 'outbound', port: 443 },
    });
    const inbound = feed(d, [t.connect('192.0.2.9', WEB, 22)]);
    expect(inbound[0]).toMatchObject({ kind: 'blocklisted-ip', target: '192.0.2.9', source: { ip: '192.0.2.9' }, destination: { ip: WEB, endpoint: { pod_name: 'web-0' } },
      evidence: { entry: '192.0.2.0/25', ref: 'SBL000001', format: 'drop-json', direction: 'inbound' } });
    expect(inbound[0]!.summary).toMatch(/^connection from blocklisted 192\.0\.2\.9 port 22 \(192\.0\.2\.0\/25 in .*drop\.json\) to 10\.231\.1\.20 \(shop\/web-0\)$/);
    expect(feed(d, [t.connect('fd00:231::10', '2001:db8:dead:1::1', 80)])[0]?.evidence).toMatchObject({ entry: '2001:db8:dead::/48', ref: 'SBL000002' });
    expect(feed(d, [t.connect(CLIENT, WEB, 80), t.connect(CLIENT, '192.0.2.200', 80)])).toEqual([]);
  });

  it("leaves a pod of another node to that node's agent", () => {
    const { lists, t } = setup({ 'domains.txt': DOMAINS, 'ips.txt': IPS });
    const elsewhere = new BlocklistDetector(lists, {}, (ip) => ip !== CLIENT);
    expect(feed(elsewhere, [t.lookup('exfil.attacker.example').query, t.connect(CLIENT, '198.51.100.7', 443)])).toEqual([]);
  });

  it('reports a repeated match once per update interval, with the count', () => {
    const { d, t } = setup({ 'ips.txt': IPS });
    const flows = Array.from({ length: 5 }, () => t.connect(CLIENT, '203.0.113.66', 443));
    expect(feed(d, flows, 0)).toHaveLength(1);
    const later = feed(d, [t.connect(CLIENT, '203.0.113.66', 443)], 10_000);
    expect(later).toHaveLength(1);
    expect(later[0]!.evidence.count).toBe(6);
    expect(later[0]!.summary).toMatch(/, 6 flows$/);
  });

  it('loads a list again when its file changes, and keeps the last good one when it cannot be read', async () => {
    warnings.length = 0;
    const { lists, d, paths, t } = setup({ 'domains.txt': 'one.example\n' });
    expect(feed(d, [t.lookup('two.example').query])).toEqual([]);
    writeFileSync(paths[0]!, 'one.example\ntwo.example\nbad line here\n');
    utimesSync(paths[0]!, new Date(), new Date(Date.now() + 5000));
    expect(await lists.reloadChanged()).toBe(true);
    expect(feed(d, [t.lookup('two.example').query])).toHaveLength(1);
    expect(lists.badLines).toBe(1);
    expect(warnings).toContain(`${paths[0]}:3: one entry per line, got: "bad line here"`);
    rmSync(paths[0]!);
    expect(await lists.reloadChanged()).toBe(false);
    expect(lists.failedLoads).toBe(1);
    expect(lists.matchName('one.example')).toBeDefined();
    expect(await lists.reloadChanged()).toBe(false);
    expect(lists.failedLoads).toBe(1);
  });

  it('keeps the old list in force while a big one reloads, letting the event loop run', async () => {
    const { lists, paths } = setup({ 'domains.txt': 'one.example\n' });
    writeFileSync(paths[0]!, Array.from({ length: 200_000 }, (_, i) => `host-${i}.big.example`).join('\n') + '\nlast.example\n');
    utimesSync(paths[0]!, new Date(), new Date(Date.now() + 5000));
    let ticks = 0;
    let oldDuring = true;
    const timer = setInterval(() => {
      ticks++;
      if (!lists.matchName('one.example') || lists.matchName('last.example')) oldDuring = false;
    }, 1);
    const reload = lists.reloadChanged();
    expect(await lists.reloadChanged()).toBe(false); // one at a time
    expect(await reload).toBe(true);
    clearInterval(timer);
    expect(ticks).toBeGreaterThan(3);
    expect(oldDuring).toBe(true);
    expect(lists.matchName('one.example')).toBeUndefined();
    expect(lists.matchName('host-199999.big.example')?.entry).toBe('host-199999.big.example');
    expect(lists.matchName('last.example')).toBeDefined();
  });

  it('refuses to start with a list it cannot read', () => {
    expect(() => new Blocklists(['/nonexistent/fcd-list'], log).load()).toThrow(/^--blocklist \/nonexistent\/fcd-list: cannot read: ENOENT$/);
  });

  it('logs ten bad lines one by one and the rest in one line', () => {
    warnings.length = 0;
    setup({ 'bad.txt': Array.from({ length: 25 }, (_, i) => `bad entry ${i}`).join('\n') });
    expect(warnings.filter((w) => /bad\.txt:\d+: /.test(w))).toHaveLength(10);
    expect(warnings.at(-1)).toMatch(/bad\.txt: 15 more bad lines skipped$/);
  });
});
