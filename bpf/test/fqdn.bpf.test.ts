// toFQDNs in the TC programs under BPF_PROG_TEST_RUN, with maps written by policy-maps.ts from a
// policy compiled by @flowctl/policy: a DNS answer to the endpoint teaches the address before the
// endpoint gets it (over UDP, or over TCP when one segment holds the whole message), per endpoint
// and per selector, by name, `*.suffix`, `*` or any other pattern; other names, other ports, other
// endpoints and expired addresses stay denied.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compilePolicies, parseEndpoints, parsePolicies, type CompiledPolicy } from '../../packages/policy/src/index.js';
import { readConfig } from '../../packages/agent/src/datapath/policy-maps.js';
import { Datapath, skipReason, TC_ACT_OK, TC_ACT_SHOT } from './harness.js';
import { dns, F, ipv4, ipv6, TCP, tcp, udp, UDP } from './packets.js';

const skip = skipReason();

const CLIENT = '10.203.1.1';
const PEER = '10.203.1.2'; // same labels as CLIENT: same identity, its own learned addresses
const RESOLVER = '10.203.1.53';
const API = '192.0.2.10';
const OTHER = '192.0.2.11';
const CLIENT6 = 'fd00:203::1'; // CLIENT's IPv6 address: a dual-stack pod
const API6 = '2001:db8::10';

const EPS = parseEndpoints(
  'endpoints:\n' +
    `  - { name: client, namespace: fcz, node: n1, labels: { app: client }, ips: [${CLIENT}, "${CLIENT6}"] }\n` +
    `  - { name: peer, namespace: fcz, node: n1, labels: { app: client }, ips: [${PEER}] }\n` +
    `  - { name: dns, namespace: fcz, node: n1, labels: { app: dns }, ips: [${RESOLVER}] }\n`,
  'eps.yaml',
);

const policy = (fqdns: string) =>
  'apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: { name: fq, namespace: fcz }\nspec:\n' +
  '  endpointSelector: { matchLabels: { app: client } }\n  egress:\n' +
  '    - toEndpoints: [ { matchLabels: { app: dns } } ]\n      toPorts: [ { ports: [ { port: "53", protocol: ANY } ] } ]\n' +
  `    - toFQDNs: [ ${fqdns} ]\n      toPorts: [ { ports: [ { port: "80", protocol: TCP } ] } ]\n`;

describe.skipIf(skip)('flowctl TC datapath: toFQDNs (test_run)', () => {
  let dp: Datapath;
  let compiled: CompiledPolicy;
  let sport = 42000;
  let qid = 1;
  const syn = (src: string, dst: string, dport = 80, port = ++sport) => ipv4({ src, dst, proto: TCP }, tcp(port, dport, F.SYN));
  const answer = (to: string, name: string, addr: string) => ipv4({ src: RESOLVER, dst: to, proto: UDP }, udp(53, 33000 + qid, dns(qid++, name, addr)));

  beforeAll(() => {
    dp = new Datapath();
    compiled = compilePolicies(parsePolicies(policy('{ matchPattern: "*.allowed.test" }, { matchName: exact.test }'), 'p.yaml'), EPS);
    dp.writer.writeIdentities(EPS.endpoints.flatMap((e) => e.ips.map((ip) => ({ cidr: ip, identity: e.identity }))));
    dp.writer.writePolicy(compiled);
    dp.writer.fqdn!.setPeers([{ v4: CLIENT, v6: CLIENT6 }]);
  });
  afterAll(() => dp?.close());

  it('denies an address outside the cluster before the endpoint resolved it, naming the toFQDNs policy', async () => {
    const e = await dp.one('from', syn(CLIENT, API));
    expect([e.retval, e.verdict, e.policyRef]).toEqual([TC_ACT_SHOT, 2 /* DROPPED */, 1]);
    // A pod stays in plain default deny: no rule, no policy named.
    const p = await dp.one('from', ipv4({ src: CLIENT, dst: PEER, proto: TCP }, tcp(++sport, 80, F.SYN)));
    expect([p.retval, p.policyRef]).toEqual([TC_ACT_SHOT, 0]);
  });

  it('learns the address of a matching answer before delivering it; the next SYN passes', async () => {
    const epoch = readConfig(dp.maps.config).epoch;
    const a = await dp.run('to', answer(CLIENT, 'Api.Allowed.Test', API));
    expect(a.retval).toBe(TC_ACT_OK);
    expect(readConfig(dp.maps.config).epoch).toBe(epoch + 1n);
    const learned = dp.writer.fqdn!.learned();
    expect(learned.map((l) => [l.endpoint, l.addr, l.selectors])).toEqual([[CLIENT, API, [compiled.fqdnSelectors.find((s) => s.selector.matchPattern)!.identity]]]);
    // At least the minimum TTL (3600 s), though the answer says 30 s.
    expect(Number(learned[0]!.expiresNs - process.hrtime.bigint()) / 1e9).toBeGreaterThan(3500);
    const e = await dp.one('from', syn(CLIENT, API));
    expect([e.retval, e.verdict, e.policyRef]).toEqual([TC_ACT_OK, 1 /* FORWARDED */, 1]);
  });

  it('an AAAA record in an answer over IPv4 is learned for the dual-stack endpoint\'s IPv6 address', async () => {
    const syn6 = () => ipv6({ src: CLIENT6, dst: API6, proto: TCP }, tcp(++sport, 80, F.SYN));
    expect((await dp.run('from', syn6())).retval).toBe(TC_ACT_SHOT);
    await dp.run('to', answer(CLIENT, 'v6.allowed.test', API6));
    expect(dp.writer.fqdn!.learned().filter((l) => l.addr === API6).map((l) => [l.family, l.endpoint])).toEqual([[6, CLIENT6]]);
    expect((await dp.run('from', syn6())).retval).toBe(TC_ACT_OK);
    // Not for the IPv4 address, nor for an endpoint without a peer.
    dp.writer.fqdn!.setPeers([]);
    await dp.run('to', answer(CLIENT, 'v6b.allowed.test', '2001:db8::11'));
    expect(dp.writer.fqdn!.learned().filter((l) => l.addr === '2001:db8::11')).toEqual([]);
    dp.writer.fqdn!.setPeers([{ v4: CLIENT, v6: CLIENT6 }]);
  });

  it('learns from an answer over TCP held whole by one segment; not from one split over segments', async () => {
    // The client's DNS connection (port 53, allowed), then the answer: its 2-byte length, then the message.
    const tcpAnswer = (name: string, addr: string, cut = 0) => {
      const port = ++sport;
      const m = dns(qid++, name, addr);
      const l = Buffer.alloc(2);
      l.writeUInt16BE(m.length);
      const payload = Buffer.concat([l, m]);
      return [
        ipv4({ src: CLIENT, dst: RESOLVER, proto: TCP }, tcp(port, 53, F.SYN)),
        ipv4({ src: RESOLVER, dst: CLIENT, proto: TCP }, tcp(53, port, F.ACK | F.PSH, cut ? payload.subarray(0, cut) : payload, undefined, 5000, 1001)),
      ] as const;
    };
    const split = tcpAnswer('split.allowed.test', '192.0.2.31', 40);
    expect((await dp.run('from', split[0])).retval).toBe(TC_ACT_OK);
    expect((await dp.run('to', split[1])).retval).toBe(TC_ACT_OK);
    expect(dp.writer.fqdn!.learned().filter((l) => l.addr === '192.0.2.31')).toEqual([]);
    expect((await dp.run('from', syn(CLIENT, '192.0.2.31'))).retval).toBe(TC_ACT_SHOT);

    expect((await dp.run('from', syn(CLIENT, '192.0.2.30'))).retval).toBe(TC_ACT_SHOT);
    const epoch = readConfig(dp.maps.config).epoch;
    const whole = tcpAnswer('tcp.allowed.test', '192.0.2.30');
    expect((await dp.run('from', whole[0])).retval).toBe(TC_ACT_OK);
    expect((await dp.run('to', whole[1])).retval).toBe(TC_ACT_OK);
    expect(readConfig(dp.maps.config).epoch).toBe(epoch + 1n);
    expect(dp.writer.fqdn!.learned().filter((l) => l.addr === '192.0.2.30').map((l) => l.endpoint)).toEqual([CLIENT]);
    expect((await dp.run('from', syn(CLIENT, '192.0.2.30'))).retval).toBe(TC_ACT_OK);
  });

  it('a SYN denied before the answer passes when retried on the same tuple', async () => {
    const port = ++sport;
    expect((await dp.run('from', syn(CLIENT, '192.0.2.20', 80, port))).retval).toBe(TC_ACT_SHOT);
    await dp.run('to', answer(CLIENT, 'www.allowed.test', '192.0.2.20'));
    expect((await dp.run('from', syn(CLIENT, '192.0.2.20', 80, port))).retval).toBe(TC_ACT_OK);
  });

  it('allows only the rule\'s ports, only the endpoint that resolved, only matching names', async () => {
    expect((await dp.run('from', syn(CLIENT, API, 443))).retval).toBe(TC_ACT_SHOT);
    expect((await dp.run('from', syn(PEER, API))).retval).toBe(TC_ACT_SHOT);
    const epoch = readConfig(dp.maps.config).epoch;
    await dp.run('to', answer(CLIENT, 'other.test', OTHER));
    await dp.run('to', answer(CLIENT, 'a.b.allowed.test', OTHER));
    expect(readConfig(dp.maps.config).epoch).toBe(epoch);
    expect((await dp.run('from', syn(CLIENT, OTHER))).retval).toBe(TC_ACT_SHOT);
    await dp.run('to', answer(CLIENT, 'exact.test', OTHER));
    expect((await dp.run('from', syn(CLIENT, OTHER))).retval).toBe(TC_ACT_OK);
  });

  it('never lets a name reach a pod', async () => {
    await dp.run('to', answer(CLIENT, 'api.allowed.test', RESOLVER));
    expect((await dp.run('from', syn(CLIENT, RESOLVER))).retval).toBe(TC_ACT_SHOT);
  });

  it('expiry removes the address and re-evaluates connections', async () => {
    const w = dp.writer;
    const far = process.hrtime.bigint() + 10_000n * 1_000_000_000n;
    expect(w.fqdn!.sweep(far, 50)).toBeGreaterThan(0);
    w.bumpEpoch();
    expect(w.fqdn!.learned()).toEqual([]);
    expect((await dp.run('from', syn(CLIENT, API))).retval).toBe(TC_ACT_SHOT);
  });

  it('a selector that leaves the policy forgets its addresses; the ones that stay keep theirs', async () => {
    await dp.run('to', answer(CLIENT, 'api.allowed.test', API));
    await dp.run('to', answer(CLIENT, 'exact.test', OTHER));
    const next = compilePolicies(parsePolicies(policy('{ matchName: exact.test }, { matchName: new.test }'), 'p.yaml'), EPS, { fqdnPrevious: compiled.fqdnSelectors });
    expect(next.fqdnSelectors.find((s) => s.selector.matchName === 'exact.test')!.identity).toBe(compiled.fqdnSelectors.find((s) => s.selector.matchName === 'exact.test')!.identity);
    dp.writer.writePolicy(next);
    expect(dp.writer.fqdn!.learned().map((l) => l.addr)).toEqual([OTHER]);
    expect((await dp.run('from', syn(CLIENT, API))).retval).toBe(TC_ACT_SHOT);
    expect((await dp.run('from', syn(CLIENT, OTHER))).retval).toBe(TC_ACT_OK);
    // The new selector took the freed number: what was learned under the old one does not leak.
    await dp.run('to', answer(CLIENT, 'api.allowed.test', API));
    expect((await dp.run('from', syn(CLIENT, API))).retval).toBe(TC_ACT_SHOT);
    compiled = next;
  });

  it('keeps, per endpoint and name, only the addresses that expire last beyond the limit', async () => {
    for (let i = 0; i < 5; i++) await dp.run('to', answer(CLIENT, 'new.test', `198.51.100.${i + 1}`));
    expect(dp.writer.fqdn!.learned().filter((l) => l.addr.startsWith('198.51.100.'))).toHaveLength(5);
    dp.writer.fqdn!.sweep(process.hrtime.bigint(), 3);
    const kept = dp.writer.fqdn!.learned().filter((l) => l.addr.startsWith('198.51.100.')).map((l) => l.addr).sort();
    expect(kept).toEqual(['198.51.100.3', '198.51.100.4', '198.51.100.5']);
  });
  it('matches other patterns in the kernel too: `*` within one label, any number of them', async () => {
    const next = compilePolicies(parsePolicies(policy('{ matchPattern: "api-*.pat.test" }, { matchPattern: "*.*.deep.test" }, { matchPattern: "a*b*c.multi.test" }'), 'p.yaml'), EPS, { fqdnPrevious: compiled.fqdnSelectors });
    dp.writer.writePolicy(next);
    compiled = next;
    const cases: [string, boolean][] = [
      ['api-v2.pat.test', true], ['API-V3.Pat.Test', true], ['api-.pat.test', true],
      ['web.pat.test', false], ['api-x.y.pat.test', false], ['api-v2.pat.test.evil', false],
      ['a.b.deep.test', true], ['x.deep.test', false], ['a.b.c.deep.test', false],
      ['axbyc.multi.test', true], ['abc.multi.test', true], ['abcbc.multi.test', true], ['axbyd.multi.test', false], ['a.bc.multi.test', false],
    ];
    const got: string[] = [];
    for (const [i, [name]] of cases.entries()) {
      const addr = `198.18.0.${i + 1}`;
      await dp.run('to', answer(CLIENT, name, addr));
      if (dp.writer.fqdn!.learned().some((l) => l.addr === addr)) got.push(name);
    }
    expect(got).toEqual(cases.filter(([, ok]) => ok).map(([n]) => n));
    expect((await dp.run('from', syn(CLIENT, '198.18.0.1'))).retval).toBe(TC_ACT_OK);
    expect((await dp.run('from', syn(CLIENT, '198.18.0.4'))).retval).toBe(TC_ACT_SHOT);
    // A pattern that leaves the policy stops matching.
    dp.writer.writePolicy((compiled = compilePolicies(parsePolicies(policy('{ matchPattern: "*.*.deep.test" }'), 'p.yaml'), EPS, { fqdnPrevious: compiled.fqdnSelectors })));
    await dp.run('to', answer(CLIENT, 'api-v9.pat.test', '198.18.1.1'));
    await dp.run('to', answer(CLIENT, 'q.r.deep.test', '198.18.1.2'));
    expect(dp.writer.fqdn!.learned().filter((l) => l.addr.startsWith('198.18.1.')).map((l) => l.addr)).toEqual(['198.18.1.2']);
  });
});
