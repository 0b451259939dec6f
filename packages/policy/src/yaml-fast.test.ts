// The fast reader (js-yaml) against the reference (`yaml` document API): for every text, valid or
// not, parsePolicies must give exactly what the reference gives, the same documents or the same
// error. Texts are chosen where YAML readers are known to disagree.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parsePolicies, parsePoliciesFast, parsePoliciesReference } from './policy-doc.js';
import { fastLoadAll } from './yaml-fast.js';

const cnp = (name: string, spec: string, meta = `{ name: ${name}, namespace: shop }`): string =>
  `apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: ${meta}\nspec:\n${spec.replace(/^/gm, '  ')}\n`;
const ports = (port: string, extra = ''): string => cnp('p', `endpointSelector: {}\ningress:\n  - toPorts: [ { ports: [ { port: ${port}${extra} } ] } ]`);
const labels = (body: string): string => cnp('p', `endpointSelector: { matchLabels: { ${body} } }`);
const ORDER = readFileSync(new URL('./testdata/policies/order-service-policy.yaml', import.meta.url), 'utf8');
const GOOD = cnp('a', 'endpointSelector: { matchLabels: { app: a } }\negress:\n  - toEndpoints: [ { matchLabels: { app: b } } ]\n    toPorts: [ { ports: [ { port: "53", protocol: UDP } ] } ]');
const DENY = cnp('d', 'endpointSelector: { matchLabels: { app: a } }\ningressDeny:\n  - fromEndpoints: [ { matchExpressions: [ { key: tier, operator: In, values: [t1] } ] } ]\n    toPorts: [ { ports: [ { port: "9090", endPort: 9093, protocol: TCP } ] } ]\negress:\n  - toCIDR: [ 192.0.2.0/24 ]');
const NP = 'apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: np\n  namespace: shop\nspec:\n  podSelector:\n    matchLabels:\n      app: db\n  ingress:\n    - from:\n        - podSelector:\n            matchLabels:\n              app: api\n      ports:\n        - port: 5432\n';

const TEXTS: [string, string][] = [
  ['order-service testdata', ORDER],
  ['NetworkPolicy in block style', NP],
  ['two documents', `${GOOD}---\n${ORDER}`],
  ['empty text', ''],
  ['only a newline', '\n'],
  ['only a comment', '# nothing here\n'],
  ['only a separator', '---\n'],
  ['two separators', '---\n---\n'],
  ['leading separator', `---\n${GOOD}`],
  ['empty documents between', `${GOOD}---\n---\n${ORDER}---\n`],
  ['comment documents between', `${GOOD}---\n# c\n---\n${ORDER}`],
  ['document end markers', `${GOOD}...\n---\n${ORDER}...\n`],
  ['end marker without start', `${GOOD}...\n${ORDER}`],
  ['directive', `%YAML 1.2\n---\n${GOOD}`],
  ['YAML 1.1 directive', `%YAML 1.1\n---\n${GOOD}`],
  ['byte order mark', `\ufeff${GOOD}`],
  ['CRLF line ends', GOOD.replace(/\n/g, '\r\n')],
  ['lone CR', NP.replace('\n    matchLabels', '\n\r    matchLabels')],
  ['CR line ends', GOOD.replace(/\n/g, '\r')],
  ['NEL and line separator', labels('app: a\u0085b, x: c\u2028d')],
  ['control character', labels('app: a\u0007b')],
  ['second byte order mark', `${GOOD}---\n\ufeff${ORDER}`],
  ['tab after value', GOOD.replace('app: a }', 'app: a }\t')],
  ['tab indentation', GOOD.replace('\n  endpointSelector', '\n\tendpointSelector')],
  ['trailing comment', GOOD.replace('UDP } ] } ]', 'UDP } ] } ] # dns')],
  ['hash without space is text', labels('app: a#b')],
  ['quoted then hash', labels('app: "a"#b')],
  ['decimal port', ports('8080')],
  ['quoted port', ports('"8080"')],
  ['leading zero port', ports('08080')],
  ['plus sign port', ports('+8080')],
  ['hex port', ports('0x1F90')],
  ['signed hex port', ports('-0x10')],
  ['octal port', ports('0o17620')],
  ['YAML 1.1 octal port', ports('017620')],
  ['binary port', ports('0b1')],
  ['underscore port', ports('8_080')],
  ['float port', ports('8080.0')],
  ['float port with exponent', ports('8.08e3')],
  ['float port without leading digit', ports('.8080e4')],
  ['infinite port', ports('.inf')],
  ['NaN port', ports('.nan')],
  ['huge port', ports('123456789012345678901234567890')],
  ['int-tagged port', ports('!!int "8080"')],
  ['str-tagged port', ports('!!str 8080')],
  ['non-specific tag', ports('! 8080')],
  ['unknown tag', ports('!port 8080')],
  ['timestamp-like name', cnp('x', 'endpointSelector: {}', '{ name: 2001-12-14, namespace: shop }')],
  ['numeric name', cnp('x', 'endpointSelector: {}', '{ name: 123, namespace: shop }')],
  ['port range', ports('"9090"', ', endPort: 0x2385')],
  ['boolean label values', labels('a: true, b: True, c: FALSE, d: yes, e: on, f: off')],
  ['null label values', labels('a: ~, b: null, c: , d: Null, e: NULL, f: nULL')],
  ['numeric label values', labels('a: 1, b: 1.50, c: 0x1A, d: 1e3, e: -0')],
  ['null key ~', labels('~: x')],
  ['null key', labels('null: x')],
  ['empty key', labels(': x')],
  ['quoted null key', labels('"null": x')],
  ['numeric keys', labels('1: x, 0x10: y, 1.0: z')],
  ['boolean key', labels('true: x')],
  ['number and string key collide', labels('1: x, "1": y')],
  ['duplicate key', labels('app: x, app: y')],
  ['duplicate top-level key', `${GOOD}kind: NetworkPolicy\n`],
  ['explicit key', cnp('p', 'endpointSelector: {}\n? ingress\n: []')],
  ['sequence as key', cnp('p', 'endpointSelector: {}\n[ingress]: []')],
  ['mapping as key', labels('{ app: a }: x')],
  ['sequence key in labels', labels('[app]: a')],
  ['sequence key without space', labels('[app]:a')],
  ['flow mapping with sequence key', cnp('p', 'endpointSelector: { matchLabels: {[app]:a} }')],
  ['JSON-like quoted key without space', labels('"app":a')],
  ['anchor and alias', cnp('p', 'endpointSelector: &s { matchLabels: { app: a } }\ningress:\n  - fromEndpoints: [ *s ]')],
  ['alias without anchor', cnp('p', 'endpointSelector: *s')],
  ['merge key', cnp('p', 'endpointSelector: { <<: { matchLabels: { app: a } } }')],
  ['__proto__ key', labels('__proto__: x')],
  ['__proto__ field', cnp('p', 'endpointSelector: {}\n__proto__: { ingress: [] }')],
  ['escapes in double quotes', labels('"app": "\\x61\\u0062\\U00000063"')],
  ['escaped newline in double quotes', labels('app: "a\\\n  b"')],
  ['single quotes', labels("'app': 'it''s'")],
  ['multi-line plain scalar', cnp('p', 'endpointSelector: {}\ndescription: one\n  two\n\n  three')],
  ['multi-line flow mapping', cnp('p', 'endpointSelector: { matchLabels:\n    { app: a } }')],
  ['block scalar', cnp('p', 'endpointSelector: {}\ndescription: |\n  one\n   two\n')],
  ['folded block scalar name', cnp('x', 'endpointSelector: {}', '\n  name: >-\n    abc\n  namespace: shop')],
  ['long key', labels(`${'k'.repeat(1100)}: x`)],
  ['long plain value', labels(`app: ${'v'.repeat(1100)}`)],
  ['unclosed flow sequence', 'kind: [\n'],
  ['unclosed quote', labels('app: "a')],
  ['bad indentation', `${GOOD}  stray: 1\n`],
  ['scalar document', 'just text\n'],
  ['sequence document', '- a\n- b\n'],
  ['flow mapping document', '{ apiVersion: cilium.io/v2, kind: CiliumNetworkPolicy, metadata: { name: f, namespace: shop }, spec: { endpointSelector: {} } }\n'],
  ['JSON document', JSON.stringify({ apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', metadata: { name: 'j', namespace: 'shop' }, spec: { endpointSelector: {} } })],
  ['valid then invalid', `${GOOD}---\n${cnp('b', 'endpointSelector: {}\nbogus: 1')}`],
  ['invalid then syntax error', `${cnp('b', 'endpointSelector: {}\nbogus: 1')}---\nkind: [\n`],
  ['syntax error then invalid', `kind: [\n---\n${cnp('b', 'endpointSelector: {}\nbogus: 1')}`],
];

function outcome(f: () => unknown): unknown {
  try {
    return { ok: f() };
  } catch (e) {
    return { error: (e as Error).message, name: (e as Error).name };
  }
}

describe('fast YAML path', () => {
  it.each(TEXTS)('%s: same documents or error as the reference reader', (_what, text) => {
    expect(outcome(() => parsePolicies(text, 'p.yaml'))).toEqual(outcome(() => parsePoliciesReference(text, 'p.yaml')));
  });

  it('agrees with the reference on 5,000 random edits of valid policies', () => {
    // Edits with YAML's significant characters: the fast reader must not accept a text the
    // reference rejects or reads differently.
    const alphabet = [' ', '\n', '\t', ':', '-', '#', '"', "'", '[', ']', '{', '}', ',', '?', '!', '|', '>', '%', '@', '`', '~', '0', 'x', '.', '\\', '---\n', 'null', ': ', '*a', '&a ', '<<', '\r\n', '\n  ', '\n    ', '- ', '0x1', "''", '\\"'];
    let seed = 7;
    const rand = (n: number): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return (seed >>> 8) % n;
    };
    const bases = [ORDER, NP, `${GOOD}---\n${ORDER}`, DENY];
    let fast = 0;
    for (let i = 0; i < 5000; i++) {
      let t = bases[i % bases.length]!;
      for (let edits = 1 + rand(3); edits > 0; edits--) {
        const at = rand(t.length + 1);
        const del = rand(4) === 0 ? 1 + rand(3) : 0;
        t = t.slice(0, at) + (del ? '' : alphabet[rand(alphabet.length)]!) + t.slice(at + del);
      }
      if (fastLoadAll(t) !== undefined) fast++;
      const got = outcome(() => parsePolicies(t, 'p.yaml'));
      const want = outcome(() => parsePoliciesReference(t, 'p.yaml'));
      if (JSON.stringify(got) !== JSON.stringify(want)) expect({ text: t, got }).toEqual({ text: t, got: want });
    }
    expect(fast).toBeGreaterThan(1500);
  });

  it('takes the fast path for ordinary policies and declines where the readers differ', () => {
    // Without this, the comparison above could pass with a fast path that never runs.
    for (const t of [ORDER, NP, `${GOOD}---\n---\n${ORDER}`, ports('0x1F90'), labels('a: true, b: ~')]) expect(fastLoadAll(t), t).toBeDefined();
    for (const t of [labels('~: x'), labels('[app]: a'), cnp('p', 'endpointSelector: {}\n? ingress\n: []'), labels('app: x, app: y'), ports('!port 8080')]) {
      expect(fastLoadAll(t), t).toBeUndefined();
    }
    for (const t of [ORDER, NP, `${GOOD}---\n---\n${ORDER}`, DENY]) expect(parsePoliciesFast(t, 'p.yaml'), t).toHaveLength(t === ORDER || t === NP || t === DENY ? 1 : 2);
    expect(parsePoliciesFast(`${GOOD}---\n${cnp('b', 'endpointSelector: {}\nbogus: 1')}`, 'p.yaml')).toBeUndefined();
    const accepted = TEXTS.filter(([, t]) => fastLoadAll(t) !== undefined).length;
    expect(accepted).toBeGreaterThan(TEXTS.length / 2);
  });
});
