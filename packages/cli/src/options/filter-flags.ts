// The one declarative table of `flowctl observe` filter flags: name, help, how the value is parsed
// and which FlowFilter field(s) it fills. "both" flags write the source field into the left filter
// and the destination field into the right one; "all" flags write the same field into both.
import {
  DropReason,
  IPVersion,
  TrafficDirection,
  Verdict,
  type EventTypeFilter,
  type FlowFilter,
  type TCPFlags,
  type Workload,
} from '@flowctl/flow/gen/flow/flow';
import { CliError } from '../errors.js';
import { type FilterSetter, type FilterTracker } from './flow-filter.js';
import { RESERVED_IDENTITIES } from '../printer/identity.js';

type ArrayKeys = { [K in keyof FlowFilter]-?: NonNullable<FlowFilter[K]> extends unknown[] ? K : never }[keyof FlowFilter];
type Elem<K extends ArrayKeys> = NonNullable<FlowFilter[K]> extends (infer E)[] ? E : never;

export interface FilterFlag {
  name: string;
  short?: string;
  help: string;
  /** Boolean flags (`-4`, `-6`) take no value; `value` is what they stand for. */
  boolean?: { value: string };
  setter: FilterSetter;
}

function push<K extends ArrayKeys>(f: FlowFilter, key: K, v: Elem<K>): void {
  const arr = (f[key] ?? []) as Elem<K>[];
  arr.push(v);
  (f as Record<string, unknown>)[key] = arr;
}

function all<K extends ArrayKeys>(key: K, parse: (v: string) => Elem<K>) {
  return (t: FilterTracker, v: string) => {
    const parsed = parse(v);
    t.apply((f) => push(f, key, structuredClone(parsed)));
  };
}

function both<S extends ArrayKeys, D extends ArrayKeys>(src: S, dst: D, parse: (v: string) => Elem<S> & Elem<D>) {
  return (t: FilterTracker, v: string) => {
    const parsed = parse(v);
    t.applyLeft((f) => push(f, src, structuredClone(parsed)));
    t.applyRight((f) => push(f, dst, structuredClone(parsed)));
  };
}

const str = (v: string): string => v;

export function parseVerdict(v: string): Verdict {
  const n = (Verdict as unknown as Record<string, number>)[v];
  if (n === undefined || v === 'UNRECOGNIZED') throw new CliError('filter', `invalid --verdict value: ${v}`);
  return n as Verdict;
}

export function parseDropReason(v: string): DropReason {
  const n = (DropReason as unknown as Record<string, number>)[v];
  if (n === undefined || v === 'UNRECOGNIZED') throw new CliError('filter', `invalid --drop-reason-desc value: ${v}`);
  return n as DropReason;
}

// pkg/monitor/api/types.go MessageTypeNames and TraceObservationPoints.
export const EVENT_TYPE_NAMES: Record<string, number> = {
  drop: 1, debug: 2, capture: 3, trace: 4, 'policy-verdict': 5, recorder: 6, 'trace-sock': 7, l7: 129, agent: 130,
};
export const TRACE_POINT_NAMES: Record<string, number> = {
  'to-endpoint': 0, 'to-proxy': 1, 'to-host': 2, 'to-stack': 3, 'to-overlay': 4, 'from-endpoint': 5,
  'from-proxy': 6, 'from-host': 7, 'from-stack': 8, 'from-overlay': 9, 'from-network': 10, 'to-network': 11,
  'from-crypto': 12, 'to-crypto': 13,
};
const AGENT_SUBTYPES: Record<string, number> = {
  unspecified: 0, message: 1, 'agent-started': 2, 'policy-updated': 3, 'policy-deleted': 4,
  'endpoint-regenerate-success': 5, 'endpoint-regenerate-failure': 6, 'endpoint-created': 7,
  'endpoint-deleted': 8, 'ipcache-upserted': 9, 'ipcache-deleted': 10, 'service-upserted': 11, 'service-deleted': 12,
};

function parseUint32(s: string, what: string): number {
  if (!/^\d+$/.test(s) || Number(s) > 0xffffffff) {
    throw new CliError('filter', `unable to parse ${what} '${s}', not a known ${what} name and unable to parse as numeric value`);
  }
  return Number(s);
}

export function parseEventType(v: string): EventTypeFilter {
  const idx = v.indexOf(':');
  const typ = idx < 0 ? v : v.slice(0, idx);
  const sub = idx < 0 ? undefined : v.slice(idx + 1);
  const t = EVENT_TYPE_NAMES[typ] ?? parseUint32(typ, 'type');
  const f: EventTypeFilter = { type: t };
  if (sub !== undefined) {
    const named = t === 4 ? TRACE_POINT_NAMES[sub] : t === 130 ? AGENT_SUBTYPES[sub] : undefined;
    f.match_sub_type = true;
    f.sub_type = named ?? parseUint32(sub, 'event sub-type');
  }
  return f;
}

export function parseTcpFlags(v: string): TCPFlags {
  const flags: TCPFlags = {};
  for (const part of v.split(',')) {
    const up = part.toUpperCase();
    if (!['SYN', 'FIN', 'RST', 'PSH', 'ACK', 'URG', 'ECE', 'CWR', 'NS'].includes(up)) {
      throw new CliError('filter', `unknown tcp flag: ${part}`);
    }
    (flags as Record<string, boolean>)[up] = true;
  }
  return flags;
}

export function parseIdentity(v: string): number {
  const reserved = RESERVED_IDENTITIES.indexOf(v);
  if (reserved > 0) return reserved;
  if (/^\d+$/.test(v) && Number(v) <= 0xffffffff) return Number(v);
  throw new CliError('filter', 
    `invalid security identity, expected one of [${RESERVED_IDENTITIES.slice(1, 9).join(' ')}] or a numeric value`,
  );
}

export function parseWorkload(v: string): Workload {
  const i = v.indexOf('/');
  return i < 0 ? { name: v } : { kind: v.slice(0, i), name: v.slice(i + 1) };
}

export function parseIpVersion(v: string): IPVersion {
  switch (v.toLowerCase()) {
    case '4': case 'v4': case 'ipv4': case 'ip4':
      return IPVersion.IPv4;
    case '6': case 'v6': case 'ipv6': case 'ip6':
      return IPVersion.IPv6;
    default:
      // hubble maps anything else (including "none") to IP_NOT_USED rather than failing.
      return IPVersion.IP_NOT_USED;
  }
}

export function parseTrafficDirection(v: string): TrafficDirection {
  const td = v.toLowerCase();
  if (td === 'ingress') return TrafficDirection.INGRESS;
  if (td === 'egress') return TrafficDirection.EGRESS;
  throw new CliError('filter', `${td}: invalid traffic direction, expected ingress or egress`);
}

// Checked here, not only by the server, so that a typo fails before any connection is made.
export function parseHttpStatus(v: string): string {
  if (/^[1-5][0-9]{2}$/.test(v) || /^[1-5][0-9]?\+$/.test(v)) return v;
  throw new CliError('filter', `invalid http status code "${v}": expected a code like 404 or a prefix like 5+ or 40+`);
}

export function parsePort(v: string): string {
  if (!/^\d+$/.test(v) || Number(v) > 65535) throw new CliError('filter', `invalid port "${v}": expected 0-65535`);
  return v;
}

const ns = (v: string): string => `${v}/`;

function flag(name: string, help: string, apply: FilterSetter['apply'], short?: string): FilterFlag {
  return { name, short, help, setter: { display: short ? `-${short}, --${name}` : `--${name}`, apply } };
}

export const FILTER_FLAGS: readonly FilterFlag[] = [
  flag('not', 'Reverses the next filter to be blacklist i.e. --not --from-ip 2.2.2.2', () => {}),
  flag('uuid', 'Show the only flow matching this unique flow identifier, if any', all('uuid', str)),
  flag('fqdn', 'Show all flows related to the given fully qualified domain name (e.g. "*.cilium.io")', both('source_fqdn', 'destination_fqdn', str)),
  flag('from-fqdn', 'Show all flows originating at the given fully qualified domain name', all('source_fqdn', str)),
  flag('to-fqdn', 'Show all flows terminating at the given fully qualified domain name', all('destination_fqdn', str)),
  flag('pod', 'Show all flows related to the given pod name prefix ([namespace/]<pod-name>)', both('source_pod', 'destination_pod', str)),
  flag('from-pod', 'Show all flows originating in the given pod name prefix ([namespace/]<pod-name>)', all('source_pod', str)),
  flag('to-pod', 'Show all flows terminating in the given pod name prefix ([namespace/]<pod-name>)', all('destination_pod', str)),
  flag('namespace', 'Show all flows related to the given Kubernetes namespace', both('source_pod', 'destination_pod', ns), 'n'),
  flag('from-namespace', 'Show all flows originating in the given Kubernetes namespace', all('source_pod', ns)),
  flag('to-namespace', 'Show all flows terminating in the given Kubernetes namespace', all('destination_pod', ns)),
  flag('ip', 'Show all flows related to the given IP address or CIDR', both('source_ip', 'destination_ip', str)),
  flag('from-ip', 'Show all flows originating at the given IP address or CIDR', all('source_ip', str)),
  flag('to-ip', 'Show all flows terminating at the given IP address or CIDR', all('destination_ip', str)),
  { ...flag('ipv4', 'Show only IPv4 flows', all('ip_version', parseIpVersion), '4'), boolean: { value: 'v4' } },
  { ...flag('ipv6', 'Show only IPv6 flows', all('ip_version', parseIpVersion), '6'), boolean: { value: 'v6' } },
  flag('ip-version', 'Show only IPv4, IPv6 flows or non IP flows (none, v4, v6)', all('ip_version', parseIpVersion)),
  flag('label', 'Show only flows related to an endpoint with the given labels (e.g. "key1=value1", "reserved:world")', both('source_label', 'destination_label', str), 'l'),
  flag('from-label', 'Show only flows originating in an endpoint with the given labels', all('source_label', str)),
  flag('to-label', 'Show only flows terminating in an endpoint with the given labels', all('destination_label', str)),
  flag('service', 'Show flows where either side is the given service ([namespace/]<svc-name>)', both('source_service', 'destination_service', str)),
  flag('from-service', 'Show flows originating at the given service', all('source_service', str)),
  flag('to-service', 'Show flows terminating at the given service', all('destination_service', str)),
  flag('port', 'Show only flows with the given port in either source or destination (e.g. 8080)', both('source_port', 'destination_port', parsePort)),
  flag('from-port', 'Show only flows with the given source port', all('source_port', parsePort)),
  flag('to-port', 'Show only flows with the given destination port', all('destination_port', parsePort)),
  flag('trace-id', 'Show only flows which match this trace ID', all('trace_id', str)),
  flag('verdict', 'Show only flows with this verdict [FORWARDED, DROPPED, AUDIT, REDIRECTED, ERROR, TRACED, TRANSLATED]', all('verdict', parseVerdict)),
  flag('drop-reason-desc', 'Show only flows dropped for this reason (e.g. POLICY_DENIED)', all('drop_reason_desc', parseDropReason)),
  flag('http-status', 'Show only flows which match this HTTP status code prefix (e.g. "404", "5+")', all('http_status_code', parseHttpStatus)),
  flag('http-method', 'Show only flows which match this HTTP method (e.g. "get", "post")', all('http_method', str)),
  flag('http-path', 'Show only flows which match this HTTP path regular expression (e.g. "/page/\\d+")', all('http_path', str)),
  flag('http-url', 'Show only flows which match this HTTP URL regular expression', all('http_url', str)),
  flag('type', 'Filter by event types TYPE[:SUBTYPE] (drop, trace[:to-endpoint...], l7, policy-verdict, ...)', all('event_type', parseEventType), 't'),
  flag('protocol', 'Show only flows which match the given L4/L7 flow protocol (e.g. "udp", "http")', all('protocol', str)),
  flag('workload', 'Show all flows related to an endpoint with the given workload ([kind/]name)', both('source_workload', 'destination_workload', parseWorkload)),
  flag('from-workload', 'Show all flows originating at an endpoint with the given workload', all('source_workload', parseWorkload)),
  flag('to-workload', 'Show all flows terminating at an endpoint with the given workload', all('destination_workload', parseWorkload)),
  flag('identity', 'Show all flows related to an endpoint with the given security identity', both('source_identity', 'destination_identity', parseIdentity)),
  flag('from-identity', 'Show all flows originating at an endpoint with the given security identity', all('source_identity', parseIdentity)),
  flag('to-identity', 'Show all flows terminating at an endpoint with the given security identity', all('destination_identity', parseIdentity)),
  flag('node-name', 'Show all flows which match the given node names (e.g. "k8s*", "test-cluster/*.company.com")', all('node_name', str)),
  flag('tcp-flags', 'Show only flows which match the given TCP flags (e.g. "syn", "ack", "fin")', all('tcp_flags', parseTcpFlags)),
  flag('traffic-direction', 'Show all flows in the given traffic direction (either ingress or egress)', all('traffic_direction', parseTrafficDirection)),
];

export const FILTER_FLAG_BY_NAME: ReadonlyMap<string, FilterFlag> = new Map(FILTER_FLAGS.map((f) => [f.name, f]));
