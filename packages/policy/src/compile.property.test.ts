// Deny-wins under "first hit in the kernel's lookup order decides": random policies and endpoints,
// every (endpoint, peer, port, proto, direction), the map-lookup simulation against a direct
// evaluation of the rules. The evaluator below deliberately shares nothing with the compiler
// beyond parsing and selector matching.
import { describe, expect, it } from 'vitest';
import { lookupPolicy } from './check.js';
import { compilePolicies, type CompiledPolicy } from './compile.js';
import { resolveEndpoints, type EndpointSet } from './endpoints.js';
import { MIN_CIDR_IDENTITY, RESERVED_IDENTITIES as R } from './identity.js';
import { cidrContains, parseCidr } from './ip.js';
import { parsePolicies, type Peer, type PolicyDoc, type PolicySection } from './policy-doc.js';
import { labelsFromList, matchSelector } from './selector.js';

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const APPS = ['a', 'b', 'c'];
const NSS = ['n1', 'n2'];
const CIDRS = ['192.0.2.0/24', '192.0.2.0/25', '192.0.2.64/26', '198.51.100.0/24'];

function randomWorld(r: () => number): { yaml: string; eps: EndpointSet } {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const specs = [];
  let n = 0;
  for (const ns of NSS)
    for (const app of APPS)
      for (const tier of ['x', 'y', undefined]) {
        if (r() < 0.3) continue;
        specs.push({ name: `p${n}`, namespace: ns, node: 'n', labels: tier ? { app, tier } : { app }, ips: [`10.205.9.${n++}`] });
      }
  const selector = (): string => {
    const k = r();
    if (k < 0.15) return '{}';
    if (k < 0.55) return `{ matchLabels: { app: ${pick(APPS)} } }`;
    if (k < 0.7) return `{ matchLabels: { app: ${pick(APPS)}, "k8s:io.kubernetes.pod.namespace": ${pick(NSS)} } }`;
    const op = pick(['In', 'NotIn', 'Exists', 'DoesNotExist']);
    const key = pick(['app', 'tier']);
    const vals = op === 'In' || op === 'NotIn' ? `, values: [${key === 'app' ? pick(APPS) : pick(['x', 'y'])}]` : '';
    return `{ matchExpressions: [ { key: ${key}, operator: ${op}${vals} } ] }`;
  };
  const ports = (): string => {
    const ps = [];
    for (let i = 0, m = 1 + Math.floor(r() * 2); i < m; i++) {
      const k = r();
      const proto = pick(['TCP', 'UDP', 'ANY', undefined]);
      const pr = proto ? `, protocol: ${proto}` : '';
      if (k < 0.15) ps.push(`{ port: "0"${pr} }`);
      else if (k < 0.35) ps.push(`{ port: "80", endPort: 82${pr} }`);
      else ps.push(`{ port: "${pick(['80', '443', '53'])}"${pr} }`);
    }
    return `toPorts: [ { ports: [ ${ps.join(', ')} ] } ]`;
  };
  const section = (dir: 'ingress' | 'egress'): string => {
    const from = dir === 'ingress' ? 'from' : 'to';
    const parts: string[] = [];
    const k = r();
    if (k < 0.45) parts.push(`${from}Endpoints: [ ${selector()} ]`);
    else if (k < 0.6) parts.push(`${from}Entities: [ ${pick(['world', 'cluster', 'all', 'host'])} ]`);
    else if (k < 0.75) parts.push(`${from}CIDR: [ ${pick(CIDRS)} ]`);
    else if (k < 0.85) parts.push(`${from}CIDRSet: [ { cidr: 192.0.2.0/24, except: [ 192.0.2.64/26 ] } ]`);
    if (r() < 0.6 || parts.length === 0) parts.push(ports());
    return `{ ${parts.join(', ')} }`;
  };
  const docs: string[] = [];
  for (let i = 0, m = 1 + Math.floor(r() * 4); i < m; i++) {
    const lines = [`apiVersion: cilium.io/v2`, `kind: CiliumNetworkPolicy`, `metadata: { name: p${i}, namespace: ${pick(NSS)} }`, `spec:`, `  endpointSelector: ${selector()}`];
    for (const dir of ['ingress', 'egress'] as const) {
      for (const deny of [false, true]) {
        if (r() < 0.45) continue;
        const secs = Array.from({ length: Math.floor(r() * 3) }, () => section(dir));
        lines.push(`  ${dir}${deny ? 'Deny' : ''}: [ ${secs.join(', ')} ]`);
      }
    }
    docs.push(lines.join('\n'));
  }
  return { yaml: docs.join('\n---\n') + '\n', eps: resolveEndpoints(specs) };
}

/** Direct semantics: not selected → allow; selected → (some allow matches) and (no deny matches). */
function evaluate(docs: PolicyDoc[], labelsOf: Map<number, Map<string, string>>, cidrIds: Map<number, string>, ep: number, peer: number, port: number, proto: number, dir: 'ingress' | 'egress'): boolean {
  const own = labelsOf.get(ep)!;
  const peerMatches = (p: Peer): boolean => {
    switch (p.type) {
      case 'any':
        return true;
      case 'endpoints': {
        const l = labelsOf.get(peer);
        return l !== undefined && matchSelector(p.selector, l);
      }
      case 'entity':
        if (p.entity === 'all') return true;
        if (p.entity === 'world') return peer === R.world || cidrIds.has(peer);
        if (p.entity === 'cluster') return labelsOf.has(peer) || peer === R.host;
        return peer === R[p.entity];
      case 'cidr': {
        const c = cidrIds.get(peer);
        if (c === undefined) return false;
        const inner = parseCidr(c)!;
        return cidrContains(parseCidr(p.cidr)!, inner) && !p.except.some((e) => cidrContains(parseCidr(e)!, inner));
      }
      case 'fqdn':
        return false; // never generated: no DNS answer teaches this world an address
    }
  };
  const portMatches = (s: PolicySection): boolean =>
    s.ports === null || s.ports.some((ps) => (ps.protocols.length === 0 || ps.protocols.includes(proto)) && (ps.port === 0 || (port >= ps.port && port <= ps.endPort)));
  let selected = false;
  let allow = false;
  let deny = false;
  for (const d of docs)
    for (const rule of d.rules) {
      const secs = rule[dir];
      if (secs === null || !matchSelector(rule.subject, own)) continue;
      selected = true;
      for (const s of secs) {
        if (!s.peers.some(peerMatches) || !portMatches(s)) continue;
        if (s.deny) deny = true;
        else allow = true;
      }
    }
  return !selected || (allow && !deny);
}

describe('compiled map rows reproduce deny-wins semantics under first-hit lookup', () => {
  it('agrees with direct rule evaluation on 150 random policy sets', () => {
    let compared = 0;
    let denied = 0;
    let explicitDenies = 0;
    for (let seed = 1; seed <= 150; seed++) {
      const r = rng(seed);
      const { yaml, eps } = randomWorld(r);
      const docs = parsePolicies(yaml, `seed-${seed}.yaml`);
      const c: CompiledPolicy = compilePolicies(docs, eps);
      // No row may have a port without a protocol: the kernel never looks such a key up.
      for (const e of c.entries) expect(e.port === 0 || e.proto !== 0, JSON.stringify(e)).toBe(true);
      const cidrIds = new Map(c.cidrIdentities.map((x) => [x.identity, x.cidr]));
      for (const x of c.cidrIdentities) expect(x.identity).toBeGreaterThanOrEqual(MIN_CIDR_IDENTITY);
      const ids = [...new Set(eps.endpoints.map((e) => e.identity))];
      const labelsOf = new Map(eps.endpoints.map((e) => [e.identity, labelsFromList(e.labelList)]));
      const peers = [...ids, R.world, R.host, ...cidrIds.keys()];
      for (const ep of ids)
        for (const peer of peers)
          for (const port of [53, 80, 81, 83, 443])
            for (const proto of [6, 17])
              for (const dir of ['ingress', 'egress'] as const) {
                const want = evaluate(docs, labelsOf, cidrIds, ep, peer, port, proto, dir);
                const got = lookupPolicy(c, ep, peer, port, proto, dir);
                if (got.allowed !== want) {
                  throw new Error(`seed ${seed}: ${dir} of ${ep} peer ${peer} ${port}/${proto}: lookup ${got.allowed}, rules ${want}\n${yaml}`);
                }
                compared++;
                if (!want) denied++;
                if (!got.allowed && !got.defaultDeny) explicitDenies++;
              }
    }
    // The generator must exercise both outcomes and explicit denies, or the test proves nothing.
    expect(compared).toBeGreaterThan(50_000);
    expect(denied / compared).toBeGreaterThan(0.1);
    expect(denied / compared).toBeLessThan(0.9);
    expect(explicitDenies).toBeGreaterThan(500);
  });
});
