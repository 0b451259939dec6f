// flowctl.blocks.v1.Blocks on the agent: the BlockList's answers for this node. A bad CIDR or TTL
// is INVALID_ARGUMENT, an unknown CIDR NOT_FOUND (grpcStatusOf).
import type * as grpc from '@grpc/grpc-js';
import type { BlockEntry, NodeBlockStatus } from '@flowctl/flow/gen/flowctl/blocks';
import type { BlocksServer } from '@flowctl/flow/gen/flowctl/blocks.grpc';
import type { Duration } from '@flowctl/flow/gen/google/protobuf/duration';
import { grpcStatusOf } from '@flowctl/flow/grpc-status';
import { timestampFromMs } from '@flowctl/flow/time';
import { formatIp } from '@flowctl/flow/ip';
import type { BlockEntryState, BlockList } from '../respond/block-list.js';

export interface BlocksContext {
  nodeName: string;
  list: BlockList;
  /** Interfaces the XDP drop list is attached to. */
  xdpInterfaces: () => string[];
}

export function blocksImpl(c: BlocksContext): BlocksServer {
  const node = (): NodeBlockStatus => ({ node_name: c.nodeName, xdp_interfaces: c.xdpInterfaces(), error: '' });
  const entry = (e: BlockEntryState, packets = 0n, bytes = 0n, addresses = c.list.addressesOf(e)): BlockEntry => ({
    cidr: e.cidr,
    reason: e.reason,
    origin: e.origin,
    created: timestampFromMs(e.createdMs),
    ...(e.expiresMs !== undefined && { expires: timestampFromMs(e.expiresMs) }),
    dropped_packets: packets,
    dropped_bytes: bytes,
    nodes: [c.nodeName],
    ...(e.isolate && { isolated_pod: e.isolate }),
    isolated_addresses: addresses.map((a) => formatIp(a.v6, a.addr)),
  });
  const unary = <Req, Res>(fn: (req: Req) => Res) => (call: grpc.ServerUnaryCall<Req, Res>, cb: grpc.sendUnaryData<Res>) => {
    try {
      cb(null, fn(call.request));
    } catch (e) {
      cb(grpcStatusOf(e) as grpc.ServiceError);
    }
  };
  return {
    add: unary((req) => {
      const ttlMs = durationMs(req.ttl);
      const e = c.list.add(req.cidr ?? '', {
        ...(ttlMs !== undefined && { ttlMs }),
        ...(req.reason !== undefined && { reason: req.reason }),
        ...(req.origin !== undefined && { origin: req.origin }),
      });
      return { entry: entry(e), nodes: [node()] };
    }),
    remove: unary((req) => ({ entry: entry(c.list.remove(req.cidr ?? '')), nodes: [node()] })),
    list: unary(() => ({ entries: c.list.list().map((e) => entry(e, e.packets, e.bytes, e.addresses)), nodes: [node()] })),
  };
}

/** undefined when unset; a zero or negative TTL reaches BlockList.add and is refused there. */
function durationMs(d: Duration | undefined): number | undefined {
  if (!d) return undefined;
  return Number(d.seconds ?? 0n) * 1000 + (d.nanos ?? 0) / 1e6;
}
