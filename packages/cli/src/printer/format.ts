// The strings of hubble's text outputs: timestamps, host names, identities, the TYPE column.
// Texts were checked against the real hubble CLI (v0.12.3) by the equivalence test.
import {
  DebugCapturePoint,
  FlowType,
  SocketTranslationPoint,
  TrafficDirection,
  Verdict,
  type Flow,
} from '@flowctl/flow/gen/flow/flow';
import type { Timestamp } from '@flowctl/flow/gen/google/protobuf/timestamp';
import { identityName } from './identity.js';

export const TIME_FORMATS = [
  'StampMilli', 'YearMonthDay', 'YearMonthDayHour', 'YearMonthDayHourMinute', 'RFC3339', 'RFC3339Milli',
  'RFC3339Micro', 'RFC3339Nano', 'RFC1123Z',
] as const;
export type TimeFormat = (typeof TIME_FORMATS)[number];

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const p2 = (n: number) => (n < 10 ? '0' + n : String(n));

function zone(offsetMin: number, colon: boolean, z: boolean): string {
  if (offsetMin === 0 && z) return 'Z';
  const sign = offsetMin < 0 ? '-' : '+';
  const a = Math.abs(offsetMin);
  return sign + p2(Math.floor(a / 60)) + (colon ? ':' : '') + p2(a % 60);
}

// Go's ".999…" layouts drop trailing zeros (and the dot when nothing is left).
function trimmedFraction(nanos: number, digits: number): string {
  const s = String(nanos).padStart(9, '0').slice(0, digits).replace(/0+$/, '');
  return s ? '.' + s : '';
}

/** Go's time.Format in the local zone, for the layouts `--time-format` accepts. */
export function formatTime(ts: Timestamp | undefined, layout: TimeFormat): string {
  const seconds = Number(ts?.seconds ?? 0n);
  const nanos = ts?.nanos ?? 0;
  const d = new Date(seconds * 1000);
  const off = -d.getTimezoneOffset();
  const Y = String(d.getFullYear()).padStart(4, '0');
  const M = p2(d.getMonth() + 1);
  const D = p2(d.getDate());
  const h = p2(d.getHours());
  const m = p2(d.getMinutes());
  const s = p2(d.getSeconds());
  switch (layout) {
    case 'StampMilli':
      return `${MONTHS[d.getMonth()]} ${String(d.getDate()).padStart(2, ' ')} ${h}:${m}:${s}.${String(nanos).padStart(9, '0').slice(0, 3)}`;
    case 'YearMonthDay':
      return `${Y}-${M}-${D}`;
    case 'YearMonthDayHour':
      return `${Y}-${M}-${D}T${h}${zone(off, true, true)}`;
    case 'YearMonthDayHourMinute':
      return `${Y}-${M}-${D}T${h}:${m}${zone(off, true, true)}`;
    case 'RFC3339':
      return `${Y}-${M}-${D}T${h}:${m}:${s}${zone(off, true, true)}`;
    case 'RFC3339Milli':
      return `${Y}-${M}-${D}T${h}:${m}:${s}${trimmedFraction(nanos, 3)}${zone(off, true, true)}`;
    case 'RFC3339Micro':
      return `${Y}-${M}-${D}T${h}:${m}:${s}${trimmedFraction(nanos, 6)}${zone(off, true, true)}`;
    case 'RFC3339Nano':
      return `${Y}-${M}-${D}T${h}:${m}:${s}${trimmedFraction(nanos, 9)}${zone(off, true, true)}`;
    case 'RFC1123Z':
      return `${DAYS[d.getDay()]}, ${D} ${MONTHS[d.getMonth()]} ${Y} ${h}:${m}:${s} ${zone(off, false, false)}`;
  }
}

export function parseTimeFormat(v: string): TimeFormat {
  const f = TIME_FORMATS.find((x) => x.toLowerCase() === v.toLowerCase());
  if (!f) throw new Error(`invalid --time-format value "${v}": expected one of ${TIME_FORMATS.join(', ')}`);
  return f;
}

export function identityText(id: number | undefined): string {
  const n = id ?? 0;
  const name = identityName(n);
  return name ? `(${name})` : `(ID:${n})`;
}

const TRACE_POINTS = [
  'to-endpoint', 'to-proxy', 'to-host', 'to-stack', 'to-overlay', 'from-endpoint', 'from-proxy', 'from-host',
  'from-stack', 'from-overlay', 'from-network', 'to-network',
];

// pkg/monitor/api/drop.go texts, as printed by hubble's TYPE column.
const DROP_TEXT: Record<number, string> = {
  130: 'Invalid source mac', 131: 'Invalid destination mac', 132: 'Invalid source ip', 133: 'Policy denied',
  134: 'Invalid packet', 135: 'CT: Truncated or invalid header', 136: 'Fragmentation needed',
  137: 'CT: Unknown L4 protocol', 138: "CT: Can't create entry from packet", 139: 'Unsupported L3 protocol',
  140: 'Missed tail call', 141: 'Error writing to packet', 142: 'Unknown L4 protocol', 143: 'Unknown ICMPv4 code',
  144: 'Unknown ICMPv4 type', 145: 'Unknown ICMPv6 code', 146: 'Unknown ICMPv6 type',
  147: 'Error retrieving tunnel key', 148: 'Error retrieving tunnel options', 149: 'Invalid Geneve option',
  150: 'Unknown L3 target address', 151: 'Stale or unroutable IP', 152: 'No matching local container found',
  153: 'Error while correcting L3 checksum', 154: 'Error while correcting L4 checksum', 155: 'CT: Map insertion failed',
  156: 'Invalid IPv6 extension header', 157: 'IP fragmentation not supported', 158: 'Service backend not found',
  160: 'No tunnel/encapsulation endpoint (datapath BUG!)', 161: 'NAT 46/64 not enabled',
  162: 'Reached EDT rate-limiting drop horizon', 163: 'Unknown connection tracking state',
  164: 'Local host is unreachable', 165: 'No configuration available to perform policy decision',
  166: 'Unsupported L2 protocol', 167: 'No mapping for NAT masquerade', 168: 'Unsupported protocol for NAT masquerade',
  169: 'FIB lookup failed', 170: 'Encapsulation traffic is prohibited', 171: 'Invalid identity', 172: 'Unknown sender',
  173: 'NAT not needed', 174: 'Is a ClusterIP', 175: 'First logical datagram fragment not found',
  176: 'Forbidden ICMPv6 message', 177: 'Denied by LB src range check', 178: 'Socket lookup failed',
  179: 'Socket assign failed', 180: 'Proxy redirection not supported for protocol', 181: 'Policy denied by denylist',
  182: 'VLAN traffic disallowed by VLAN filter', 183: 'Incorrect VNI from VTEP', 184: 'Failed to update or lookup TC buffer',
  185: 'No SID was found for the IP address', 186: 'SRv6 state was removed during tail call',
  187: 'L3 translation from IPv4 to IPv6 failed (NAT46)', 188: 'L3 translation from IPv6 to IPv4 failed (NAT64)',
  189: 'Authentication required', 190: 'No conntrack map found', 191: 'No nat map found', 192: 'Invalid ClusterID',
  193: 'Unsupported packet protocol for DSR encapsulation', 194: 'No egress gateway found', 196: 'TTL exceeded',
  197: 'No node ID found',
};

export function dropReasonText(code: number): string {
  return DROP_TEXT[code] ?? `${code}, 0`;
}

const MATCH_TYPES = ['none', 'L3-Only', 'L3-L4', 'L4-Only', 'all', 'L3-Proto', 'Proto-Only'];

/** hubble's GetFlowType: the TYPE column. */
export function flowTypeText(f: Flow): string {
  const l7 = f.l7;
  if (l7) {
    const t = ['unknown_l7_type', 'request', 'response', 'sample'][l7.type ?? 0] ?? 'unknown';
    if (l7.dns) return `dns-${t} ${l7.dns.observation_source ?? ''}`;
    if (l7.http) return `http-${t}`;
    if (l7.kafka) return `kafka-${t}`;
    return `l7-${t}`;
  }
  const et = f.event_type;
  const sub = et?.sub_type ?? 0;
  switch (et?.type ?? 0) {
    case 4:
      return TRACE_POINTS[sub] ?? String(sub);
    case 1:
      return dropReasonText(sub);
    case 5: {
      const dir = TrafficDirection[f.traffic_direction ?? 0] ?? String(f.traffic_direction);
      return `policy-verdict:${MATCH_TYPES[f.policy_match_type ?? 0] ?? 'unknown'} ${dir}`;
    }
    case 3:
      return DebugCapturePoint[f.debug_capture_point ?? 0] ?? String(f.debug_capture_point);
    case 7:
      switch (f.sock_xlate_point) {
        case SocketTranslationPoint.SOCK_XLATE_POINT_PRE_DIRECTION_FWD: return 'pre-xlate-fwd';
        case SocketTranslationPoint.SOCK_XLATE_POINT_POST_DIRECTION_FWD: return 'post-xlate-fwd';
        case SocketTranslationPoint.SOCK_XLATE_POINT_PRE_DIRECTION_REV: return 'pre-xlate-rev';
        case SocketTranslationPoint.SOCK_XLATE_POINT_POST_DIRECTION_REV: return 'post-xlate-rev';
        // flowctl's TCP connection records (docs/flows.md) are socket events without a
        // translation point.
        case undefined:
        case SocketTranslationPoint.SOCK_XLATE_POINT_UNKNOWN:
          if (f.Type === FlowType.SOCK) return 'socket';
          return SocketTranslationPoint[f.sock_xlate_point ?? 0] ?? 'UNKNOWN';
        default: return SocketTranslationPoint[f.sock_xlate_point ?? 0] ?? 'UNKNOWN';
      }
  }
  return 'UNKNOWN';
}

/** The VERDICT column; policy-verdict events speak of the policy decision instead. */
export function verdictText(f: Flow): string {
  const v = f.verdict ?? 0;
  if (f.event_type?.type === 5) {
    if (v === Verdict.DROPPED || v === Verdict.ERROR) return 'DENIED';
    if (v === Verdict.AUDIT) return 'AUDITED';
    return 'ALLOWED';
  }
  return Verdict[v] ?? String(v);
}

function ports(f: Flow): [string, string] {
  const l4 = f.l4;
  const p = l4?.TCP ?? l4?.UDP ?? l4?.SCTP;
  if (!p) return ['', ''];
  return [String(p.source_port ?? 0), String(p.destination_port ?? 0)];
}

export interface HostParts { host: string; port: string }

function hostname(ip: string, port: string, ns: string, pod: string, svc: string, names: string[] | undefined, translate: boolean): HostParts {
  let host = ip;
  if (translate) {
    // path.Join: the slash disappears when the namespace is empty.
    if (pod) host = ns ? `${ns}/${pod}` : pod;
    else if (svc) host = ns ? `${ns}/${svc}` : svc;
    else if (names?.length) host = names.join(',');
  }
  if (port && port !== '0') {
    return { host: host.includes(':') ? `[${host}]` : host, port };
  }
  return { host, port: '' };
}

/** hubble's GetHostNames: source and destination as `ns/pod:port`, FQDNs or `ip:port`. */
export function hostNames(f: Flow, translate: boolean): [HostParts, HostParts] {
  if (!f.IP) {
    const eth = f.ethernet;
    return [{ host: eth?.source ?? '', port: '' }, { host: eth?.destination ?? '', port: '' }];
  }
  let srcNs = '', dstNs = '', srcPod = '', dstPod = '', srcSvc = '', dstSvc = '';
  if (translate) {
    srcNs = f.source?.namespace ?? '';
    srcPod = f.source?.pod_name ?? '';
    dstNs = f.destination?.namespace ?? '';
    dstPod = f.destination?.pod_name ?? '';
    if (f.source_service) {
      srcNs = f.source_service.namespace ?? '';
      srcSvc = f.source_service.name ?? '';
    }
    if (f.destination_service) {
      dstNs = f.destination_service.namespace ?? '';
      dstSvc = f.destination_service.name ?? '';
    }
  }
  const [sp, dp] = ports(f);
  return [
    hostname(f.IP.source ?? '', sp, srcNs, srcPod, srcSvc, f.source_names, translate),
    hostname(f.IP.destination ?? '', dp, dstNs, dstPod, dstSvc, f.destination_names, translate),
  ];
}

export function joinWithCutOff(elems: readonly string[], sep: string, target: number): string {
  let len = 0;
  let end = elems.length;
  for (let i = 0; i < elems.length; i++) {
    len += elems[i]!.length + sep.length;
    if (len > target && i > 0) {
      end = i;
      break;
    }
  }
  const joined = elems.slice(0, end).join(sep);
  const omitted = elems.length - end;
  return omitted === 0 ? joined : `${joined} (and ${omitted} more)`;
}
