// Hubble's server-side flow filters (cilium pkg/hubble/filters, hubble-api.md §2.4): inside one
// FlowFilter every populated field must match (AND), inside one field any value may (OR); a
// request keeps an event when it matches ANY whitelist filter and NO blacklist filter. Lost
// events and node-status events are never filtered.
import { Verdict } from './gen/flow/flow.js';
import type { Endpoint, Flow, FlowFilter, Service } from './gen/flow/flow.js';
import type { GetFlowsResponse } from './gen/observer/observer.js';
import { compileIpMatcher } from './ip-match.js';
import { compileLabelSelector } from './label-selector.js';
import { FlowctlError, isFlowctlError } from './errors.js';

type FlowPredicate = (f: Flow) => boolean;

const L7_EVENT_TYPE = 129;

function fail(field: string, value: unknown, reason: string): never {
  throw new FlowctlError('INVALID_ARGUMENT', `invalid ${field} filter ${JSON.stringify(value)}: ${reason}`, { field });
}

// ---- endpoint name filters (pods and services) --------------------------------------------

interface NameFilter { namespace: string; prefix: string }

/** `[ns/]name-prefix`: no slash means namespace `default`, an empty namespace means any. */
function parseNamespacedName(field: string, v: string): NameFilter {
  if (v === '') fail(field, v, 'must be "namespace/name-prefix", "namespace/" or "name-prefix"');
  const i = v.indexOf('/');
  if (i < 0) return { namespace: 'default', prefix: v };
  return { namespace: v.slice(0, i), prefix: v.slice(i + 1) };
}

function nameMatcher(field: string, values: string[]): (namespace: string, name: string) => boolean {
  const fs = values.map((v) => parseNamespacedName(field, v));
  return (namespace, name) => {
    // An endpoint with neither namespace nor name (world, host) is never selected.
    if (namespace === '' && name === '') return false;
    for (const f of fs) if ((f.namespace === '' || f.namespace === namespace) && name.startsWith(f.prefix)) return true;
    return false;
  };
}

const podOf = (e: Endpoint | undefined) => [e?.namespace ?? '', e?.pod_name ?? ''] as const;
const svcOf = (s: Service | undefined) => [s?.namespace ?? '', s?.name ?? ''] as const;

// ---- FQDN and node-name patterns (cilium pkg/hubble/filters/patterns.go) --------------------

const FQDN_ANY = '(?:[-0-9_a-z]+(?:\\.[-0-9_a-z]+)*)';

function fqdnPatternRegexp(field: string, raw: string): string {
  const p = raw.trim().replace(/\.$/, '').toLowerCase();
  if (p === '') fail(field, raw, 'empty pattern');
  if (p.endsWith('.')) fail(field, raw, 'multiple trailing dots in pattern');
  let out = '';
  for (const c of p) {
    if (c === '.') out += '\\.';
    else if (c === '*') out += '[-.0-9a-z]*';
    else if (c === '-' || c === '_' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z')) out += c;
    else fail(field, raw, `invalid character ${JSON.stringify(c)} in pattern`);
  }
  return out;
}

function compileFqdn(field: string, values: string[]): RegExp {
  return new RegExp(`^(?:${values.map((v) => fqdnPatternRegexp(field, v)).join('|')})$`);
}

function compileNodeNames(values: string[]): RegExp {
  const parts = values.map((v) => {
    if (v === '') fail('node_name', v, 'empty pattern');
    const elems = v.split('/');
    if (elems.length > 2) fail('node_name', v, 'too many slashes in pattern');
    // Without a slash the pattern names a node in any cluster.
    const [cluster, node] = elems.length === 1 ? ['', elems[0]!] : [elems[0]!, elems[1]!];
    const c = cluster === '' ? FQDN_ANY : fqdnPatternRegexp('node_name', cluster);
    const n = node === '' ? FQDN_ANY : fqdnPatternRegexp('node_name', node);
    return `${c}/${n}`;
  });
  return new RegExp(`^(?:${parts.join('|')})$`);
}

// ---- small helpers -------------------------------------------------------------------------

function regexps(field: string, values: string[]): RegExp[] {
  return values.map((v) => {
    try {
      return new RegExp(v);
    } catch (e) {
      return fail(field, v, (e as Error).message.replace(/^Invalid regular expression: /, ''));
    }
  });
}

function labelMatchers(field: string, values: string[]) {
  return values.map((v) => {
    try {
      return compileLabelSelector(v);
    } catch (e) {
      if (isFlowctlError(e, 'INVALID_ARGUMENT')) fail(field, v, e.message);
      throw e;
    }
  });
}

function parsePort(field: string, v: string): number {
  // strconv.ParseUint(v, 10, 16)
  if (!/^[0-9]+$/.test(v) || Number(v) > 65535) fail(field, v, 'not a port number (0-65535)');
  return Number(v);
}

const STATUS_EXACT = /^[1-5][0-9]{2}$/;
const STATUS_PREFIX = /^[1-5][0-9]?\+$/;

const PROTOCOLS: Record<string, FlowPredicate> = {
  icmp: (f) => f.l4?.ICMPv4 != null || f.l4?.ICMPv6 != null,
  icmpv4: (f) => f.l4?.ICMPv4 != null,
  icmpv6: (f) => f.l4?.ICMPv6 != null,
  tcp: (f) => f.l4?.TCP != null,
  udp: (f) => f.l4?.UDP != null,
  sctp: (f) => f.l4?.SCTP != null,
  vrrp: (f) => f.l4?.VRRP != null,
  igmp: (f) => f.l4?.IGMP != null,
  dns: (f) => f.l7?.dns != null,
  http: (f) => f.l7?.http != null,
  kafka: (f) => f.l7?.kafka != null,
};

function l4Ports(f: Flow): [number, number] | undefined {
  const l4 = f.l4;
  const p = l4?.TCP ?? l4?.UDP ?? l4?.SCTP;
  return p ? [p.source_port ?? 0, p.destination_port ?? 0] : undefined;
}

const ABS_URL = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*([^?#]*)/i;

function requestPath(url: string): string | undefined {
  // Go's url.ParseRequestURI: an absolute URL or an absolute path; Path is unescaped.
  let raw: string;
  if (url.startsWith('/')) raw = url.replace(/[?#].*$/, '');
  else {
    const m = ABS_URL.exec(url);
    if (!m) return undefined;
    raw = m[1]!;
  }
  try {
    return decodeURIComponent(raw);
  } catch {
    return undefined;
  }
}

const nonEmpty = <T>(xs: T[] | undefined): xs is T[] => xs !== undefined && xs.length > 0;

// ---- one FlowFilter ------------------------------------------------------------------------

/** Compiles one FlowFilter into a predicate over flows (AND of its populated fields). */
export function compileFlowFilter(ff: FlowFilter): FlowPredicate {
  const ps: FlowPredicate[] = [];

  if (nonEmpty(ff.experimental?.cel_expression)) {
    throw new FlowctlError('INVALID_ARGUMENT', 'cel_expression filters are not supported', { field: 'experimental.cel_expression' });
  }
  const hasHttp = nonEmpty(ff.http_status_code) || nonEmpty(ff.http_method) || nonEmpty(ff.http_path)
    || nonEmpty(ff.http_url) || nonEmpty(ff.http_header);
  if (hasHttp && nonEmpty(ff.event_type) && !ff.event_type.some((t) => (t.type ?? 0) === L7_EVENT_TYPE)) {
    throw new FlowctlError('INVALID_ARGUMENT', "filtering by http fields requires the event type filter to only match 'l7' events", { field: 'event_type' });
  }

  if (nonEmpty(ff.uuid)) {
    const s = new Set(ff.uuid);
    ps.push((f) => f.uuid !== undefined && s.has(f.uuid));
  }
  const ipFilter = (field: string, values: string[] | undefined, get: (f: Flow) => string | undefined) => {
    if (!nonEmpty(values)) return;
    const m = compileIpMatcher(values, (v, reason) => fail(field, v, reason));
    ps.push((f) => m(get(f)));
  };
  ipFilter('source_ip', ff.source_ip, (f) => f.IP?.source);
  ipFilter('source_ip_xlated', ff.source_ip_xlated, (f) => f.IP?.source_xlated);
  ipFilter('destination_ip', ff.destination_ip, (f) => f.IP?.destination);

  const side = (dir: 'source' | 'destination') => {
    const ep = (f: Flow) => (dir === 'source' ? f.source : f.destination);
    const pods = ff[`${dir}_pod`];
    if (nonEmpty(pods)) {
      const m = nameMatcher(`${dir}_pod`, pods);
      ps.push((f) => m(...podOf(ep(f))));
    }
    const fqdns = ff[`${dir}_fqdn`];
    if (nonEmpty(fqdns)) {
      const re = compileFqdn(`${dir}_fqdn`, fqdns);
      const names = (f: Flow) => (dir === 'source' ? f.source_names : f.destination_names);
      ps.push((f) => (names(f) ?? []).some((n) => re.test(n)));
    }
    const labels = ff[`${dir}_label`];
    if (nonEmpty(labels)) {
      const ms = labelMatchers(`${dir}_label`, labels);
      ps.push((f) => {
        const l = ep(f)?.labels;
        return ms.some((m) => m(l));
      });
    }
    const services = ff[`${dir}_service`];
    if (nonEmpty(services)) {
      const m = nameMatcher(`${dir}_service`, services);
      ps.push((f) => m(...svcOf(dir === 'source' ? f.source_service : f.destination_service)));
    }
    const workloads = ff[`${dir}_workload`];
    if (nonEmpty(workloads)) {
      ps.push((f) => {
        const ws = ep(f)?.workloads;
        if (!ws) return false;
        return workloads.some((w) => ws.some((x) => (!w.name || w.name === x.name) && (!w.kind || w.kind === x.kind)));
      });
    }
    const clusters = ff[`${dir}_cluster_name`];
    if (nonEmpty(clusters)) {
      for (const c of clusters) if (c === '') fail(`${dir}_cluster_name`, c, 'empty cluster name');
      const s = new Set(clusters);
      ps.push((f) => s.has(ep(f)?.cluster_name ?? ''));
    }
    const identities = ff[`${dir}_identity`];
    if (nonEmpty(identities)) {
      const s = new Set(identities);
      ps.push((f) => s.has(ep(f)?.identity ?? 0));
    }
    const ports = ff[`${dir}_port`];
    if (nonEmpty(ports)) {
      const s = new Set(ports.map((p) => parsePort(`${dir}_port`, p)));
      const i = dir === 'source' ? 0 : 1;
      ps.push((f) => {
        const p = l4Ports(f);
        return p !== undefined && s.has(p[i]);
      });
    }
  };
  side('source');
  side('destination');

  if (nonEmpty(ff.traffic_direction)) {
    const s = new Set<number>(ff.traffic_direction);
    ps.push((f) => s.has(f.traffic_direction ?? 0));
  }
  if (nonEmpty(ff.verdict)) {
    const s = new Set<number>(ff.verdict);
    ps.push((f) => s.has(f.verdict ?? 0));
  }
  if (nonEmpty(ff.drop_reason_desc)) {
    const s = new Set<number>(ff.drop_reason_desc);
    ps.push((f) => f.verdict === Verdict.DROPPED && s.has(f.drop_reason_desc ?? 0));
  }
  if (nonEmpty(ff.interface)) {
    const ifs = ff.interface;
    ps.push((f) => {
      const i = f.interface;
      if (!i) return false;
      return ifs.some((x) => (!x.index || x.index === i.index) && (!x.name || x.name === i.name));
    });
  }
  if (nonEmpty(ff.event_type)) {
    const ts = ff.event_type;
    ps.push((f) => {
      const e = f.event_type;
      if (!e) return false;
      return ts.some((t) => (!t.type || t.type === (e.type ?? 0)) && (!t.match_sub_type || (t.sub_type ?? 0) === (e.sub_type ?? 0)));
    });
  }
  if (nonEmpty(ff.http_status_code)) {
    const exact = new Set<string>();
    const prefixes: string[] = [];
    for (const c of ff.http_status_code) {
      if (STATUS_EXACT.test(c)) exact.add(c);
      else if (STATUS_PREFIX.test(c)) prefixes.push(c.slice(0, -1));
      else fail('http_status_code', c, 'must be a status code like "404" or a prefix like "5+" or "40+"');
    }
    ps.push((f) => {
      const code = f.l7?.http?.code;
      if (!code) return false;
      const s = String(code).padStart(3, '0');
      return exact.has(s) || prefixes.some((p) => s.startsWith(p));
    });
  }
  if (nonEmpty(ff.protocol)) {
    const preds = ff.protocol.map((p) => PROTOCOLS[p.toLowerCase()] ?? fail('protocol', p, 'unknown protocol'));
    ps.push((f) => preds.some((p) => p(f)));
  }
  if (nonEmpty(ff.reply)) {
    const want = ff.reply;
    ps.push((f) => {
      let r = f.is_reply;
      // Hubble treats an unknown direction as "not a reply" for drops only, for older clients.
      if (r === undefined) {
        if (f.verdict !== Verdict.DROPPED) return false;
        r = false;
      }
      return want.includes(r);
    });
  }
  if (nonEmpty(ff.dns_query)) {
    const res = regexps('dns_query', ff.dns_query);
    ps.push((f) => {
      const q = f.l7?.dns?.query;
      return q !== undefined && res.some((re) => re.test(q));
    });
  }
  if (nonEmpty(ff.http_method)) {
    const ms = ff.http_method.map((m) => m.toLowerCase());
    ps.push((f) => {
      const m = f.l7?.http?.method;
      return m !== undefined && f.l7?.http != null && ms.includes(m.toLowerCase());
    });
  }
  if (nonEmpty(ff.http_path)) {
    const res = regexps('http_path', ff.http_path);
    ps.push((f) => {
      const h = f.l7?.http;
      if (!h) return false;
      const p = requestPath(h.url ?? '');
      return p !== undefined && res.some((re) => re.test(p));
    });
  }
  if (nonEmpty(ff.http_url)) {
    const res = regexps('http_url', ff.http_url);
    ps.push((f) => {
      const h = f.l7?.http;
      return h != null && res.some((re) => re.test(h.url ?? ''));
    });
  }
  if (nonEmpty(ff.http_header)) {
    const hs = ff.http_header;
    ps.push((f) => {
      const headers = f.l7?.http?.headers;
      if (!headers) return false;
      return hs.some((w) => headers.some((h) => (h.key ?? '') === (w.key ?? '') && (h.value ?? '') === (w.value ?? '')));
    });
  }
  if (nonEmpty(ff.tcp_flags)) {
    const names = ['FIN', 'SYN', 'RST', 'PSH', 'ACK', 'URG', 'ECE', 'CWR', 'NS'] as const;
    const wanted = ff.tcp_flags.map((t) => names.filter((n) => t[n] === true));
    ps.push((f) => {
      const fl = f.l4?.TCP?.flags;
      if (!fl) return false;
      return wanted.some((w) => w.every((n) => fl[n] === true));
    });
  }
  if (nonEmpty(ff.node_name)) {
    const re = compileNodeNames(ff.node_name);
    ps.push((f) => {
      const n = f.node_name;
      if (!n) return false;
      return re.test(n.includes('/') ? n : `default/${n}`);
    });
  }
  if (nonEmpty(ff.node_labels)) {
    const ms = labelMatchers('node_labels', ff.node_labels);
    ps.push((f) => ms.some((m) => m(f.node_labels)));
  }
  if (nonEmpty(ff.ip_version)) {
    const s = new Set<number>(ff.ip_version);
    ps.push((f) => s.has(f.IP?.ipVersion ?? 0));
  }
  if (nonEmpty(ff.trace_id)) {
    const s = new Set(ff.trace_id);
    ps.push((f) => s.has(f.trace_context?.parent?.trace_id ?? ''));
  }
  if (nonEmpty(ff.ip_trace_id)) {
    const s = new Set(ff.ip_trace_id.map((x) => BigInt(x)));
    ps.push((f) => s.has(BigInt(f.ip_trace_id?.trace_id ?? 0n)));
  }
  if (nonEmpty(ff.encrypted)) {
    const want = ff.encrypted;
    ps.push((f) => want.includes(f.IP?.encrypted === true));
  }

  if (ps.length === 0) return () => true;
  if (ps.length === 1) return ps[0]!;
  return (f) => {
    for (const p of ps) if (!p(f)) return false;
    return true;
  };
}

const compiledOne = new WeakMap<FlowFilter, FlowPredicate>();

/** Whether `flow` matches one FlowFilter (compiled once per filter object). */
export function matchFlow(flow: Flow, filter: FlowFilter): boolean {
  let p = compiledOne.get(filter);
  if (!p) {
    p = compileFlowFilter(filter);
    compiledOne.set(filter, p);
  }
  return p(flow);
}

/**
 * The request-level predicate: whitelist.MatchOne && blacklist.MatchNone. An empty whitelist
 * keeps everything. Throws FlowctlError INVALID_ARGUMENT (naming the field and value) for an invalid filter.
 */
export function compileFilters(whitelist: FlowFilter[] = [], blacklist: FlowFilter[] = []): (r: GetFlowsResponse) => boolean {
  const wl = whitelist.map(compileFlowFilter);
  const bl = blacklist.map(compileFlowFilter);
  const flowPass = (f: Flow): boolean => {
    if (wl.length > 0) {
      let any = false;
      for (const p of wl) if (p(f)) { any = true; break; }
      if (!any) return false;
    }
    for (const p of bl) if (p(f)) return false;
    return true;
  };
  return (r) => {
    // Lost events and node-status events bypass every filter.
    if (r.flow == null) return true;
    return flowPass(r.flow);
  };
}

/** The same predicate over bare flows (for callers that hold a Flow, not a response). */
export function compileFlowPredicate(whitelist: FlowFilter[] = [], blacklist: FlowFilter[] = []): (f: Flow) => boolean {
  const p = compileFilters(whitelist, blacklist);
  return (f) => p({ flow: f });
}
