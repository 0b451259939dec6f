// The cluster-wide endpoints file (standalone mode): which pods exist, where, with which labels
// and IPs. Every agent reads the same file, so everything derived here (identities, endpoint IDs)
// must come out the same on every node.
import { readFileSync } from 'node:fs';
import { configError } from './errors.js';
import { assignLabelIdentities, canonicalLabels, fnv1a } from './identity.js';
import { canonicalIp } from './ip.js';
import { fastLoadAll } from './yaml-fast.js';
import { YamlSource, isMap, isSeq, mapEntries, scalarText } from './yaml-source.js';
import type { YNode } from './yaml-source.js';

export interface EndpointSpec {
  name: string;
  namespace: string;
  node: string;
  labels: Record<string, string>;
  ips: string[];
  interface?: string;
  netns?: string;
  /** Declared ports, as a pod's containers declare them; named ports in policies resolve here. */
  ports?: NamedPort[];
}

export interface NamedPort {
  name: string;
  port: number;
  protocol: 'TCP' | 'UDP' | 'SCTP';
}

export interface Workload {
  name: string;
  kind: string;
}

export interface ResolvedEndpoint extends EndpointSpec {
  /** Endpoint ID (flow.Endpoint.ID), stable per (namespace, name), in [1, 65535]. */
  id: number;
  /** Security identity of the label set, the same on every node. */
  identity: number;
  /** Sorted `k8s:key=value` strings including `k8s:io.kubernetes.pod.namespace=<ns>`. */
  labelList: string[];
  workloads: Workload[];
}

export interface EndpointSet {
  endpoints: ResolvedEndpoint[];
  /** Keyed by canonical IP text (see `canonicalIp`: dotted quad, RFC 5952 IPv6). */
  byIp: Map<string, ResolvedEndpoint>;
  /** Labels of the namespaces the file declares (`namespaces:`), without the metadata.name label. */
  namespaces?: ReadonlyMap<string, Readonly<Record<string, string>>>;
}

export const NAMESPACE_LABEL = 'io.kubernetes.pod.namespace';
/** The label Kubernetes sets on every namespace, from its name. */
export const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';

/** A namespace's labels as namespace selectors see them: the declared ones and its name label. */
export function namespaceLabels(set: EndpointSet, namespace: string): Map<string, string> {
  const m = new Map(Object.entries(set.namespaces?.get(namespace) ?? {}));
  m.set(NAMESPACE_NAME_LABEL, namespace);
  return m;
}

const FIELDS = new Set(['name', 'namespace', 'node', 'labels', 'ips', 'interface', 'netns', 'workload', 'ports']);
const NAMESPACE_FIELDS = new Set(['name', 'labels']);
const PORT_FIELDS = new Set(['name', 'port', 'protocol']);
/** Kubernetes IANA_SVC_NAME: at most 15 of [a-z0-9-], a letter among them, no leading, trailing or double '-'. */
export const PORT_NAME = /^(?=.*[a-z])(?!.*--)[a-z0-9]([-a-z0-9]{0,13}[a-z0-9])?$/;

/** One `ports:` item, or the reason it is invalid. */
export function parseNamedPort(v: unknown): NamedPort | string {
  if (!isPlain(v)) return 'each port must be a mapping {name, port, protocol}';
  for (const k of Object.keys(v)) if (!PORT_FIELDS.has(k)) return `unknown field "${k}" in port (expected name, port, protocol)`;
  const { name, port, protocol } = v;
  if (typeof name !== 'string' || !PORT_NAME.test(name)) return `invalid port name ${JSON.stringify(name ?? '')} (at most 15 of a-z, 0-9, '-', with a letter)`;
  const n = typeof port === 'number' ? port : typeof port === 'string' && /^\d{1,5}$/.test(port) ? Number(port) : NaN;
  if (!Number.isInteger(n) || n < 1 || n > 65535) return `port "${name}": invalid number ${JSON.stringify(port ?? null)} (1-65535)`;
  const proto = protocol ?? 'TCP';
  if (proto !== 'TCP' && proto !== 'UDP' && proto !== 'SCTP') return `port "${name}": invalid protocol ${JSON.stringify(proto)} (expected TCP, UDP or SCTP)`;
  return { name, port: n, protocol: proto };
}

/** A `ports:` list, or the reason it is invalid. */
function parsePortList(v: unknown): NamedPort[] | string {
  if (!Array.isArray(v)) return '"ports" must be a list of {name, port, protocol}';
  const out: NamedPort[] = [];
  for (const item of v as unknown[]) {
    const p = parseNamedPort(item);
    if (typeof p === 'string') return p;
    if (out.some((q) => q.name === p.name)) return `duplicate port name "${p.name}"`;
    out.push(p);
  }
  return out;
}

/** A `namespaces:` list, or the reason it is invalid. */
function parseNamespaceList(v: unknown): Map<string, Record<string, string>> | string {
  if (!Array.isArray(v)) return '"namespaces" must be a list of {name, labels}';
  const out = new Map<string, Record<string, string>>();
  for (const item of v as unknown[]) {
    if (!isPlain(item)) return 'each namespace must be a mapping {name, labels}';
    for (const k of Object.keys(item)) if (!NAMESPACE_FIELDS.has(k)) return `unknown field "${k}" in namespace (expected name, labels)`;
    const { name, labels } = item;
    if (typeof name !== 'string' || !DNS_LABEL.test(name)) return `invalid namespace name ${JSON.stringify(name ?? '')}`;
    if (out.has(name)) return `duplicate namespace ${name}`;
    const l: Record<string, string> = {};
    if (labels !== undefined && labels !== null) {
      if (!isPlain(labels)) return `namespace ${name}: "labels" must be a mapping of key: value`;
      for (const [k, val] of Object.entries(labels)) {
        if (k === NAMESPACE_NAME_LABEL) return `namespace ${name}: label "${NAMESPACE_NAME_LABEL}" is set from "name"`;
        if (!LABEL_KEY.test(k) || k.length > 317) return `namespace ${name}: invalid label key "${k}"`;
        const t = val === null ? '' : typeof val === 'string' ? val : undefined;
        if (t === undefined || !LABEL_VALUE.test(t) || t.length > 63) return `namespace ${name}: invalid value ${JSON.stringify(val)} for label "${k}"`;
        l[k] = t;
      }
    }
    out.set(name, l);
  }
  return out;
}
// Label keys as Kubernetes allows them: optional DNS prefix, then a name of [A-Za-z0-9._-].
const LABEL_KEY = /^([a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const LABEL_VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

export function labelListFor(namespace: string, labels: Record<string, string>): string[] {
  const list = Object.entries(labels).map(([k, v]) => `k8s:${k}=${v}`);
  list.push(`k8s:${NAMESPACE_LABEL}=${namespace}`);
  return list.sort();
}

// Kubernetes generates name suffixes from this alphabet (no vowels, no 0/1/3; apimachinery rand).
const SAFE = '[bcdfghjklmnpqrstvwxz2456789]';
// Pod names controllers generate, most specific first: a CronJob's Job `<cronjob>-<minutes since
// epoch>` then `-<suffix>`; a Deployment's ReplicaSet `<deployment>-<pod-template-hash>` then
// `-<suffix>`; `<name>-<suffix>` (taken as a Deployment: a DaemonSet's pods look the same, say so
// with `workload:`); a StatefulSet's `<name>-<ordinal>`.
const GENERATED: [RegExp, string][] = [
  [new RegExp(`^(.+)-[0-9]{8,10}-${SAFE}{5}$`), 'CronJob'],
  [new RegExp(`^(.+)-${SAFE}{6,10}-${SAFE}{5}$`), 'Deployment'],
  [new RegExp(`^(.+)-${SAFE}{5}$`), 'Deployment'],
  [/^(.+)-(0|[1-9][0-9]{0,4})$/, 'StatefulSet'],
];

/**
 * The workload of a pod the endpoints file gives none for: the controller its generated name
 * implies, else the `app` (or `app.kubernetes.io/name`) label with no known kind, else the pod
 * itself. Every pod gets exactly one.
 */
export function deriveWorkload(pod: string, labels: Record<string, string>): Workload[] {
  for (const [re, kind] of GENERATED) {
    const m = re.exec(pod);
    if (m) return [{ name: m[1]!, kind }];
  }
  const app = labels.app ?? labels['app.kubernetes.io/name'];
  if (app) return [{ name: app, kind: '' }];
  return [{ name: pod, kind: 'Pod' }];
}

/** Endpoint ID slot for (namespace, name); collisions resolved in sorted order by the caller. */
function endpointIdSlot(namespace: string, name: string): number {
  return fnv1a(`${namespace}/${name}`) % 65535;
}

/** The endpoints of a file's text; throws a CONFIG FlowctlError `file:line: reason` for anything invalid. */
export function parseEndpoints(text: string, file: string): EndpointSet {
  return parseEndpointsFast(text) ?? parseEndpointsReference(text, file);
}

type Plain = Record<string, unknown>;
const isPlain = (v: unknown): v is Plain => typeof v === 'object' && v !== null && !Array.isArray(v);
const nonEmpty = (v: unknown): v is string => typeof v === 'string' && v !== '';

/**
 * The fast path (see yaml-fast.ts): the endpoints when the file is valid and written the common
 * way, else undefined and the reference reader decides, with line numbers. It accepts only what
 * the reference accepts with the same meaning: every value it reads must already be a string
 * (the reference reads `version: 1.10` as the text "1.10", a plain reader as the number 1.1),
 * and anything unusual (empty values, nulls, other documents) is left to the reference.
 */
export function parseEndpointsFast(text: string): EndpointSet | undefined {
  const docs = fastLoadAll(text);
  if (!docs || docs.length !== 1) return undefined;
  const root = docs[0];
  if (!isPlain(root) || !Array.isArray(root.endpoints)) return undefined;
  for (const k of Object.keys(root)) if (k !== 'endpoints' && k !== 'namespaces') return undefined;
  let namespaces: Map<string, Record<string, string>> | undefined;
  if (root.namespaces !== undefined) {
    const ns = parseNamespaceList(root.namespaces);
    if (typeof ns === 'string') return undefined;
    namespaces = ns;
  }
  const specs: (EndpointSpec & { workloads?: Workload[] })[] = [];
  const names = new Set<string>();
  const ipsSeen = new Set<string>();
  for (const item of root.endpoints as unknown[]) {
    if (!isPlain(item)) return undefined;
    for (const k of Object.keys(item)) if (!FIELDS.has(k)) return undefined;
    const { name, namespace, node, interface: iface, netns, labels: rawLabels, ips: rawIps, workload, ports: rawPorts } = item;
    if (!nonEmpty(name) || !nonEmpty(namespace) || !DNS_LABEL.test(namespace)) return undefined;
    for (const v of [node, iface, netns]) if (v !== undefined && !nonEmpty(v)) return undefined;
    const nsName = `${namespace}/${name}`;
    if (names.has(nsName)) return undefined;
    names.add(nsName);
    const labels: Record<string, string> = {};
    if (rawLabels !== undefined) {
      if (!isPlain(rawLabels)) return undefined;
      for (const [k, v] of Object.entries(rawLabels)) {
        if (!LABEL_KEY.test(k) || k.length > 317 || k === NAMESPACE_LABEL) return undefined;
        if (typeof v !== 'string' || !LABEL_VALUE.test(v) || v.length > 63) return undefined;
        labels[k] = v;
      }
    }
    const ips: string[] = [];
    if (rawIps !== undefined) {
      if (!Array.isArray(rawIps)) return undefined;
      for (const raw of rawIps as unknown[]) {
        const ip = typeof raw === 'string' ? canonicalIp(raw) : undefined;
        if (ip === undefined || ipsSeen.has(ip)) return undefined;
        ipsSeen.add(ip);
        ips.push(ip);
      }
    }
    let workloads: Workload[] | undefined;
    if (workload !== undefined) {
      if (nonEmpty(workload)) {
        const slash = workload.indexOf('/');
        workloads = [slash > 0 ? { kind: workload.slice(0, slash), name: workload.slice(slash + 1) } : { kind: 'Deployment', name: workload }];
      } else if (isPlain(workload)) {
        const { name: wName, kind: wKind, ...rest } = workload;
        if (Object.keys(rest).length > 0 || !nonEmpty(wName) || (wKind !== undefined && !nonEmpty(wKind))) return undefined;
        workloads = [{ name: wName, kind: wKind ?? 'Deployment' }];
      } else {
        return undefined;
      }
    }
    const spec: EndpointSpec & { workloads?: Workload[] } = { name, namespace, node: (node as string | undefined) ?? '', labels, ips };
    if (workloads) spec.workloads = workloads;
    if (iface !== undefined) spec.interface = iface as string;
    if (netns !== undefined) spec.netns = netns as string;
    if (rawPorts !== undefined) {
      const ports = parsePortList(rawPorts);
      if (typeof ports === 'string') return undefined;
      spec.ports = ports;
    }
    specs.push(spec);
  }
  return resolveEndpoints(specs, namespaces);
}

/**
 * The same through the reference reader only (the `yaml` document API, with source positions):
 * gives every error its line. Exported to check the fast path against it.
 */
export function parseEndpointsReference(text: string, file: string): EndpointSet {
  const src = new YamlSource(file);
  const doc = src.parseOne(text);
  const fail = (node: YNode | number, reason: string): never => {
    throw configError(file, typeof node === 'number' ? node : src.line(node), reason);
  };
  const err = doc.errors[0];
  if (err) fail(src.errorLine(err.pos[0]), `YAML syntax error: ${err.message.split('\n')[0]}`);

  const root = doc.contents as YNode;
  if (root === null || root === undefined || (scalarText(root) === undefined && !isMap(root) && !isSeq(root))) {
    return { endpoints: [], byIp: new Map() };
  }
  if (!isMap(root)) return fail(root, 'expected a mapping with an `endpoints` list');
  let list: YNode;
  let namespaces: Map<string, Record<string, string>> | undefined;
  for (const e of mapEntries(root)) {
    if (e.key === 'namespaces') {
      if (e.value === null || e.value === undefined) continue;
      const ns = parseNamespaceList(plainOf(e.value));
      if (typeof ns === 'string') fail(culprit(e.value, parseNamespaceList), ns);
      namespaces = ns as Map<string, Record<string, string>>;
      continue;
    }
    if (e.key !== 'endpoints') fail(e.keyNode, `unknown field "${e.key}" (expected "endpoints" or "namespaces")`);
    list = e.value;
  }
  if (list === undefined || list === null || (scalarText(list) === undefined && !isSeq(list) && !isMap(list))) {
    return resolveEndpoints([], namespaces);
  }
  if (!isSeq(list)) return fail(list, '"endpoints" must be a list');

  type Pending = { spec: EndpointSpec; labelList: string[]; workloads: Workload[] | undefined };
  const pending: Pending[] = [];
  const ipOwner = new Map<string, { where: number; who: string }>();
  const names = new Map<string, number>();

  for (const item of list.items as YNode[]) {
    if (!isMap(item)) fail(item, 'each endpoint must be a mapping');
    const m = item as Exclude<YNode, null | undefined> & { items: unknown[] };
    const fields = new Map<string, { value: YNode; keyNode: YNode }>();
    for (const e of mapEntries(m as never)) {
      if (!FIELDS.has(e.key)) fail(e.keyNode, `unknown field "${e.key}" (expected one of ${[...FIELDS].join(', ')})`);
      fields.set(e.key, { value: e.value, keyNode: e.keyNode });
    }
    const str = (key: string, required: boolean): string | undefined => {
      const f = fields.get(key);
      if (!f) return required ? fail(item, `endpoint is missing "${key}"`) : undefined;
      const s = scalarText(f.value);
      if (s === undefined || s === '') return fail(f.value ?? f.keyNode, `"${key}" must be a non-empty string`);
      return s;
    };
    const name = str('name', true)!;
    const namespace = str('namespace', true)!;
    if (!DNS_LABEL.test(namespace)) fail(fields.get('namespace')!.value, `invalid namespace "${namespace}"`);
    const node = str('node', false) ?? '';
    const iface = str('interface', false);
    const netns = str('netns', false);
    const whereItem = src.line(item);
    const nsName = `${namespace}/${name}`;
    const prev = names.get(nsName);
    if (prev !== undefined) fail(whereItem, `duplicate endpoint ${nsName} (first defined at line ${prev})`);
    names.set(nsName, whereItem);

    const labels: Record<string, string> = {};
    const lf = fields.get('labels');
    if (lf && lf.value !== null && lf.value !== undefined && scalarText(lf.value) !== undefined) {
      fail(lf.value, '"labels" must be a mapping of key: value');
    }
    if (lf && isMap(lf.value)) {
      for (const e of mapEntries(lf.value)) {
        if (!LABEL_KEY.test(e.key) || e.key.length > 317) fail(e.keyNode, `invalid label key "${e.key}"`);
        if (e.key === NAMESPACE_LABEL) fail(e.keyNode, `label "${NAMESPACE_LABEL}" is set from "namespace"`);
        const v = scalarText(e.value) ?? (e.value === null || (e.value as { value?: unknown })?.value === null ? '' : undefined);
        if (v === undefined) fail(e.value ?? e.keyNode, `label "${e.key}" must have a scalar value`);
        if (!LABEL_VALUE.test(v!) || v!.length > 63) fail(e.value ?? e.keyNode, `invalid value "${v}" for label "${e.key}"`);
        labels[e.key] = v!;
      }
    } else if (lf && lf.value && !isMap(lf.value)) {
      fail(lf.value, '"labels" must be a mapping of key: value');
    }

    const ips: string[] = [];
    const ipf = fields.get('ips');
    if (ipf && ipf.value !== null && ipf.value !== undefined) {
      if (!isSeq(ipf.value)) fail(ipf.value, '"ips" must be a list of IP addresses');
      for (const ipNode of (ipf.value as { items: YNode[] }).items) {
        const raw = scalarText(ipNode);
        const ip = raw === undefined ? undefined : canonicalIp(raw);
        if (ip === undefined) fail(ipNode, `invalid IP address "${raw ?? ''}"`);
        const owner = ipOwner.get(ip!);
        if (owner) fail(ipNode, `duplicate IP ${ip} (already used by ${owner.who} at line ${owner.where})`);
        ipOwner.set(ip!, { where: src.line(ipNode), who: nsName });
        ips.push(ip!);
      }
    }

    let workloads: Workload[] | undefined;
    const wf = fields.get('workload');
    if (wf) {
      const s = scalarText(wf.value);
      if (s !== undefined) {
        // `kind/name` or just `name` (a Deployment, the common case).
        const slash = s.indexOf('/');
        workloads = [slash > 0 ? { kind: s.slice(0, slash), name: s.slice(slash + 1) } : { kind: 'Deployment', name: s }];
      } else if (isMap(wf.value)) {
        const w: Partial<Workload> = {};
        for (const e of mapEntries(wf.value)) {
          if (e.key !== 'name' && e.key !== 'kind') fail(e.keyNode, `unknown field "${e.key}" in workload (expected name, kind)`);
          const v = scalarText(e.value);
          if (!v) fail(e.value ?? e.keyNode, `workload ${e.key} must be a non-empty string`);
          w[e.key as 'name' | 'kind'] = v!;
        }
        if (!w.name) fail(wf.value, 'workload is missing "name"');
        workloads = [{ name: w.name!, kind: w.kind ?? 'Deployment' }];
      } else {
        fail(wf.value ?? wf.keyNode, '"workload" must be `name`, `kind/name` or {name, kind}');
      }
    }

    const spec: EndpointSpec = { name, namespace, node, labels, ips };
    if (iface !== undefined) spec.interface = iface;
    if (netns !== undefined) spec.netns = netns;
    const pf = fields.get('ports');
    if (pf && pf.value !== null && pf.value !== undefined) {
      const ports = parsePortList(plainOf(pf.value));
      if (typeof ports === 'string') fail(culprit(pf.value, parsePortList), ports);
      spec.ports = ports as NamedPort[];
    }
    pending.push({ spec, labelList: labelListFor(namespace, labels), workloads });
  }

  return resolveEndpoints(pending.map((p) => ({ ...p.spec, workloads: p.workloads })), namespaces);
}

/** A YAML node as plain data with every scalar as its text (`80` → "80", `1.10` → "1.10"), null as null. */
function plainOf(node: YNode): unknown {
  if (isSeq(node)) return (node.items as YNode[]).map(plainOf);
  if (isMap(node)) return Object.fromEntries(mapEntries(node).map((e) => [e.key, plainOf(e.value)]));
  return scalarText(node) ?? null;
}

/** The first item of a list node whose prefix `parse` rejects (for its line), else the list. */
function culprit(list: YNode, parse: (v: unknown) => unknown): YNode {
  if (!isSeq(list)) return list;
  const items = list.items as YNode[];
  for (let i = 0; i < items.length; i++) if (typeof parse(items.slice(0, i + 1).map(plainOf)) === 'string') return items[i];
  return list;
}

/**
 * Identities and endpoint IDs for a list of specs. Both are assigned over the sorted set, so the
 * result does not depend on the order of the file. Exposed for other endpoint sources.
 */
export function resolveEndpoints(
  specs: (EndpointSpec & { workloads?: Workload[] })[],
  namespaces?: ReadonlyMap<string, Readonly<Record<string, string>>>,
): EndpointSet {
  const lists = specs.map((s) => labelListFor(s.namespace, s.labels));
  const identities = assignLabelIdentities(lists);

  const idOrder = specs
    .map((s, i) => ({ i, key: `${s.namespace}/${s.name}`, slot: endpointIdSlot(s.namespace, s.name) }))
    .sort((a, b) => a.slot - b.slot || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const ids = new Array<number>(specs.length);
  const takenIds = new Set<number>();
  for (const { i, slot: s0 } of idOrder) {
    let slot = s0;
    for (let n = 0; takenIds.has(slot) && n < 65535; n++) slot = (slot + 1) % 65535;
    takenIds.add(slot);
    ids[i] = slot + 1;
  }

  const endpoints: ResolvedEndpoint[] = specs.map((s, i) => {
    const { workloads, ...spec } = s;
    const labelList = lists[i]!;
    return {
      ...spec,
      id: ids[i]!,
      identity: identities.get(canonicalLabels(labelList))!,
      labelList,
      workloads: workloads ?? deriveWorkload(s.name, s.labels),
    };
  });
  const byIp = new Map<string, ResolvedEndpoint>();
  for (const ep of endpoints) for (const ip of ep.ips) byIp.set(canonicalIp(ip) ?? ip, ep);
  return namespaces && namespaces.size ? { endpoints, byIp, namespaces } : { endpoints, byIp };
}

export function loadEndpointsFile(path: string): EndpointSet {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw configError(path, 0, `cannot read: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  return parseEndpoints(text, path);
}
