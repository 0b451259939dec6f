// Policy documents (CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy, Kubernetes NetworkPolicy)
// parsed into one normalised rule model. Everything a user can get wrong is rejected here, with the
// document number and the field path, so the compiler only ever sees valid rules.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { FlowctlError, isFlowctlError } from '@flowctl/flow/errors';
import { policyError } from './errors.js';
import { NAMESPACE_LABEL, PORT_NAME } from './endpoints.js';
import { canonicalFqdn, type FqdnSelector } from './fqdn.js';
import { cidrContains, parseCidr } from './ip.js';
import type { Operator, Requirement, Selector } from './selector.js';
import { fastLoadAll } from './yaml-fast.js';
import { YamlSource } from './yaml-source.js';

export type PolicyKind = 'CiliumNetworkPolicy' | 'CiliumClusterwideNetworkPolicy' | 'NetworkPolicy';

export const ENTITIES = ['world', 'world-ipv4', 'world-ipv6', 'host', 'remote-node', 'cluster', 'all', 'health', 'init', 'unmanaged', 'kube-apiserver', 'ingress'] as const;
export type Entity = (typeof ENTITIES)[number];

export type Peer =
  /** Endpoints whose labels match `selector` and whose namespace matches `namespaces` (if set). */
  | { type: 'endpoints'; selector: Selector; namespaces?: Selector }
  | { type: 'entity'; entity: Entity }
  /**
   * Addresses in `cidr` but not in `except`. `pods`: endpoints' own addresses count too
   * (Kubernetes ipBlock); without it only CIDR identities do (Cilium's toCIDR/fromCIDR).
   */
  | { type: 'cidr'; cidr: string; except: string[]; pods?: boolean }
  /** Addresses the subject learned from DNS answers for names the selector matches (toFQDNs). */
  | { type: 'fqdn'; selector: FqdnSelector }
  | { type: 'any' };

export const IPPROTO = { TCP: 6, UDP: 17, SCTP: 132 } as const;

/** One port (or range) with the protocols it applies to; port 0 means every port. */
export interface PortSpec {
  port: number;
  endPort: number;
  protocols: number[]; // [] = any protocol (only with port 0)
  /** A named port (then port and endPort are 0): resolved per endpoint from its declared ports. */
  name?: string;
}

export interface PolicySection {
  deny: boolean;
  peers: Peer[];
  /** null = every port and protocol */
  ports: PortSpec[] | null;
}

export interface PolicyRule {
  /** Endpoints the rule applies to (namespace already folded in for namespaced kinds). */
  subject: Selector;
  /** null: the rule does not select the subject for this direction (no default deny from it). */
  ingress: PolicySection[] | null;
  egress: PolicySection[] | null;
}

export interface PolicyDoc {
  kind: PolicyKind;
  name: string;
  /** '' for cluster-wide policies */
  namespace: string;
  /** Hubble Policy labels (`k8s:io.cilium.k8s.policy.name=...`). */
  labels: string[];
  file: string;
  /** 1-based document number within the file */
  document: number;
  rules: PolicyRule[];
  /** Has `toPorts[].rules.dns`: accepted (it names the DNS traffic toFQDNs learns from), not enforced. */
  dnsRules?: boolean;
}

/** Ranges wider than this are almost certainly a mistake and would flood the kernel map. */
export const MAX_PORT_RANGE = 4096;

const CILIUM_VERSIONS = new Set(['cilium.io/v2', 'cilium.io/v1alpha1']);
const LABEL_KEY = /^([a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const LABEL_VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/;
const NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;
const METADATA_FIELDS = ['name', 'namespace', 'labels', 'annotations', 'uid', 'resourceVersion', 'generation', 'creationTimestamp'];

const bad = (path: string, reason: string): never => {
  throw new FlowctlError('POLICY', path ? `${path}: ${reason}` : reason);
};

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function obj(v: unknown, path: string, allowed: readonly string[], unsupported: readonly string[] = []): Obj {
  if (!isObj(v)) return bad(path, 'must be a mapping');
  for (const k of Object.keys(v)) {
    if (unsupported.includes(k)) bad(join2(path, k), 'not supported by flowctl');
    if (!allowed.includes(k)) bad(path, `unknown field "${k}"`);
  }
  return v;
}

function list(v: unknown, path: string): unknown[] {
  if (v === null || v === undefined) return [];
  if (!Array.isArray(v)) return bad(path, 'must be a list');
  return v;
}

function str(v: unknown, path: string): string {
  if (typeof v !== 'string' || v === '') return bad(path, 'must be a non-empty string');
  return v;
}

function join2(path: string, k: string | number): string {
  return typeof k === 'number' ? `${path}[${k}]` : path ? `${path}.${k}` : k;
}

/** Strips a `k8s:`/`any:` source prefix; other sources cannot be matched by our endpoints. */
function labelKey(raw: string, path: string): string {
  let key = raw;
  const colon = raw.indexOf(':');
  if (colon >= 0) {
    const source = raw.slice(0, colon);
    if (source === 'reserved') bad(path, `label "${raw}": select reserved identities with fromEntities/toEntities`);
    if (source !== 'k8s' && source !== 'any') bad(path, `label "${raw}": unsupported label source "${source}"`);
    key = raw.slice(colon + 1);
  }
  if (!LABEL_KEY.test(key) || key.length > 317) bad(path, `invalid label key "${raw}"`);
  return key;
}

function labelValue(v: unknown, path: string): string {
  const s = typeof v === 'number' || typeof v === 'boolean' ? String(v) : v === null ? '' : v;
  if (typeof s !== 'string' || !LABEL_VALUE.test(s) || s.length > 63) bad(path, `invalid label value ${JSON.stringify(v)}`);
  return s as string;
}

const OPERATORS: readonly Operator[] = ['In', 'NotIn', 'Exists', 'DoesNotExist'];

export function parseSelector(v: unknown, path: string): Selector {
  if (v === null || v === undefined) return { requirements: [] };
  const o = obj(v, path, ['matchLabels', 'matchExpressions']);
  const requirements: Requirement[] = [];
  if (o.matchLabels !== undefined && o.matchLabels !== null) {
    const ml = obj(o.matchLabels, join2(path, 'matchLabels'), Object.keys(o.matchLabels as Obj));
    for (const [k, val] of Object.entries(ml)) {
      const p = join2(join2(path, 'matchLabels'), k);
      requirements.push({ key: labelKey(k, p), op: 'In', values: [labelValue(val, p)] });
    }
  }
  list(o.matchExpressions, join2(path, 'matchExpressions')).forEach((e, i) => {
    const p = join2(join2(path, 'matchExpressions'), i);
    const x = obj(e, p, ['key', 'operator', 'values']);
    const key = labelKey(str(x.key, join2(p, 'key')), join2(p, 'key'));
    const op = x.operator as Operator;
    if (!OPERATORS.includes(op)) bad(join2(p, 'operator'), `unknown operator ${JSON.stringify(x.operator)} (expected In, NotIn, Exists, DoesNotExist)`);
    const values = list(x.values, join2(p, 'values')).map((val, j) => labelValue(val, join2(join2(p, 'values'), j)));
    if ((op === 'In' || op === 'NotIn') && values.length === 0) bad(join2(p, 'values'), `operator ${op} needs at least one value`);
    if ((op === 'Exists' || op === 'DoesNotExist') && values.length > 0) bad(join2(p, 'values'), `operator ${op} takes no values`);
    requirements.push({ key, op, values });
  });
  return { requirements };
}

/** Scopes a selector to `namespace` unless it already says which namespace it means. */
function inNamespace(s: Selector, namespace: string): Selector {
  if (!namespace || s.requirements.some((r) => r.key === NAMESPACE_LABEL)) return s;
  return { requirements: [...s.requirements, { key: NAMESPACE_LABEL, op: 'In', values: [namespace] }] };
}

/** A port's name when `v` is one (a Kubernetes IANA_SVC_NAME), else undefined. */
function portName(v: unknown, path: string): string | undefined {
  if (typeof v !== 'string' || /^\d+$/.test(v)) return undefined;
  if (!PORT_NAME.test(v)) bad(path, `invalid port ${JSON.stringify(v)} (a number, or a name of at most 15 of a-z, 0-9, '-')`);
  return v;
}

function parsePortNumber(v: unknown, path: string): number {
  const s = typeof v === 'number' ? String(v) : v;
  if (typeof s !== 'string' || !/^\d{1,5}$/.test(s)) return bad(path, `invalid port ${JSON.stringify(v)}`);
  const n = Number(s);
  if (n > 65535) bad(path, `port ${n} out of range 0-65535`);
  return n;
}

function protocols(v: unknown, path: string, dflt: string, allowAny: boolean): number[] {
  const p = v === undefined || v === null ? dflt : v;
  if (p === 'ANY' && allowAny) return [IPPROTO.TCP, IPPROTO.UDP, IPPROTO.SCTP];
  if (p === 'TCP' || p === 'UDP' || p === 'SCTP') return [IPPROTO[p]];
  return bad(path, `invalid protocol ${JSON.stringify(v)} (expected TCP, UDP, SCTP${allowAny ? ' or ANY' : ''})`);
}

function portRange(port: number, endPort: unknown, path: string, name?: string): number {
  if (endPort === undefined || endPort === null) return port;
  if (name !== undefined) bad(path, `endPort needs a numeric port, not the named port "${name}"`);
  const end = parsePortNumber(endPort, path);
  if (port === 0) bad(path, 'endPort needs a port');
  if (end < port) bad(path, `port range ${port}-${end} is inverted`);
  if (end - port + 1 > MAX_PORT_RANGE) bad(path, `port range ${port}-${end} spans ${end - port + 1} ports (at most ${MAX_PORT_RANGE})`);
  return end;
}

function fqdnSelector(v: unknown, path: string): FqdnSelector {
  const o = obj(v, path, ['matchName', 'matchPattern']);
  const fields = (['matchName', 'matchPattern'] as const).filter((f) => o[f] !== undefined);
  if (fields.length !== 1) bad(path, 'needs exactly one of matchName and matchPattern');
  const f = fields[0]!;
  const c = canonicalFqdn(str(o[f], join2(path, f)), f === 'matchPattern');
  if (typeof c !== 'string') return bad(join2(path, f), c.error);
  return f === 'matchName' || !c.includes('*') ? { matchName: c } : { matchPattern: c };
}

/** `toPorts[].rules`: only `dns` (validated, not enforced: see PolicyDoc.dnsRules). */
function portRules(v: unknown, path: string, dns: { seen: boolean }): void {
  const o = obj(v, path, ['dns'], ['http', 'kafka', 'l7proto', 'l7']);
  list(o.dns, join2(path, 'dns')).forEach((r, i) => fqdnSelector(r, join2(join2(path, 'dns'), i)));
  dns.seen = true;
}

function ciliumPorts(v: unknown, path: string, deny: boolean, dns: { seen: boolean }, dir: 'ingress' | 'egress'): PortSpec[] {
  const out: PortSpec[] = [];
  list(v, path).forEach((pr, i) => {
    const p = join2(path, i);
    // DNS rules are egress allow rules (they name the traffic toFQDNs learns from).
    const rules = !deny && dir === 'egress';
    const tls = ['terminatingTLS', 'originatingTLS', 'serverNames', 'listener'];
    const o = obj(pr, p, rules ? ['ports', 'rules'] : ['ports'], deny ? ['rules'] : rules ? tls : ['rules', ...tls]);
    if (rules && o.rules !== undefined) portRules(o.rules, join2(p, 'rules'), dns);
    list(o.ports, join2(p, 'ports')).forEach((pp, j) => {
      const q = join2(join2(p, 'ports'), j);
      const x = obj(pp, q, ['port', 'protocol', 'endPort']);
      const name = portName(x.port, join2(q, 'port'));
      const port = x.port === undefined || name !== undefined ? 0 : parsePortNumber(x.port, join2(q, 'port'));
      const endPort = portRange(port, x.endPort, join2(q, 'endPort'), name);
      const protos = protocols(x.protocol, join2(q, 'protocol'), 'ANY', true);
      // Port 0 with ANY is L3-only: every port of every protocol (ICMP included), as in Cilium.
      const l3Only = name === undefined && port === 0 && (x.protocol === undefined || x.protocol === 'ANY');
      out.push({ port, endPort, protocols: l3Only ? [] : protos, ...(name !== undefined && { name }) });
    });
  });
  return out;
}

function cidrText(v: unknown, path: string): string {
  const c = parseCidr(str(v, path));
  if (!c) return bad(path, `invalid CIDR ${JSON.stringify(v)}`);
  return c.text;
}

function cidrSet(v: unknown, path: string): Peer {
  const o = obj(v, path, ['cidr', 'except'], ['cidrGroupRef', 'cidrGroupSelector']);
  const cidr = cidrText(o.cidr, join2(path, 'cidr'));
  const outer = parseCidr(cidr)!;
  const except = list(o.except, join2(path, 'except')).map((e, i) => {
    const t = cidrText(e, join2(join2(path, 'except'), i));
    const inner = parseCidr(t)!;
    if (!cidrContains(outer, inner)) {
      bad(join2(join2(path, 'except'), i), `${t} is not inside ${cidr}`);
    }
    return t;
  });
  return { type: 'cidr', cidr, except };
}

function ciliumSection(v: unknown, path: string, dir: 'ingress' | 'egress', deny: boolean, namespace: string, dns: { seen: boolean }): PolicySection {
  const from = dir === 'ingress' ? 'from' : 'to';
  const peerFields = [`${from}Endpoints`, `${from}Entities`, `${from}CIDR`, `${from}CIDRSet`];
  // toFQDNs: egress allow rules only, as in Cilium (egressDeny has no toFQDNs).
  const fqdns = dir === 'egress' && !deny;
  const unsupported = dir === 'ingress'
    ? ['fromRequires', 'fromGroups', 'fromNodes', 'icmps', 'authentication']
    : ['toRequires', 'toGroups', 'toNodes', ...(fqdns ? [] : ['toFQDNs']), 'toServices', 'icmps', 'authentication'];
  const o = obj(v, path, [...peerFields, ...(fqdns ? ['toFQDNs'] : []), 'toPorts'], unsupported);
  const peers: Peer[] = [];
  list(o[`${from}Endpoints`], join2(path, `${from}Endpoints`)).forEach((s, i) => {
    peers.push({ type: 'endpoints', selector: inNamespace(parseSelector(s ?? {}, join2(join2(path, `${from}Endpoints`), i)), namespace) });
  });
  list(o[`${from}Entities`], join2(path, `${from}Entities`)).forEach((e, i) => {
    if (!(ENTITIES as readonly unknown[]).includes(e)) bad(join2(join2(path, `${from}Entities`), i), `unknown entity ${JSON.stringify(e)} (expected one of ${ENTITIES.join(', ')})`);
    peers.push({ type: 'entity', entity: e as Entity });
  });
  list(o[`${from}CIDR`], join2(path, `${from}CIDR`)).forEach((c, i) => {
    peers.push({ type: 'cidr', cidr: cidrText(c, join2(join2(path, `${from}CIDR`), i)), except: [] });
  });
  list(o[`${from}CIDRSet`], join2(path, `${from}CIDRSet`)).forEach((c, i) => peers.push(cidrSet(c, join2(join2(path, `${from}CIDRSet`), i))));
  if (o.toFQDNs !== undefined) {
    // Cilium refuses toFQDNs next to another L3 field of the same rule.
    const other = peerFields.find((f) => o[f] !== undefined);
    if (other) bad(join2(path, 'toFQDNs'), `cannot be combined with ${other} in one rule`);
    list(o.toFQDNs, join2(path, 'toFQDNs')).forEach((s, i) => peers.push({ type: 'fqdn', selector: fqdnSelector(s, join2(join2(path, 'toFQDNs'), i)) }));
  }
  const hasPeerField = peerFields.some((f) => o[f] !== undefined) || o.toFQDNs !== undefined;
  const hasPorts = o.toPorts !== undefined;
  // Cilium: no L3 field means "any peer" only when ports narrow the rule; an empty rule allows nothing.
  if (!hasPeerField && hasPorts) peers.push({ type: 'any' });
  return { deny, peers, ports: hasPorts ? ciliumPorts(o.toPorts, join2(path, 'toPorts'), deny, dns, dir) : null };
}

function ciliumRule(v: unknown, path: string, namespace: string, dns: { seen: boolean }): PolicyRule {
  const o = obj(v, path, ['endpointSelector', 'ingress', 'ingressDeny', 'egress', 'egressDeny', 'labels', 'description'], ['nodeSelector', 'enableDefaultDeny']);
  if (o.endpointSelector === undefined) bad(path, 'missing endpointSelector');
  const subject = inNamespace(parseSelector(o.endpointSelector, join2(path, 'endpointSelector')), namespace);
  const sections = (dir: 'ingress' | 'egress'): PolicySection[] | null => {
    if (o[dir] === undefined && o[`${dir}Deny`] === undefined) return null;
    return [
      ...list(o[dir], join2(path, dir)).map((s, i) => ciliumSection(s ?? {}, join2(join2(path, dir), i), dir, false, namespace, dns)),
      ...list(o[`${dir}Deny`], join2(path, `${dir}Deny`)).map((s, i) => ciliumSection(s ?? {}, join2(join2(path, `${dir}Deny`), i), dir, true, namespace, dns)),
    ];
  };
  return { subject, ingress: sections('ingress'), egress: sections('egress') };
}

function k8sPorts(v: unknown, path: string): PortSpec[] | null {
  const ports = list(v, path);
  if (ports.length === 0) return null;
  return ports.map((pp, i) => {
    const q = join2(path, i);
    const x = obj(pp, q, ['port', 'protocol', 'endPort']);
    const name = portName(x.port, join2(q, 'port'));
    const port = x.port === undefined || name !== undefined ? 0 : parsePortNumber(x.port, join2(q, 'port'));
    const spec: PortSpec = { port, endPort: portRange(port, x.endPort, join2(q, 'endPort'), name), protocols: protocols(x.protocol, join2(q, 'protocol'), 'TCP', false) };
    if (name !== undefined) spec.name = name;
    return spec;
  });
}

function k8sPeers(v: unknown, path: string, namespace: string): Peer[] {
  const peers = list(v, path);
  // An empty or missing from/to matches every source/destination (Kubernetes semantics).
  if (peers.length === 0) return [{ type: 'any' }];
  return peers.map((pv, i) => {
    const p = join2(path, i);
    const o = obj(pv, p, ['podSelector', 'namespaceSelector', 'ipBlock']);
    if (o.ipBlock !== undefined) {
      if (o.podSelector !== undefined || o.namespaceSelector !== undefined) bad(p, 'ipBlock cannot be combined with podSelector or namespaceSelector');
      // Kubernetes: an ipBlock selects every address in it, pods' own included.
      return { ...cidrSet(o.ipBlock, join2(p, 'ipBlock')), pods: true };
    }
    if (o.podSelector === undefined && o.namespaceSelector === undefined) bad(p, 'needs podSelector, namespaceSelector or ipBlock');
    const pods = parseSelector(o.podSelector ?? {}, join2(p, 'podSelector'));
    if (o.namespaceSelector === undefined) return { type: 'endpoints', selector: inNamespace(pods, namespace) };
    return { type: 'endpoints', selector: pods, namespaces: parseSelector(o.namespaceSelector ?? {}, join2(p, 'namespaceSelector')) };
  });
}

function k8sSpec(v: unknown, namespace: string): PolicyRule {
  const o = obj(v, 'spec', ['podSelector', 'policyTypes', 'ingress', 'egress']);
  if (o.podSelector === undefined) bad('spec', 'missing podSelector');
  const subject = inNamespace(parseSelector(o.podSelector, 'spec.podSelector'), namespace);
  const types = o.policyTypes === undefined
    ? ['Ingress', ...(o.egress !== undefined ? ['Egress'] : [])]
    : list(o.policyTypes, 'spec.policyTypes').map((t, i) => (t === 'Ingress' || t === 'Egress' ? t : bad(`spec.policyTypes[${i}]`, `invalid policy type ${JSON.stringify(t)} (expected Ingress or Egress)`)));
  const sections = (dir: 'ingress' | 'egress', peerField: 'from' | 'to'): PolicySection[] | null => {
    const rules = list(o[dir], `spec.${dir}`).map((r, i) => {
      const p = `spec.${dir}[${i}]`;
      const x = obj(r ?? {}, p, [peerField, 'ports']);
      return { deny: false, peers: k8sPeers(x[peerField], join2(p, peerField), namespace), ports: k8sPorts(x.ports, join2(p, 'ports')) };
    });
    return types.includes(dir === 'ingress' ? 'Ingress' : 'Egress') ? rules : null;
  };
  return { subject, ingress: sections('ingress', 'from'), egress: sections('egress', 'to') };
}

function policyLabels(kind: PolicyKind, name: string, namespace: string): string[] {
  const l = [`k8s:io.cilium.k8s.policy.derived-from=${kind}`, `k8s:io.cilium.k8s.policy.name=${name}`];
  if (namespace) l.push(`k8s:io.cilium.k8s.policy.namespace=${namespace}`);
  return l;
}

function parseDoc(v: unknown, file: string, document: number): PolicyDoc {
  const top = obj(v, '', ['apiVersion', 'kind', 'metadata', 'spec', 'specs', 'status']);
  const kind = top.kind;
  const api = top.apiVersion;
  if (kind !== 'CiliumNetworkPolicy' && kind !== 'CiliumClusterwideNetworkPolicy' && kind !== 'NetworkPolicy') {
    return bad('kind', `unsupported kind ${JSON.stringify(kind)} (expected CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy or NetworkPolicy)`);
  }
  if (kind === 'NetworkPolicy' ? api !== 'networking.k8s.io/v1' : !CILIUM_VERSIONS.has(api as string)) {
    bad('apiVersion', `unsupported apiVersion ${JSON.stringify(api)} for ${kind}`);
  }
  const meta = obj(top.metadata, 'metadata', METADATA_FIELDS);
  const name = str(meta.name, 'metadata.name');
  if (!NAME.test(name)) bad('metadata.name', `invalid name "${name}"`);
  let namespace = '';
  if (kind === 'CiliumClusterwideNetworkPolicy') {
    if (meta.namespace !== undefined) bad('metadata.namespace', 'a cluster-wide policy has no namespace');
  } else {
    namespace = meta.namespace === undefined ? 'default' : str(meta.namespace, 'metadata.namespace');
    if (!NAME.test(namespace)) bad('metadata.namespace', `invalid namespace "${namespace}"`);
  }
  let rules: PolicyRule[];
  const dns = { seen: false };
  if (kind === 'NetworkPolicy') {
    if (top.specs !== undefined) bad('', 'unknown field "specs"');
    if (top.spec === undefined) bad('', 'missing spec');
    rules = [k8sSpec(top.spec, namespace)];
  } else {
    if (top.spec === undefined && top.specs === undefined) bad('', 'missing spec or specs');
    rules = [
      ...(top.spec !== undefined ? [ciliumRule(top.spec, 'spec', namespace, dns)] : []),
      ...list(top.specs, 'specs').map((s, i) => ciliumRule(s, `specs[${i}]`, namespace, dns)),
    ];
  }
  return { kind, name, namespace, labels: policyLabels(kind, name, namespace), file, document, rules, ...(dns.seen && { dnsRules: true }) };
}

/** All policy documents of one YAML file; throws a POLICY FlowctlError on the first invalid one. */
export function parsePolicies(text: string, file: string): PolicyDoc[] {
  return parsePoliciesFast(text, file) ?? parsePoliciesReference(text, file);
}

/** The fast path: the documents when every one is valid, else undefined (see yaml-fast.ts). */
export function parsePoliciesFast(text: string, file: string): PolicyDoc[] | undefined {
  const docs = fastLoadAll(text);
  if (!docs) return undefined;
  const out: PolicyDoc[] = [];
  for (let i = 0; i < docs.length; i++) {
    const js = docs[i];
    if (js === null || js === undefined) continue;
    try {
      out.push(parseDoc(js, file, i + 1));
    } catch (e) {
      if (isFlowctlError(e, 'POLICY')) return undefined;
      throw e;
    }
  }
  return out;
}

/**
 * The same through the reference reader only (the `yaml` document API, with source positions):
 * gives every error its document and line. Exported to check the fast path against it.
 */
export function parsePoliciesReference(text: string, file: string): PolicyDoc[] {
  const src = new YamlSource(file);
  const docs = src.parseAll(text);
  const out: PolicyDoc[] = [];
  docs.forEach((doc, i) => {
    const n = i + 1;
    const err = doc.errors[0];
    if (err) throw policyError(file, n, `YAML syntax error at line ${src.errorLine(err.pos[0])}: ${err.message.split('\n')[0]}`);
    const js: unknown = doc.toJS({ maxAliasCount: 100 });
    if (js === null || js === undefined) return; // an empty document (e.g. a trailing `---`)
    try {
      out.push(parseDoc(js, file, n));
    } catch (e) {
      if (isFlowctlError(e, 'POLICY')) throw policyError(file, n, e.message);
      throw e;
    }
  });
  return out;
}

export function loadPolicyFile(path: string): PolicyDoc[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw policyError(path, 0, `cannot read: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  return parsePolicies(text, path);
}

/** `*.yaml`/`*.yml` of `dir` sorted by name (not recursive, no dot files), or `dir` itself when a file. */
export function policyFiles(dir: string): string[] {
  try {
    return statSync(dir).isDirectory()
      ? readdirSync(dir).filter((f) => /\.ya?ml$/.test(f) && !f.startsWith('.')).sort().map((f) => join(dir, f))
      : [dir];
  } catch (e) {
    throw policyError(dir, 0, `cannot read: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
}

/** Every policy in `*.yaml`/`*.yml` of `dir` (sorted by file name, not recursive), or of one file. */
export function loadPolicyDir(dir: string): PolicyDoc[] {
  return noDuplicatePolicies(policyFiles(dir).flatMap((f) => loadPolicyFile(f)));
}

/** Returns `docs`; two with the same kind, namespace and name are an error: which one wins would be arbitrary. */
export function noDuplicatePolicies(docs: PolicyDoc[]): PolicyDoc[] {
  const seen = new Map<string, PolicyDoc>();
  for (const d of docs) {
    const key = `${d.kind}/${d.namespace}/${d.name}`;
    const prev = seen.get(key);
    if (prev) throw policyError(d.file, d.document, `duplicate ${d.kind} ${d.namespace ? d.namespace + '/' : ''}${d.name} (also ${prev.file}: document ${prev.document})`);
    seen.set(key, d);
  }
  return docs;
}

