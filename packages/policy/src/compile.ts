// The policy compiler: rules over label selectors become rows of the kernel `policy` map keyed by
// (endpoint identity, peer identity, port, proto, direction). The kernel takes the first hit from
// most to least specific key (contracts.md, "Policy maps"); deny-wins is made to hold under that
// rule by writing the intersection of every overlapping allow/deny pair as a deny row. Proof: an
// intersection has every component at least as specific as both parents, so it comes no later in
// the lookup order; a packet matched by a deny D and an allow A is matched by A∩D, which is either
// A itself (then A's row is a deny, since D covers it) or strictly earlier than A.
import { isFlowctlError } from '@flowctl/flow/errors';
import { policyError } from './errors.js';
import type { EndpointSet, NamedPort } from './endpoints.js';
import { namespaceLabels } from './endpoints.js';
import { fqdnKey, kernelMatch, type FqdnSelector, type KernelMatch } from './fqdn.js';
import { MAX_FQDN_SELECTORS, MIN_CIDR_IDENTITY, MIN_FQDN_IDENTITY, RESERVED_IDENTITIES as R } from './identity.js';
import type { Cidr } from './ip.js';
import { cidrContains, parseCidr } from './ip.js';
import { IPPROTO, type Peer, type PolicyDoc, type PolicyKind, type PortSpec } from './policy-doc.js';
import { inBlock, policyIdentities, type IdentityGroup } from './policy-identities.js';
import type { Selector } from './selector.js';
import { labelsFromList, matchSelector, selectorKey } from './selector.js';

export interface PolicyRef {
  name: string;
  namespace: string;
  kind: string;
  labels: string[];
  revision: bigint;
}

export interface PolicyEntry {
  endpointIdentity: number;
  /** 0 = any peer */
  peerIdentity: number;
  /** 0 = any port */
  port: number;
  /** IPPROTO_*, 0 = any */
  proto: number;
  direction: 'ingress' | 'egress';
  deny: boolean;
  /** index into CompiledPolicy.refs, >= 1 */
  ruleRef: number;
}

/**
 * A toFQDNs selector in force. Its identity is never in the ipcache: it is the peer of the rows
 * that allow egress to addresses an endpoint learned from DNS answers for names it matches
 * (learned per endpoint, bpf/fqdn.bpf.h), tried when no row allows the address's own identity.
 */
export interface CompiledFqdnSelector {
  identity: number;
  selector: FqdnSelector;
  /** How the kernel recognises its names in answers. */
  kernel: KernelMatch;
}

export interface CompiledPolicy {
  revision: number;
  entries: PolicyEntry[];
  /**
   * `fqdn`: egress of the identity has toFQDNs rules, so DNS answers to it teach addresses; the
   * ruleRef of the first policy with such rules, which flows name when it denies an address
   * outside the cluster that no rule allows.
   */
  enforced: Map<number, { ingress: boolean; egress: boolean; fqdn?: number }>;
  fqdnSelectors: CompiledFqdnSelector[];
  cidrIdentities: { cidr: string; identity: number }[];
  refs: PolicyRef[];
  /**
   * Beyond the kernel's needs: which policies (ruleRef numbers) select each identity per direction,
   * so a default-deny drop can name the policies that put the endpoint into default deny.
   */
  selectedBy: Map<number, { ingress: number[]; egress: number[] }>;
  /**
   * Endpoint addresses (canonical text) whose identity is not their endpoint's label identity:
   * pods with the same labels that an ipBlock or a named port tells apart (policy-identities.ts).
   * The ipcache maps these addresses to these identities.
   */
  addressIdentities: Map<string, number>;
}

export interface CompileOptions {
  /** Default: one more than the last revision compiled in this process. */
  revision?: number;
  /** Upper bound on map rows; beyond it the compile fails rather than overflowing the kernel map. */
  maxEntries?: number;
  /**
   * The toFQDNs selectors of the policy in force: selectors still in force keep their identities
   * (the kernel's learned addresses name them by number), new ones take the lowest free.
   */
  fqdnPrevious?: readonly CompiledFqdnSelector[];
}

export const DEFAULT_MAX_ENTRIES = 1 << 21;

// The kernel caches verdicts per connection with the revision; a new compile must get a new number
// for live connections to be re-evaluated, even when the caller does not count revisions itself.
let lastRevision = 0;

// Every identity that is inside the cluster (Cilium's `cluster` entity) besides label identities.
const CLUSTER_RESERVED = [R.host, R.unmanaged, R.health, R.init, R['remote-node'], R['kube-apiserver'], R.ingress];
const WORLD_RESERVED = [R.world, R['world-ipv4'], R['world-ipv6']];

const P24 = 2 ** 24;
const key3 = (peer: number, port: number, proto: number): number => peer * P24 + port * 256 + proto;
const peerOf = (k: number): number => Math.floor(k / P24);
const portOf = (k: number): number => (k % P24) >> 8;
const protoOf = (k: number): number => k % 256;

function meet(a: number, b: number): number | undefined {
  if (a === 0) return b;
  if (b === 0 || a === b) return a;
  return undefined;
}

/** The most specific key covered by both, or undefined when they are disjoint. */
function intersect(a: number, b: number): number | undefined {
  const peer = meet(peerOf(a), peerOf(b));
  if (peer === undefined) return undefined;
  const port = meet(portOf(a), portOf(b));
  if (port === undefined) return undefined;
  const proto = meet(protoOf(a), protoOf(b));
  if (proto === undefined) return undefined;
  return key3(peer, port, proto);
}

interface IdentityInfo {
  id: number;
  labels: Map<string, string>;
  /** The namespace's labels, as namespace selectors see them. */
  nsLabels: Map<string, string>;
  ports: readonly NamedPort[];
  sample?: Cidr;
}

/** Cilium's label for a namespace's labels on its pods, so CNP endpoint selectors can name them. */
const NS_LABELS_PREFIX = 'io.cilium.k8s.namespace.labels.';

/** Identities with an index from `key=value` to identities, to avoid scanning all for each selector. */
class IdentityIndex {
  readonly all: IdentityInfo[] = [];
  readonly byId = new Map<number, IdentityInfo>();
  private readonly byLabel = new Map<string, IdentityInfo[]>();
  private readonly cache = new Map<string, number[]>();

  constructor(endpoints: EndpointSet, groups: IdentityGroup[]) {
    const nsCache = new Map<string, Map<string, string>>();
    for (const g of groups) {
      const ep = g.endpoint;
      let nsLabels = nsCache.get(ep.namespace);
      if (!nsLabels) nsCache.set(ep.namespace, (nsLabels = namespaceLabels(endpoints, ep.namespace)));
      const labels = labelsFromList(ep.labelList);
      if (endpoints.namespaces) for (const [k, v] of nsLabels) labels.set(NS_LABELS_PREFIX + k, v);
      const info: IdentityInfo = { id: g.id, labels, nsLabels, ports: ep.ports ?? [] };
      if (g.sample) info.sample = g.sample;
      this.all.push(info);
      this.byId.set(g.id, info);
      for (const [k, v] of info.labels) {
        const kv = `${k}=${v}`;
        let l = this.byLabel.get(kv);
        if (!l) this.byLabel.set(kv, (l = []));
        l.push(info);
      }
    }
    this.all.sort((a, b) => a.id - b.id);
  }

  select(sel: Selector, namespaces?: Selector): number[] {
    const cacheKey = namespaces ? `${selectorKey(sel)}\u0003${selectorKey(namespaces)}` : selectorKey(sel);
    const hit = this.cache.get(cacheKey);
    if (hit) return hit;
    let candidates = this.all;
    for (const r of sel.requirements) {
      if (r.op !== 'In' || r.values.length !== 1) continue;
      const l = this.byLabel.get(`${r.key}=${r.values[0]}`) ?? [];
      if (l.length < candidates.length) candidates = l;
    }
    const out: number[] = [];
    for (const c of candidates) {
      if (!matchSelector(sel, c.labels)) continue;
      if (namespaces && !matchSelector(namespaces, c.nsLabels)) continue;
      out.push(c.id);
    }
    this.cache.set(cacheKey, out);
    return out;
  }
}

function collectCidrs(policies: PolicyDoc[]): { cidr: Cidr; identity: number }[] {
  const texts = new Set<string>();
  for (const d of policies)
    for (const r of d.rules)
      for (const secs of [r.ingress, r.egress])
        for (const s of secs ?? [])
          for (const p of s.peers)
            if (p.type === 'cidr') {
              texts.add(p.cidr);
              for (const e of p.except) texts.add(e);
            }
  const cidrs = [...texts].map((t) => parseCidr(t)!);
  // Sorted by family, address, prefix: the numbering depends only on the set of CIDRs in force.
  cidrs.sort((a, b) => a.family - b.family || (a.addr < b.addr ? -1 : a.addr > b.addr ? 1 : a.prefix - b.prefix));
  return cidrs.map((cidr, i) => ({ cidr, identity: MIN_CIDR_IDENTITY + i }));
}

function collectFqdns(policies: PolicyDoc[], previous: readonly CompiledFqdnSelector[] = []): CompiledFqdnSelector[] {
  const byKey = new Map<string, FqdnSelector>();
  for (const d of policies)
    for (const r of d.rules)
      for (const s of r.egress ?? [])
        for (const p of s.peers) if (p.type === 'fqdn' && !byKey.has(fqdnKey(p.selector))) byKey.set(fqdnKey(p.selector), p.selector);
  if (byKey.size > MAX_FQDN_SELECTORS) throw policyError('policy', 0, `${byKey.size} distinct toFQDNs selectors (at most ${MAX_FQDN_SELECTORS})`);
  // Without a previous policy, numbered in text order: the numbering depends only on the set.
  const kept = new Map(previous.filter((p) => byKey.has(fqdnKey(p.selector))).map((p) => [fqdnKey(p.selector), p.identity]));
  const taken = new Set(kept.values());
  let free = MIN_FQDN_IDENTITY;
  const out: CompiledFqdnSelector[] = [];
  for (const [key, selector] of [...byKey.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))) {
    let identity = kept.get(key);
    if (identity === undefined) {
      while (taken.has(free)) free++;
      taken.add((identity = free));
    }
    out.push({ identity, selector, kernel: kernelMatch(selector) });
  }
  return out.sort((a, b) => a.identity - b.identity);
}

/**
 * The port * 256 + proto keys of `ports`. A named port resolves on `target` (the endpoint that
 * serves it: the subject for ingress, the peer for egress) to its declared ports of that name and
 * protocol, and to nothing without a target or a declaration.
 */
function expandPorts(ports: PortSpec[] | null, target?: IdentityInfo): number[] {
  if (ports === null) return [0];
  const out = new Set<number>();
  for (const p of ports) {
    if (p.name !== undefined) {
      for (const np of target?.ports ?? []) {
        const proto = IPPROTO[np.protocol];
        if (np.name === p.name && p.protocols.includes(proto)) out.add(np.port * 256 + proto);
      }
      continue;
    }
    // Port 0 with no protocol means L3 only; it is never written as (port, 0): the kernel has no
    // such lookup, so every ported row names its protocol.
    if (p.protocols.length === 0) {
      out.add(0);
      continue;
    }
    for (let port = p.port; port <= p.endPort; port++) for (const proto of p.protocols) out.add(port * 256 + proto);
  }
  return [...out];
}

/** One policy section made concrete: its (peer, port, proto) keys, whether it denies, its policy. */
interface SectionKeys {
  keys: number[];
  deny: boolean;
  ref: number;
}

/** What one (identity, direction) is subject to: sections by index, and how many keys they add. */
interface Bucket {
  sections: number[];
  keys: number;
}

/**
 * The rows of one (identity, direction) from the sections that apply to it, key → ref * 2 + deny.
 * Allows first (the first policy to allow a key names it), then denies over them, then the
 * intersections that make deny win under first-hit lookup (see the top of this file).
 */
function bucketRows(sectionIds: readonly number[], sections: readonly SectionKeys[]): Map<number, number> {
  const rows = new Map<number, number>();
  let anyAllow = false;
  let anyDeny = false;
  for (const id of sectionIds) {
    const sec = sections[id]!;
    if (sec.deny) {
      anyDeny = true;
      continue;
    }
    anyAllow = true;
    const v = sec.ref * 2;
    for (const k of sec.keys) if (!rows.has(k)) rows.set(k, v);
  }
  if (!anyDeny) return rows;
  // A key already denied keeps the deny that came first; an allowed key becomes a deny.
  const denyRow = (k: number, ref: number): void => {
    const r = rows.get(k);
    if (r === undefined || (r & 1) === 0) rows.set(k, ref * 2 + 1);
  };
  for (const id of sectionIds) {
    const sec = sections[id]!;
    if (sec.deny) for (const k of sec.keys) denyRow(k, sec.ref);
  }
  if (!anyAllow) return rows;
  const allowByPeer = new Map<number, number[]>();
  const seen = new Set<number>();
  for (const id of sectionIds) {
    const sec = sections[id]!;
    if (sec.deny) continue;
    for (const k of sec.keys) {
      if (seen.has(k)) continue;
      seen.add(k);
      const p = peerOf(k);
      let l = allowByPeer.get(p);
      if (!l) allowByPeer.set(p, (l = []));
      l.push(k);
    }
  }
  const allAllows = [...allowByPeer.values()].flat();
  for (const id of sectionIds) {
    const sec = sections[id]!;
    if (!sec.deny) continue;
    for (const d of sec.keys) {
      const dp = peerOf(d);
      const candidates = dp === 0 ? allAllows : [...(allowByPeer.get(dp) ?? []), ...(allowByPeer.get(0) ?? [])];
      for (const a of candidates) {
        const x = intersect(a, d);
        if (x !== undefined) denyRow(x, sec.ref);
      }
    }
  }
  return rows;
}

export function compilePolicies(policies: PolicyDoc[], endpoints: EndpointSet, opts: CompileOptions = {}): CompiledPolicy {
  const revision = opts.revision ?? lastRevision + 1;
  lastRevision = Math.max(lastRevision, revision);
  const maxEntries = opts.maxEntries ?? DEFAULT_MAX_ENTRIES;
  const identities = policyIdentities(endpoints, policies);
  const index = new IdentityIndex(endpoints, identities.groups);
  const cidrs = collectCidrs(policies);
  const fqdns = collectFqdns(policies, opts.fqdnPrevious);
  const fqdnIds = new Map(fqdns.map((f) => [fqdnKey(f.selector), f.identity]));
  const labelIds = index.all.map((i) => i.id);
  const cidrIds = cidrs.map((c) => c.identity);

  const cidrPeers = new Map<string, number[]>(); // many policies name the same CIDRs
  const peerIdentities = (p: Peer): number[] => {
    switch (p.type) {
      case 'any':
        return [0];
      case 'endpoints':
        return index.select(p.selector, p.namespaces);
      case 'fqdn':
        return [fqdnIds.get(fqdnKey(p.selector))!];
      case 'entity':
        switch (p.entity) {
          case 'all':
            return [0];
          // Our ipcache does not tell IPv4 from IPv6 world traffic (both are reserved:world).
          case 'world':
          case 'world-ipv4':
          case 'world-ipv6':
            return [...WORLD_RESERVED, ...cidrIds];
          case 'cluster':
            return [...CLUSTER_RESERVED, ...labelIds];
          default:
            return [R[p.entity]];
        }
      case 'cidr': {
        // A CIDR peer covers its own identity and every more specific CIDR identity inside it
        // (the ipcache LPM returns the longest prefix), minus those inside an `except`. A
        // Kubernetes ipBlock also covers the pods whose addresses are in it: their identities
        // hold only such addresses (policy-identities.ts).
        const key = `${p.pods ? 'pods ' : ''}${p.cidr} ${p.except.join(' ')}`;
        let ids = cidrPeers.get(key);
        if (!ids) {
          const block = { outer: parseCidr(p.cidr)!, excepts: p.except.map((e) => parseCidr(e)!) };
          ids = cidrs.filter((c) => inBlock(block, c.cidr)).map((c) => c.identity);
          if (p.pods) for (const i of index.all) if (i.sample && inBlock(block, i.sample)) ids.push(i.id);
          cidrPeers.set(key, ids);
        }
        return ids;
      }
    }
  };

  const refs: PolicyRef[] = policies.map((d) => ({ name: d.name, namespace: d.namespace, kind: d.kind as PolicyKind, labels: [...d.labels], revision: BigInt(revision) }));
  const enforced = new Map<number, { ingress: boolean; egress: boolean; fqdn?: number }>();
  const selectedBy = new Map<number, { ingress: number[]; egress: number[] }>();
  const buckets = new Map<number, Bucket>(); // identity * 2 + (egress ? 1 : 0)
  const sectionKeys: SectionKeys[] = [];

  policies.forEach((doc, di) => {
    const ref = di + 1;
    try {
      for (const rule of doc.rules) {
        const subjects = index.select(rule.subject);
        if (subjects.length === 0) continue;
        for (const dir of ['ingress', 'egress'] as const) {
          const sections = rule[dir];
          if (sections === null) continue;
          for (const s of subjects) {
            let e = enforced.get(s);
            if (!e) enforced.set(s, (e = { ingress: false, egress: false }));
            e[dir] = true;
            if (dir === 'egress' && !e.fqdn && sections.some((sec) => sec.peers.some((p) => p.type === 'fqdn'))) e.fqdn = ref;
            let sb = selectedBy.get(s);
            if (!sb) selectedBy.set(s, (sb = { ingress: [], egress: [] }));
            if (sb[dir][sb[dir].length - 1] !== ref) sb[dir].push(ref);
          }
          for (const sec of sections) {
            const peerSet = new Set<number>();
            for (const p of sec.peers) for (const id of peerIdentities(p)) peerSet.add(id);
            if (peerSet.size === 0) continue;
            const peers = peerSet.has(0) ? [0] : [...peerSet];
            const named = sec.ports?.some((p) => p.name !== undefined) ?? false;
            const add = (keys: number[], to: readonly number[]): void => {
              const id = sectionKeys.push({ keys, deny: sec.deny, ref }) - 1;
              for (const s of to) {
                const bk = s * 2 + (dir === 'egress' ? 1 : 0);
                let b = buckets.get(bk);
                if (!b) buckets.set(bk, (b = { sections: [], keys: 0 }));
                b.sections.push(id);
                b.keys += keys.length;
                if (b.keys > maxEntries) {
                  throw policyError(doc.file, doc.document, `compiled policy exceeds ${maxEntries} map entries`);
                }
              }
            };
            const cross = (ps: readonly number[], ports: number[]): number[] => ps.flatMap((peer) => ports.map((pp) => peer * P24 + pp));
            if (!named) {
              add(cross(peers, expandPorts(sec.ports)), subjects);
            } else if (dir === 'ingress') {
              // Named ports are the subject's: subjects that resolve them alike share one section.
              const bySig = new Map<string, { ports: number[]; subjects: number[] }>();
              for (const s of subjects) {
                const ports = expandPorts(sec.ports, index.byId.get(s));
                const sig = ports.join(',');
                const g = bySig.get(sig);
                if (g) g.subjects.push(s);
                else bySig.set(sig, { ports, subjects: [s] });
              }
              for (const g of bySig.values()) add(cross(peers, g.ports), g.subjects);
            } else {
              // Named ports are the peer's: resolved per peer identity; "any peer" means every
              // endpoint that declares them (nothing else has named ports).
              const numbered = sec.ports!.filter((p) => p.name === undefined);
              const keys = numbered.length ? cross(peers, expandPorts(numbered)) : [];
              const namedPorts = sec.ports!.filter((p) => p.name !== undefined);
              for (const peer of peers[0] === 0 ? index.all.map((i) => i.id) : peers) {
                const info = index.byId.get(peer);
                if (info) for (const pp of expandPorts(namedPorts, info)) keys.push(peer * P24 + pp);
              }
              add(keys, subjects);
            }
          }
        }
      }
    } catch (e) {
      if (isFlowctlError(e, 'POLICY')) throw e;
      throw policyError(doc.file, doc.document, `cannot compile: ${(e as Error).message}`);
    }
  });

  // Identities subject to the same sections get the same rows (every pod label set of one
  // workload, every identity under a namespace-wide policy): compute those rows once.
  const rowsBySections = new Map<string, Map<number, number>>();
  const bucketList: [number, Map<number, number>][] = [];
  let total = 0;
  for (const [bk, b] of buckets) {
    const sig = b.sections.join(',');
    let rows = rowsBySections.get(sig);
    if (!rows) rowsBySections.set(sig, (rows = bucketRows(b.sections, sectionKeys)));
    total += rows.size;
    if (total > maxEntries) throw policyError('policy', 0, `compiled policy exceeds ${maxEntries} map entries`);
    bucketList.push([bk, rows]);
  }
  // Sized once: hundreds of thousands of rows would otherwise be copied at every growth step.
  const entries = new Array<PolicyEntry>(total);
  let n = 0;
  for (const [bk, rows] of bucketList) {
    const endpointIdentity = Math.floor(bk / 2);
    const direction = bk % 2 ? 'egress' : 'ingress';
    for (const [k, v] of rows) {
      entries[n++] = { endpointIdentity, peerIdentity: peerOf(k), port: portOf(k), proto: protoOf(k), direction, deny: (v & 1) === 1, ruleRef: v >>> 1 };
    }
  }

  return {
    revision,
    entries,
    enforced,
    cidrIdentities: cidrs.map((c) => ({ cidr: c.cidr.text, identity: c.identity })),
    fqdnSelectors: fqdns,
    refs,
    selectedBy,
    addressIdentities: identities.byAddress,
  };
}

