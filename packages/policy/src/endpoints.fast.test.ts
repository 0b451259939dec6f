// The fast endpoints reader against the reference (`yaml` document API): for every text, valid or
// not, parseEndpoints must give exactly what the reference gives, the same endpoints (identities,
// IDs, workloads) or the same `file:line: reason` error.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseEndpoints, parseEndpointsFast, parseEndpointsReference, type EndpointSet } from './endpoints.js';
import { fastLoadAll } from './yaml-fast.js';

const TESTDATA = readFileSync(new URL('./testdata/endpoints.yaml', import.meta.url), 'utf8');
const ep = (fields: string): string => `endpoints:\n  - { name: web-7d9c6b-x2k4p, namespace: shop, ${fields} }\n`;
const BLOCK = 'endpoints:\n  - name: api-0\n    namespace: shop\n    node: node-1\n    labels:\n      app: api\n      app.kubernetes.io/name: api\n    ips:\n      - 10.205.9.1\n      - 2001:db8::9\n    interface: veth9\n    netns: /run/netns/fcp-9\n    workload: StatefulSet/api\n';

const TEXTS: [string, string][] = [
  ['testdata', TESTDATA],
  ['block style with every field', BLOCK],
  ['empty text', ''],
  ['comment only', '# none\n'],
  ['empty list', 'endpoints: []\n'],
  ['null list', 'endpoints:\n'],
  ['root list', '- a\n'],
  ['root scalar', 'hello\n'],
  ['extra root key', `${TESTDATA}extra: 1\n`],
  ['two documents', `${TESTDATA}---\n${TESTDATA}`],
  ['numeric label value', ep('labels: { version: 1.10 }')],
  ['boolean label value', ep('labels: { canary: true }')],
  ['null label value', ep('labels: { canary: ~ }')],
  ['empty label value', ep('labels: { canary: "" }')],
  ['prefixed label key', ep('labels: { app.kubernetes.io/name: web }')],
  ['namespace label given', ep('labels: { io.kubernetes.pod.namespace: x }')],
  ['bad label key', ep('labels: { "a b": x }')],
  ['long label value', ep(`labels: { a: ${'v'.repeat(64)} }`)],
  ['empty labels', ep('labels:')],
  ['null labels', ep('labels: ~')],
  ['labels as a list', ep('labels: [ a ]')],
  ['labels as a string', ep('labels: app=web')],
  ['empty ips', ep('ips:')],
  ['null ips', ep('ips: ~')],
  ['ips as a string', ep('ips: 10.0.0.1')],
  ['IPv6 spelled long', ep('ips: [ "2001:DB8:0:0:0:0:0:1" ]')],
  ['IPv4-mapped IPv6', ep('ips: [ "::ffff:10.0.0.1" ]')],
  ['invalid IP', ep('ips: [ 10.0.0.256 ]')],
  ['numeric IP', ep('ips: [ 167772161 ]')],
  ['duplicate IP', `${ep('ips: [ 10.0.0.1 ]')}  - { name: b, namespace: shop, ips: [ 10.0.0.1 ] }\n`],
  ['duplicate name', `${ep('ips: [ 10.0.0.1 ]')}  - { name: web-7d9c6b-x2k4p, namespace: shop }\n`],
  ['missing namespace', 'endpoints:\n  - { name: a }\n'],
  ['bad namespace', 'endpoints:\n  - { name: a, namespace: Shop }\n'],
  ['numeric name', 'endpoints:\n  - { name: 123, namespace: shop }\n'],
  ['numeric node', ep('node: 1')],
  ['empty node', ep('node: ""')],
  ['null node', ep('node: ~')],
  ['unknown field', ep('zone: a')],
  ['workload name', ep('workload: web')],
  ['workload kind/name', ep('workload: DaemonSet/agent')],
  ['workload empty', ep('workload: ""')],
  ['workload map', ep('workload: { name: web, kind: StatefulSet }')],
  ['workload map without kind', ep('workload: { name: web }')],
  ['workload map without name', ep('workload: { kind: Job }')],
  ['workload map extra key', ep('workload: { name: web, replicas: 2 }')],
  ['workload numeric', ep('workload: 7')],
  ['pod name implies no workload', 'endpoints:\n  - { name: standalone, namespace: shop }\n'],
  ['item not a mapping', 'endpoints:\n  - just-a-name\n'],
  ['duplicate key', ep('node: a, node: b')],
  ['anchor', 'endpoints:\n  - &e { name: a, namespace: shop }\n'],
];

/** Comparable form: the endpoints, and byIp as IP → namespace/name. */
function outcome(f: () => EndpointSet): unknown {
  try {
    const s = f();
    return { endpoints: s.endpoints, byIp: [...s.byIp].map(([ip, e]) => `${ip} ${e.namespace}/${e.name}`) };
  } catch (e) {
    return { error: (e as Error).message, name: (e as Error).name };
  }
}

describe('fast endpoints path', () => {
  it.each(TEXTS)('%s: same endpoints or error as the reference reader', (_what, text) => {
    expect(outcome(() => parseEndpoints(text, 'eps.yaml'))).toEqual(outcome(() => parseEndpointsReference(text, 'eps.yaml')));
  });

  it('takes the fast path for ordinary files and leaves the rest to the reference', () => {
    for (const t of [TESTDATA, BLOCK, ep('workload: { name: web }'), ep('ips: [ "2001:DB8:0:0:0:0:0:1" ]')]) expect(parseEndpointsFast(t), t).toBeDefined();
    for (const t of [ep('labels: { version: 1.10 }'), ep('labels:'), ep('node: 1'), '', `${TESTDATA}---\n${TESTDATA}`, ep('zone: a')]) expect(parseEndpointsFast(t), t).toBeUndefined();
  });

  it('agrees with the reference on 3,000 random edits of valid files', () => {
    const alphabet = [' ', '\n', ':', '-', '#', '"', "'", '[', ']', '{', '}', ',', '~', '0', '1', '.', '/', '::', ': ', '\n  ', '\n    ', '- ', 'null', 'true', '1.10'];
    let seed = 11;
    const rand = (n: number): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return (seed >>> 8) % n;
    };
    const bases = [TESTDATA, BLOCK];
    let fast = 0;
    for (let i = 0; i < 3000; i++) {
      let t = bases[i % bases.length]!;
      for (let edits = 1 + rand(3); edits > 0; edits--) {
        const at = rand(t.length + 1);
        const del = rand(4) === 0 ? 1 + rand(3) : 0;
        t = t.slice(0, at) + (del ? '' : alphabet[rand(alphabet.length)]!) + t.slice(at + del);
      }
      if (fastLoadAll(t) !== undefined) fast++;
      const got = JSON.stringify(outcome(() => parseEndpoints(t, 'eps.yaml')));
      const want = JSON.stringify(outcome(() => parseEndpointsReference(t, 'eps.yaml')));
      if (got !== want) expect({ text: t, got }).toEqual({ text: t, got: want });
    }
    expect(fast).toBeGreaterThan(1000);
  });
});
