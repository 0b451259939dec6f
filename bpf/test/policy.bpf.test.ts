// The verdict half of the TC programs under BPF_PROG_TEST_RUN, with the maps written by
// policy-maps.ts exactly as the agent writes them: allow, default deny, wildcards, deny over allow
// through intersection rows, replies, audit, live changes; and the policy compiled by the
// real @flowctl/policy compiler.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compilePolicies, parsePolicies, resolveEndpoints, type CompiledPolicy, type PolicyEntry } from '../../packages/policy/src/index.js';
import { encodeIpcacheKey, encodePolicyKey, readConfig } from '../../packages/agent/src/datapath/policy-maps.js';
import { Datapath, skipReason, TC_ACT_OK, TC_ACT_SHOT } from './harness.js';
import { F, icmp, ipv4, ipv6, TCP, tcp, udp, UDP } from './packets.js';

const skip = skipReason();

const CLIENT = '10.202.1.1'; // identity 1001
const SERVER = '10.202.1.2'; // identity 1002, ingress and egress enforced
const OTHER = '10.202.1.3'; // identity 1003
const OUTSIDE = '10.202.9.9'; // not in the ipcache: world (2)
const SERVER6 = 'fd00:202:1::2';

const row = (p: Partial<PolicyEntry>): PolicyEntry => ({
  endpointIdentity: 1002,
  peerIdentity: 1001,
  port: 8080,
  proto: TCP,
  direction: 'ingress',
  deny: false,
  ruleRef: 1,
  ...p,
});

function policy(revision: number, entries: PolicyEntry[], enforced: [number, boolean, boolean][] = [[1002, true, true]]): CompiledPolicy {
  return {
    revision,
    entries,
    enforced: new Map(enforced.map(([id, ingress, egress]) => [id, { ingress, egress }])),
    fqdnSelectors: [],
    cidrIdentities: [],
    refs: [],
    selectedBy: new Map(),
    addressIdentities: new Map(),
  };
}

const identities = [
  { cidr: CLIENT, identity: 1001 },
  { cidr: `${SERVER}/32`, identity: 1002 },
  { cidr: SERVER6, identity: 1002 },
  { cidr: OTHER, identity: 1003 },
];

const BASE: PolicyEntry[] = [
  row({ ruleRef: 1 }), // 1001 -> 1002:8080/TCP
  row({ peerIdentity: 0, port: 0, proto: UDP, ruleRef: 2 }), // anyone -> 1002 any UDP port
  row({ peerIdentity: 0, port: 9000, ruleRef: 3 }), // anyone -> 1002:9000/TCP
  row({ peerIdentity: 1003, port: 0, proto: 0, deny: true, ruleRef: 4 }), // deny all from 1003
  row({ peerIdentity: 1003, port: 9000, deny: true, ruleRef: 4 }), // intersection of 3 and 4
  row({ peerIdentity: 1003, port: 0, proto: UDP, deny: true, ruleRef: 4 }), // intersection of 2 and 4
];

describe.skipIf(skip)('flowctl TC datapath: policy verdicts (test_run)', () => {
  let dp: Datapath;
  let sport = 41000;
  const conn = (src: string, dst: string, dport: number, flags: number = F.SYN, proto = TCP) => {
    const l4 = proto === TCP ? tcp(++sport, dport, flags) : udp(++sport, dport, Buffer.from('x'));
    return ipv4({ src, dst, proto }, l4);
  };

  beforeAll(() => {
    dp = new Datapath();
    dp.writer.writeIdentities(identities);
    dp.writer.writePolicy(policy(7, BASE));
  });
  afterAll(() => dp?.close());

  it('the maps hold what policy-maps.ts wrote', () => {
    const ip = dp.maps.ipcache.lookup(encodeIpcacheKey(SERVER));
    expect(ip?.readUInt32LE(0)).toBe(1002);
    expect(dp.maps.policy.keys()).toHaveLength(BASE.length);
    expect(dp.maps.policy.lookup(encodePolicyKey(BASE[4]!))?.toString('hex')).toBe('04000000' + '01000000');
    expect(readConfig(dp.maps.config)).toEqual({ epoch: 2n, policyRevision: 7n });
  });

  it('an allowed connection is FORWARDED with the rule, its identities and direction', async () => {
    const e = await dp.one('to', conn(CLIENT, SERVER, 8080));
    expect(e).toMatchObject({ retval: TC_ACT_OK, verdict: 1, dropReason: 0, reason: 1, policyRef: 1, policyDirection: 1, srcIdentity: 1001, dstIdentity: 1002, obsPoint: 2 });
  });

  it('no matching rule: dropped with POLICY_DENIED; retransmissions drop silently but are counted', async () => {
    const syn = conn(CLIENT, SERVER, 8081);
    const e = await dp.one('to', syn);
    expect(e).toMatchObject({ retval: TC_ACT_SHOT, verdict: 2, dropReason: 133, reason: 6, policyRef: 0, policyDirection: 1, dstPort: 8081 });
    const before = dp.counters().policyDropped;
    expect(await dp.run('to', syn)).toEqual({ retval: TC_ACT_SHOT, events: [] });
    expect(dp.counters().policyDropped - before).toBe(1n);
    expect((await dp.one('to', conn(OUTSIDE, SERVER, 8080))).srcIdentity).toBe(2);
  });

  it('wildcard rows: any peer on a port, any port of a protocol; proto mismatch denied', async () => {
    expect(await dp.one('to', conn(OUTSIDE, SERVER, 9000))).toMatchObject({ retval: TC_ACT_OK, verdict: 1, policyRef: 3 });
    expect(await dp.one('to', conn(OUTSIDE, SERVER, 5353, 0, UDP))).toMatchObject({ retval: TC_ACT_OK, verdict: 1, policyRef: 2 });
    expect(await dp.one('to', conn(CLIENT, SERVER, 8080, 0, UDP))).toMatchObject({ retval: TC_ACT_OK, policyRef: 2 });
    expect(await dp.one('to', conn(OUTSIDE, SERVER, 8080))).toMatchObject({ retval: TC_ACT_SHOT, verdict: 2 });
  });

  it('deny over allow through intersection rows', async () => {
    expect(await dp.one('to', conn(OTHER, SERVER, 9000))).toMatchObject({ retval: TC_ACT_SHOT, verdict: 2, dropReason: 133, policyRef: 4 });
    expect(await dp.one('to', conn(OTHER, SERVER, 53, 0, UDP))).toMatchObject({ retval: TC_ACT_SHOT, policyRef: 4 });
    expect(await dp.one('to', conn(OTHER, SERVER, 22))).toMatchObject({ retval: TC_ACT_SHOT, policyRef: 4 });
  });

  it('replies of an allowed connection pass the egress-enforced endpoint; its own new connections do not', async () => {
    const port = ++sport;
    await dp.one('to', ipv4({ src: CLIENT, dst: SERVER, proto: TCP }, tcp(port, 8080, F.SYN)));
    const reply = await dp.one('from', ipv4({ src: SERVER, dst: CLIENT, proto: TCP }, tcp(8080, port, F.SYN | F.ACK)));
    expect(reply).toMatchObject({ retval: TC_ACT_OK, verdict: 1, isReply: true, obsPoint: 1, policyRef: 1, policyDirection: 1 });
    expect(await dp.run('from', ipv4({ src: SERVER, dst: CLIENT, proto: TCP }, tcp(8080, port, F.ACK | F.PSH, Buffer.from('data'))))).toEqual({ retval: TC_ACT_OK, events: [] });
    // 1002 opening a connection itself: its egress is enforced with no rule.
    const own = await dp.one('from', ipv4({ src: SERVER, dst: CLIENT, proto: TCP }, tcp(45000, 8080, F.SYN)));
    expect(own).toMatchObject({ retval: TC_ACT_SHOT, verdict: 2, policyDirection: 2, srcIdentity: 1002, dstIdentity: 1001 });
    // An endpoint nobody enforces is not affected.
    expect((await dp.one('from', conn(CLIENT, OUTSIDE, 80))).retval).toBe(TC_ACT_OK);
  });

  it('IPv6 neighbour discovery is never subject to policy (Cilium exempts it); other ICMPv6 is', async () => {
    // SERVER is ingress- and egress-enforced with no ICMPv6 rule.
    const na = await dp.one('from', ipv6({ src: SERVER6, dst: 'fd00:202:1::1', proto: 58 }, icmp(136, 0)));
    expect(na).toMatchObject({ retval: TC_ACT_OK, verdict: 1 });
    const ns = await dp.one('to', ipv6({ src: 'fd00:202:1::7', dst: SERVER6, proto: 58 }, icmp(135, 0)));
    expect(ns).toMatchObject({ retval: TC_ACT_OK, verdict: 1 });
    const echo = await dp.one('to', ipv6({ src: 'fd00:202:1::7', dst: SERVER6, proto: 58 }, icmp(128, 0, 77)));
    expect(echo).toMatchObject({ retval: TC_ACT_SHOT, verdict: 2 });
  });

  it('IPv6 identities through the same maps', async () => {
    const e = await dp.one('to', ipv6({ src: 'fd00:202:1::99', dst: SERVER6, proto: UDP }, udp(41999, 5000, Buffer.from('x'))));
    expect(e).toMatchObject({ retval: TC_ACT_OK, dstIdentity: 1002, srcIdentity: 2, policyRef: 2 });
  });

  it('a live policy change re-evaluates established connections, both ways', async () => {
    const port = ++sport;
    const data = ipv4({ src: CLIENT, dst: SERVER, proto: TCP }, tcp(port, 8080, F.ACK | F.PSH, Buffer.from('more')));
    await dp.one('to', ipv4({ src: CLIENT, dst: SERVER, proto: TCP }, tcp(port, 8080, F.SYN)));
    expect(await dp.run('to', data)).toEqual({ retval: TC_ACT_OK, events: [] });

    dp.writer.writePolicy(policy(8, BASE.filter((r) => r.ruleRef !== 1)));
    const dropped = await dp.one('to', data);
    expect(dropped).toMatchObject({ retval: TC_ACT_SHOT, verdict: 2, reason: 6, dropReason: 133 });
    expect(await dp.run('to', data)).toEqual({ retval: TC_ACT_SHOT, events: [] });

    dp.writer.writePolicy(policy(9, BASE));
    expect(await dp.one('to', data)).toMatchObject({ retval: TC_ACT_OK, verdict: 1, reason: 1, policyRef: 1 });
    expect(readConfig(dp.maps.config).policyRevision).toBe(9n);

    // An ipcache change alone (the client gets another identity) also re-evaluates.
    dp.writer.writeIdentities(identities.map((i) => (i.cidr === CLIENT ? { ...i, identity: 1009 } : i)));
    expect(await dp.one('to', data)).toMatchObject({ retval: TC_ACT_SHOT, srcIdentity: 1009 });
    dp.writer.writeIdentities(identities);
    expect((await dp.one('to', data)).retval).toBe(TC_ACT_OK);
  });

  it('removing enforcement allows everything', async () => {
    dp.writer.writePolicy(policy(10, BASE, []));
    expect(await dp.one('to', conn(OTHER, SERVER, 22))).toMatchObject({ retval: TC_ACT_OK, verdict: 1, policyRef: 0 });
    dp.writer.writePolicy(policy(11, BASE));
  });
});

describe.skipIf(skip)('flowctl TC datapath: policy audit mode', () => {
  it('reports AUDIT and passes the packet', async () => {
    const dp = new Datapath({ policyAudit: true });
    try {
      dp.writer.writeIdentities(identities);
      dp.writer.writePolicy(policy(1, BASE));
      const before = dp.counters().policyAudit;
      const e = await dp.one('to', ipv4({ src: CLIENT, dst: SERVER, proto: TCP }, tcp(42000, 8081, F.SYN)));
      expect(e).toMatchObject({ retval: TC_ACT_OK, verdict: 4, reason: 6, dropReason: 133 });
      expect(dp.counters().policyAudit - before).toBe(1n);
      expect(await dp.one('to', ipv4({ src: CLIENT, dst: SERVER, proto: TCP }, tcp(42001, 8080, F.SYN)))).toMatchObject({ retval: TC_ACT_OK, verdict: 1 });
    } finally {
      dp.close();
    }
  });
});

describe.skipIf(skip)('flowctl TC datapath: the issue 8 policy through the real compiler', () => {
  it('api-gateway -> order-service:8080 forwarded, another pod dropped, order-service -> payment-service only', async () => {
    const eps = resolveEndpoints([
      { name: 'api-gateway-1', namespace: 'shop', node: 'n1', labels: { app: 'api-gateway' }, ips: ['10.202.2.1'] },
      { name: 'order-service-1', namespace: 'shop', node: 'n1', labels: { app: 'order-service' }, ips: ['10.202.2.2'] },
      { name: 'payment-service-1', namespace: 'shop', node: 'n1', labels: { app: 'payment-service' }, ips: ['10.202.2.3'] },
      { name: 'other-1', namespace: 'shop', node: 'n1', labels: { app: 'other' }, ips: ['10.202.2.4'] },
    ]);
    const docs = parsePolicies(
      `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: { name: order-service-policy, namespace: shop }
spec:
  endpointSelector: { matchLabels: { app: order-service } }
  ingress:
    - fromEndpoints: [ { matchLabels: { app: api-gateway } } ]
      toPorts: [ { ports: [ { port: "8080", protocol: TCP } ] } ]
  egress:
    - toEndpoints: [ { matchLabels: { app: payment-service } } ]
      toPorts: [ { ports: [ { port: "8080" } ] } ]
`,
      'order-service-policy.yaml',
    );
    const compiled = compilePolicies(docs, eps);
    const dp = new Datapath();
    try {
      dp.writer.writeIdentities(
        [...eps.endpoints.flatMap((ep) => ep.ips.map((ip) => ({ cidr: ip, identity: ep.identity }))), ...compiled.cidrIdentities],
      );
      dp.writer.writePolicy(compiled);
      const pkt = (src: string, dst: string, dport: number, sp: number) => ipv4({ src, dst, proto: TCP }, tcp(sp, dport, F.SYN));
      // Pod ingress of order-service is checked at TC egress of its veth.
      const ok = await dp.one('to', pkt('10.202.2.1', '10.202.2.2', 8080, 43000));
      expect(ok).toMatchObject({ retval: TC_ACT_OK, verdict: 1 });
      expect(compiled.refs[ok.policyRef - 1]?.name).toBe('order-service-policy');
      expect(await dp.one('to', pkt('10.202.2.4', '10.202.2.2', 8080, 43001))).toMatchObject({ retval: TC_ACT_SHOT, verdict: 2, dropReason: 133 });
      // Pod egress of order-service is checked at TC ingress of its veth.
      expect(await dp.one('from', pkt('10.202.2.2', '10.202.2.3', 8080, 43002))).toMatchObject({ retval: TC_ACT_OK, verdict: 1 });
      expect(await dp.one('from', pkt('10.202.2.2', '10.202.2.4', 8080, 43003))).toMatchObject({ retval: TC_ACT_SHOT, verdict: 2 });
      expect(await dp.one('from', pkt('10.202.2.2', '10.202.2.3', 9090, 43004))).toMatchObject({ retval: TC_ACT_SHOT });
      // Unselected pods are unaffected.
      expect(await dp.one('from', pkt('10.202.2.4', '10.202.2.1', 1234, 43005))).toMatchObject({ retval: TC_ACT_OK, verdict: 1 });
    } finally {
      dp.close();
    }
  });
});
