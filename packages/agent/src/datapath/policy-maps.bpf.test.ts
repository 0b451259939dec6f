// policy-maps.ts against the real verdict maps of bpf/.output/flowctl.bpf.o (loaded, never
// attached: no namespaces, links or traffic): policies compiled by @flowctl/policy, written in
// batches, changed one policy at a time, a write failing half-way in the kernel, and what the
// maps hold read back key by key after every step.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BpfObject, probeFeatures, type BpfMap } from '@flowctl/bpf-loader';
import { compilePolicies, parsePolicies, resolveEndpoints, type CompiledPolicy, type EndpointSpec } from '@flowctl/policy';
import { defaultObjectDir } from './kernel.js';
import { PolicyMapWriter, encodeIpcacheKey, encodePolicyKey, encodePolicyValue, readConfig, type MapHandle, type PolicyMaps } from './policy-maps.js';

/** One writer per map set, as a datapath holds one. */
const writers = new WeakMap<PolicyMaps, PolicyMapWriter>();
function writerOf(maps: PolicyMaps): PolicyMapWriter {
  let w = writers.get(maps);
  if (!w) writers.set(maps, (w = new PolicyMapWriter(maps)));
  return w;
}

const OBJECT = join(defaultObjectDir(), 'flowctl.bpf.o');

function why(): string | undefined {
  if (!existsSync(OBJECT)) throw new Error(`${OBJECT} is missing: run make -C bpf`);
  const f = probeFeatures();
  if (!f.privileged) return `no BPF privilege (${f.privilegeError ?? 'unknown'})`;
  return undefined;
}
const skipReason = why();
if (skipReason) process.stderr.write(`\n!!! SKIPPING policy-maps.bpf.test.ts: the kernel refused BPF: ${skipReason} !!!\n\n`);

const NS = 6;
const APPS = 12;
const specs: EndpointSpec[] = [];
for (let ns = 0; ns < NS; ns++)
  for (let app = 0; app < APPS; app++)
    specs.push({ name: `app${app}`, namespace: `ns${ns}`, node: 'n1', labels: { app: `app${app}`, tier: `t${app % 3}` }, ips: [`10.203.${ns}.${app + 1}`] });
const eps = resolveEndpoints(specs);

function policies(port: (ns: number, app: number) => number, skip?: [number, number]): string {
  const docs: string[] = [];
  for (let ns = 0; ns < NS; ns++)
    for (let app = 0; app < APPS; app++) {
      if (skip && skip[0] === ns && skip[1] === app) continue;
      docs.push(`apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: { name: app${app}, namespace: ns${ns} }
spec:
  endpointSelector: { matchLabels: { app: app${app} } }
  ingress:
    - fromEndpoints: [ { matchExpressions: [ { key: tier, operator: In, values: [t${app % 3}] } ] } ]
      toPorts: [ { ports: [ { port: "${port(ns, app)}", protocol: TCP }, { port: "9000", endPort: 9007 } ] } ]
  ingressDeny:
    - fromEndpoints: [ { matchLabels: { app: app${(app + 1) % APPS} } } ]
      toPorts: [ { ports: [ { port: "9003", protocol: TCP } ] } ]
  egress:
    - toEndpoints: [ { matchLabels: { app: app${(app + 1) % APPS} } } ]
    - toCIDR: [ 192.0.2.${app}/32 ]
`);
    }
  return docs.join('---\n');
}

const compile = (yaml: string, revision: number): CompiledPolicy => compilePolicies(parsePolicies(yaml, 'p.yaml'), eps, { revision });

/** Everything in a map, key hex → value hex, read back from the kernel one key at a time. */
function dump(m: MapHandle): Map<string, string> {
  return new Map(m.keys().map((k) => [k.toString('hex'), m.lookup(k)!.toString('hex')]));
}

/** What the maps must hold for `c`, built from its entries without the writer. */
function expected(c: CompiledPolicy): { policy: Map<string, string>; enforce: Map<string, string> } {
  const policy = new Map<string, string>();
  for (const e of c.entries) {
    const k = encodePolicyKey(e).toString('hex');
    const cur = policy.get(k);
    if (cur !== undefined && (cur.endsWith('01000000') || !e.deny)) continue;
    policy.set(k, encodePolicyValue(e.deny, e.ruleRef).toString('hex'));
  }
  const enforce = new Map<string, string>();
  for (const [id, d] of c.enforced) {
    if (!d.ingress && !d.egress) continue;
    const k = Buffer.alloc(4);
    k.writeUInt32LE(id);
    const v = Buffer.alloc(4);
    v.writeUInt32LE((d.ingress ? 1 : 0) | (d.egress ? 2 : 0));
    enforce.set(k.toString('hex'), v.toString('hex'));
  }
  return { policy, enforce };
}

describe.skipIf(skipReason)('policy maps on the real kernel: batch and incremental writes', () => {
  let obj: BpfObject;
  let maps: PolicyMaps & { policy: BpfMap };
  beforeAll(() => {
    obj = BpfObject.open(OBJECT, { name: 'flowctl' });
    obj.setMaxEntries('events', 1 << 16);
    obj.load();
    maps = { ipcache: obj.map('ipcache'), policyEnforce: obj.map('policy_enforce'), policy: obj.map('policy'), config: obj.map('config') };
  });
  afterAll(() => obj?.close());

  const base = compile(policies(() => 8080), 1);

  it('first write fills the empty maps; a one-policy change writes only its rows', () => {
    expect(base.entries.length).toBeGreaterThan(2000);
    const first = writerOf(maps).writePolicy(base);
    expect(dump(maps.policy)).toEqual(expected(base).policy);
    expect(dump(maps.policyEnforce)).toEqual(expected(base).enforce);
    expect(first).toEqual({ written: expected(base).policy.size + expected(base).enforce.size, deleted: 0 });

    const changed = compile(policies((ns, app) => (ns === 2 && app === 5 ? 8443 : 8080)), 2);
    const stats = writerOf(maps).writePolicy(changed);
    // app5 in ns2 is one identity: its 8080 rows become 8443 rows, nothing else moves.
    expect(stats.written).toBe(stats.deleted);
    expect(stats.written).toBeGreaterThan(0);
    expect(stats.written).toBeLessThan(50);
    expect(dump(maps.policy)).toEqual(expected(changed).policy);
    expect(readConfig(maps.config).policyRevision).toBe(2n);

    // A policy removed: its endpoint leaves enforcement, its rows go.
    const fewer = compile(policies(() => 8080, [3, 7]), 3);
    writerOf(maps).writePolicy(fewer);
    expect(dump(maps.policy)).toEqual(expected(fewer).policy);
    expect(dump(maps.policyEnforce)).toEqual(expected(fewer).enforce);
  });

  it('a batch the kernel fails half-way is repaired by the next write (read back)', () => {
    const target = compile(policies((ns) => (ns < 3 ? 8081 : 8080)), 4);
    // The real map, except that its batch update writes only the first 10 rows and then fails,
    // as a kernel out of memory would: the writer must not believe its record afterwards.
    const real = maps.policy;
    let failing = false;
    const flaky: MapHandle = {
      lookup: (k) => real.lookup(k),
      update: (k, v) => real.update(k, v),
      delete: (k) => real.delete(k),
      keys: () => real.keys(),
      updateBatch: (keys, values) => {
        if (!failing) return real.updateBatch(keys, values);
        real.updateBatch(keys.subarray(0, 10 * 12), values.subarray(0, 10 * 8));
        throw Object.assign(new Error('bpf_map_update_batch(policy) after 10: ENOMEM'), { done: 10 });
      },
      deleteBatch: (keys) => real.deleteBatch(keys),
    };
    const flakyMaps = { ...maps, policy: flaky };
    writerOf(flakyMaps).writePolicy(base); // record what the maps hold through this handle
    failing = true;
    expect(() => writerOf(flakyMaps).writePolicy(target)).toThrow(/ENOMEM/);
    expect(dump(real).size).toBe(expected(base).policy.size + 10);
    failing = false;
    // The record of `base` is gone with the failure: read back, write the rest, delete the stale.
    writerOf(flakyMaps).writePolicy(target);
    expect(dump(real)).toEqual(expected(target).policy);
    expect(dump(maps.policyEnforce)).toEqual(expected(target).enforce);
    // The original handle's record is stale now (someone else wrote): forget it, then read back.
    writerOf(maps).forget();
    expect(writerOf(maps).writePolicy(base).written).toBeGreaterThan(0);
    expect(dump(maps.policy)).toEqual(expected(base).policy);
  });

  it('ipcache (LPM trie) written in batches, then only the change', () => {
    const ids = eps.endpoints.map((e) => ({ cidr: e.ips[0]!, identity: e.identity }));
    expect(writerOf(maps).writeIdentities(ids)).toEqual({ written: ids.length, deleted: 0 });
    const moved = ids.map((x, i) => (i === 3 ? { ...x, identity: 4242 } : x)).concat([{ cidr: '192.0.2.0/24', identity: 1 << 24 }]);
    expect(writerOf(maps).writeIdentities(moved.slice(1))).toEqual({ written: 2, deleted: 1 });
    const got = dump(maps.ipcache);
    expect(got.size).toBe(moved.length - 1);
    expect(got.get(encodeIpcacheKey(ids[3]!.cidr).toString('hex'))).toBe('9210000000000000');
    expect(got.has(encodeIpcacheKey(ids[0]!.cidr).toString('hex'))).toBe(false);
  });
});
