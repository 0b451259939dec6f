// FlowFilters as protojson text (proto field names, enum names, declaration order, zero values
// omitted): what `--print-raw-filters` prints and `--allowlist/--denylist` read.
import {
  DropReason,
  FlowFilter,
  IPVersion,
  TrafficDirection,
  Verdict,
  type EventTypeFilter,
  type HTTPHeader,
  type NetworkInterface,
  type TCPFlags,
  type Workload,
} from '@flowctl/flow/gen/flow/flow';
import { CliError } from '../errors.js';

type Enc = (v: unknown) => unknown;
const enumName = (e: Record<number, string>): Enc => (v) => e[v as number] ?? v;
const same: Enc = (v) => v;
const big: Enc = (v) => String(v);
const workload: Enc = (v) => compact({ name: (v as Workload).name, kind: (v as Workload).kind });
const eventType: Enc = (v) => {
  const e = v as EventTypeFilter;
  return compact({ type: e.type, match_sub_type: e.match_sub_type, sub_type: e.sub_type });
};
const tcpFlags: Enc = (v) => {
  const f = v as TCPFlags;
  return compact({ FIN: f.FIN, SYN: f.SYN, RST: f.RST, PSH: f.PSH, ACK: f.ACK, URG: f.URG, ECE: f.ECE, CWR: f.CWR, NS: f.NS });
};
const iface: Enc = (v) => compact({ index: (v as NetworkInterface).index, name: (v as NetworkInterface).name });
const header: Enc = (v) => compact({ key: (v as HTTPHeader).key, value: (v as HTTPHeader).value });

// Declaration order of flow.FlowFilter, which is protojson's key order.
const FIELDS: [keyof FlowFilter, Enc][] = [
  ['uuid', same], ['source_ip', same], ['source_ip_xlated', same], ['source_pod', same], ['source_fqdn', same],
  ['source_label', same], ['source_service', same], ['source_workload', workload], ['source_cluster_name', same],
  ['destination_ip', same], ['destination_pod', same], ['destination_fqdn', same], ['destination_label', same],
  ['destination_service', same], ['destination_workload', workload], ['destination_cluster_name', same],
  ['traffic_direction', enumName(TrafficDirection)], ['verdict', enumName(Verdict)],
  ['drop_reason_desc', enumName(DropReason)], ['interface', iface], ['event_type', eventType],
  ['http_status_code', same], ['protocol', same], ['source_port', same], ['destination_port', same],
  ['reply', same], ['dns_query', same], ['source_identity', same], ['destination_identity', same],
  ['http_method', same], ['http_path', same], ['http_url', same], ['http_header', header], ['tcp_flags', tcpFlags],
  ['node_name', same], ['node_labels', same], ['ip_version', enumName(IPVersion)], ['trace_id', same],
  ['ip_trace_id', big], ['encrypted', same],
];

function compact(o: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined && v !== 0 && v !== false && v !== '') out[k] = v;
  return out;
}

export function encodeFlowFilter(f: FlowFilter): string {
  const out: Record<string, unknown> = {};
  for (const [key, enc] of FIELDS) {
    const v = f[key] as unknown[] | undefined;
    if (v?.length) out[key] = v.map(enc);
  }
  const cel = f.experimental?.cel_expression;
  if (cel?.length) out.experimental = { cel_expression: cel };
  return JSON.stringify(out);
}

const KNOWN_KEYS = new Set<string>();
for (const [k] of FIELDS) {
  KNOWN_KEYS.add(k);
  KNOWN_KEYS.add(k.replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase()));
}
KNOWN_KEYS.add('experimental');

/** Parses one `--allowlist`/`--denylist` value (protojson; proto or camelCase names). */
export function decodeFlowFilter(text: string, flagName: string): FlowFilter {
  let obj: unknown;
  try {
    obj = JSON.parse(text);
  } catch (e) {
    throw new CliError('filter', `invalid --${flagName} value ${JSON.stringify(text)}: ${(e as Error).message}`);
  }
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) {
    throw new CliError('filter', `invalid --${flagName} value ${JSON.stringify(text)}: expected a JSON object (a FlowFilter)`);
  }
  for (const k of Object.keys(obj)) {
    if (!KNOWN_KEYS.has(k)) throw new CliError('filter', `invalid --${flagName} value: unknown FlowFilter field "${k}"`);
  }
  const full = FlowFilter.fromJSON(obj);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(full)) {
    if (v === undefined || (Array.isArray(v) && v.length === 0)) continue;
    if (k === 'experimental' && !(v as { cel_expression?: string[] }).cel_expression?.length) continue;
    out[k] = v;
  }
  return out as FlowFilter;
}

/** `--print-raw-filters` output: hubble's YAML (4-space list indent, single-quoted JSON). */
export function rawFiltersYaml(whitelist: FlowFilter[], blacklist: FlowFilter[]): string {
  if (!whitelist.length && !blacklist.length) return '{}\n';
  const q = (s: string) => `'${s.replace(/'/g, "''")}'`;
  let out = '';
  if (whitelist.length) out += 'allowlist:\n' + whitelist.map((f) => `    - ${q(encodeFlowFilter(f))}\n`).join('');
  if (blacklist.length) out += 'denylist:\n' + blacklist.map((f) => `    - ${q(encodeFlowFilter(f))}\n`).join('');
  return out;
}
