// The drop list (proto/flowctl/blocks.proto) as every part of flowctl sees it: CIDR validation
// with one message for the CLI, the agent and the relay; the relay's merge of the nodes' lists;
// and what a DROPPED flow of the XDP drop list carries in Flow.extensions, beside the connection
// numbers: {"block": {"cidr", "reason", "packets", "bytes", "matched"}} (docs/flows.md).
import { FlowctlError } from './errors.js';
import type { Flow } from './gen/flow/flow.js';
import type { BlockEntry, NodeBlockStatus } from './gen/flowctl/blocks.js';
import { Struct } from './gen/google/protobuf/struct.js';
import { formatIp, parsePrefix, type Prefix } from './ip.js';
import { STRUCT_TYPE_URL } from './conn-numbers.js';

/** flow.DropReason POLICY_DENY (181): a packet a deny list stopped. */
export const DROP_REASON_POLICY_DENY = 181;
export const BLOCK_KEY = 'block';

/** A CIDR or a bare address (a /32 or /128), host bits cleared; throws INVALID_ARGUMENT with one line. */
export function parseBlockCidr(text: string): { cidr: string; prefix: Prefix } {
  const p = parsePrefix(text.trim());
  if (!p) {
    throw new FlowctlError('INVALID_ARGUMENT', `invalid CIDR "${text}": want an IPv4 or IPv6 address or prefix, e.g. 203.0.113.0/24 or 2001:db8::/32`);
  }
  return { cidr: `${formatIp(p.v6, p.addr)}/${p.bits}`, prefix: p };
}

/** What a drop-list DROPPED flow says about the entry and what it dropped from that source. */
export interface BlockInfo {
  cidr: string;
  reason: string;
  /** Packets and bytes dropped from this source by this entry since the previous such flow. */
  packets: number;
  bytes: number;
  /** Which address of the packet is in the entry. */
  matched: 'source' | 'destination';
}

export function attachBlockInfo(f: Flow, info: BlockInfo): void {
  f.extensions = { type_url: STRUCT_TYPE_URL, value: Buffer.from(Struct.encode(Struct.wrap({ [BLOCK_KEY]: info })).finish()) };
}

export function blockInfo(f: Flow): BlockInfo | undefined {
  const ext = f.extensions;
  if (!ext || ext.type_url !== STRUCT_TYPE_URL || !ext.value) return undefined;
  try {
    const b = (Struct.unwrap(Struct.decode(ext.value)) as Record<string, unknown>)[BLOCK_KEY] as Record<string, unknown> | undefined;
    if (!b || typeof b.cidr !== 'string') return undefined;
    return {
      cidr: b.cidr,
      reason: typeof b.reason === 'string' ? b.reason : '',
      packets: Number(b.packets ?? 0),
      bytes: Number(b.bytes ?? 0),
      matched: b.matched === 'destination' ? 'destination' : 'source',
    };
  } catch {
    return undefined;
  }
}

/**
 * The union of the nodes' lists, one entry per CIDR (and isolated pod): dropped counts summed, nodes joined, the
 * latest expiry (unset if any node keeps it forever) and the earliest creation.
 */
export function mergeBlockLists(lists: readonly BlockEntry[][]): BlockEntry[] {
  const byCidr = new Map<string, BlockEntry>();
  for (const list of lists) {
    for (const e of list) {
      const cidr = e.cidr ?? '';
      // An isolation is the pod's: another pod isolated for the same address is another entry.
      const key = `${cidr} ${e.isolated_pod ?? ''}`;
      const m = byCidr.get(key);
      if (!m) {
        byCidr.set(key, { ...e, cidr, nodes: [...(e.nodes ?? [])] });
        continue;
      }
      m.dropped_packets = (m.dropped_packets ?? 0n) + (e.dropped_packets ?? 0n);
      m.dropped_bytes = (m.dropped_bytes ?? 0n) + (e.dropped_bytes ?? 0n);
      m.nodes = [...(m.nodes ?? []), ...(e.nodes ?? [])];
      if (e.isolated_addresses?.length) m.isolated_addresses = [...new Set([...(m.isolated_addresses ?? []), ...e.isolated_addresses])];
      if (!m.expires || !e.expires) delete m.expires;
      else if (later(e.expires, m.expires)) m.expires = e.expires;
      if (e.created && (!m.created || later(m.created, e.created))) m.created = e.created;
      if (!m.reason && e.reason) m.reason = e.reason;
    }
  }
  return [...byCidr.values()]
    .map((e) => ({ ...e, nodes: [...new Set(e.nodes)].sort() }))
    .sort((a, b) => (a.cidr ?? '').localeCompare(b.cidr ?? '') || (a.isolated_pod ?? '').localeCompare(b.isolated_pod ?? ''));
}

function later(a: { seconds?: bigint; nanos?: number }, b: { seconds?: bigint; nanos?: number }): boolean {
  const as = a.seconds ?? 0n;
  const bs = b.seconds ?? 0n;
  return as > bs || (as === bs && (a.nanos ?? 0) > (b.nanos ?? 0));
}

export type { BlockEntry, NodeBlockStatus };
