import { describe, expect, it } from 'vitest';
import { compilePolicies, type CompiledPolicy, type PolicyEntry } from './compile.js';
import { diffCompiled, type PolicyDiff } from './diff.js';
import { resolveEndpoints, type EndpointSpec } from './endpoints.js';
import { parsePolicies } from './policy-doc.js';

// A small cluster: 3 namespaces × 6 apps × 2 versions.
const specs: EndpointSpec[] = [];
for (let ns = 0; ns < 3; ns++)
  for (let app = 0; app < 6; app++)
    for (let v = 0; v < 2; v++) specs.push({ name: `a${app}-${v}`, namespace: `ns${ns}`, node: 'n', labels: { app: `a${app}`, version: `v${v}` }, ips: [`10.205.${ns}.${app * 2 + v + 1}`] });
const EPS = resolveEndpoints(specs);

function policy(ns: number, app: number, port = 8080, deny = false): string {
  const peer = (app + 1) % 6;
  return `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: { name: a${app}, namespace: ns${ns} }
spec:
  endpointSelector: { matchLabels: { app: a${app} } }
  ingress:
    - fromEndpoints: [ { matchLabels: { app: a${peer} } } ]
      toPorts: [ { ports: [ { port: "${port}", protocol: TCP }, { port: "9000", endPort: 9002 } ] } ]
  egress:
    - toEndpoints: [ { matchLabels: { app: a${peer} } } ]
    - toCIDR: [ 192.0.2.0/24 ]${deny ? `\n  ingressDeny:\n    - fromEndpoints: [ { matchLabels: { app: a${peer}, version: v1 } } ]\n      toPorts: [ { ports: [ { port: "9001", protocol: TCP } ] } ]` : ''}
`;
}

function compile(docs: string[]): CompiledPolicy {
  return compilePolicies(parsePolicies(docs.join('---\n'), 'p.yaml'), EPS, { revision: 1 });
}

const rowKey = (e: PolicyEntry): string => `${e.endpointIdentity}/${e.direction}/${e.peerIdentity}/${e.port}/${e.proto}`;
const rowVal = (e: PolicyEntry): string => `${e.deny ? 'deny' : 'allow'}:${e.ruleRef}`;

/** The kernel maps a writer would hold after writing `c` from scratch. */
function maps(c: CompiledPolicy | undefined): { rows: Map<string, string>; enforce: Map<number, string> } {
  const rows = new Map<string, string>();
  for (const e of c?.entries ?? []) rows.set(rowKey(e), rowVal(e));
  const enforce = new Map<number, string>();
  for (const [id, d] of c?.enforced ?? []) if (d.ingress || d.egress) enforce.set(id, `${d.ingress}/${d.egress}`);
  return { rows, enforce };
}

function apply(m: ReturnType<typeof maps>, d: PolicyDiff): ReturnType<typeof maps> {
  const rows = new Map(m.rows);
  const enforce = new Map(m.enforce);
  for (const e of d.upserts) rows.set(rowKey(e), rowVal(e));
  for (const x of d.enforceUpserts) enforce.set(x.identity, `${x.dirs.ingress}/${x.dirs.egress}`);
  for (const id of d.enforceDeletes) {
    expect(enforce.has(id)).toBe(true);
    enforce.delete(id);
  }
  for (const e of d.deletes) {
    expect(rows.get(rowKey(e))).toBe(rowVal(e)); // deletes describe the row as it was written
    rows.delete(rowKey(e));
  }
  return { rows, enforce };
}

const base = [0, 1, 2].flatMap((ns) => [0, 1, 2, 3, 4].map((app) => policy(ns, app, 8080, app === 2)));

describe('diffCompiled', () => {
  it('from nothing: every row and enforced identity is an upsert', () => {
    const c = compile(base);
    const d = diffCompiled(undefined, c);
    expect(d.upserts).toHaveLength(c.entries.length);
    expect(d.deletes).toEqual([]);
    expect(apply(maps(undefined), d)).toEqual(maps(c));
    expect(d.enforceUpserts.length).toBe(c.enforced.size);
  });

  it('the same policies compiled again: nothing to write', () => {
    const d = diffCompiled(compile(base), compile(base));
    expect(d).toEqual({ upserts: [], deletes: [], enforceUpserts: [], enforceDeletes: [] });
  });

  it.each([
    ['one port changed', base.map((p, i) => (i === 3 ? policy(0, 3, 8443) : p))],
    ['a deny added', base.map((p, i) => (i === 0 ? policy(0, 0, 8080, true) : p))],
    ['a deny removed', base.map((p, i) => (i === 2 ? policy(0, 2) : p))],
    ['the last policy removed', base.slice(0, -1)],
    ['the first policy removed (every later ruleRef shifts)', base.slice(1)],
    ['a policy added for an app that had none', [...base, policy(1, 5)]],
    ['every policy of a namespace removed', base.filter((p) => !p.includes('namespace: ns2'))],
    ['all removed', []],
  ])('%s: applying the diff gives the maps of the new policies', (_what, next) => {
    const prev = compile(base);
    const now = compile(next);
    const d = diffCompiled(prev, now);
    expect(apply(maps(prev), d)).toEqual(maps(now));
    // Only what changed is written: no upsert repeats a row the maps already hold.
    const before = maps(prev).rows;
    for (const e of d.upserts) expect(before.get(rowKey(e))).not.toBe(rowVal(e));
    expect(d.upserts.length + d.deletes.length).toBeGreaterThan(0);
  });

  it('entries in any order, not grouped as compilePolicies emits them', () => {
    const prev = compile(base);
    const shuffled: CompiledPolicy = { ...prev, entries: [...prev.entries].reverse().sort((a, b) => (a.port % 7) - (b.port % 7)) };
    expect(diffCompiled(shuffled, prev)).toEqual({ upserts: [], deletes: [], enforceUpserts: [], enforceDeletes: [] });
    const now = compile(base.map((p, i) => (i === 3 ? policy(0, 3, 8443) : p)));
    const d = diffCompiled(shuffled, { ...now, entries: [...now.entries].reverse() });
    expect(apply(maps(prev), d)).toEqual(maps(now));
    expect(d.upserts).toHaveLength(4);
  });

  it('a one-port change touches only the rows of that policy', () => {
    const prev = compile(base);
    const d = diffCompiled(prev, compile(base.map((p, i) => (i === 3 ? policy(0, 3, 8443) : p))));
    // a3 in ns0 has two identities (v0, v1), each allowing the two identities of a4 on 8080.
    expect(d.upserts.map((e) => e.port)).toEqual([8443, 8443, 8443, 8443]);
    expect(d.deletes.map((e) => e.port)).toEqual([8080, 8080, 8080, 8080]);
    expect(d.upserts.length).toBeLessThan(prev.entries.length / 20);
  });
});
