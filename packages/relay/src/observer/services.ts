// gRPC method tables for the relay. GetFlows responses travel as raw bytes (see wire.ts); the
// batched method is flowctl's own, used only where both ends are flowctl: one message carries many
// GetFlowsResponses, which is what lets grpc-js keep up (its per-message cost dominates).
import { PolicyService } from '@flowctl/flow/policy-service';
import {
  GetFlowsRequest,
  GetNamespacesRequest,
  GetNamespacesResponse,
  ObserverService,
  ServerStatusRequest,
  ServerStatusResponse,
} from '@flowctl/flow';
import { ServiceMapService } from '@flowctl/flow/gen/flowctl/servicemap.grpc';
import { AlertsService } from '@flowctl/flow/gen/flowctl/alerts.grpc';
import { GetAlertsRequest } from '@flowctl/flow/gen/flowctl/alerts';
import { BlocksService } from '@flowctl/flow/gen/flowctl/blocks.grpc';
import { BatchObserverService, GET_FLOWS_BATCHED_PATH } from '@flowctl/flow/batch';
import type { ServiceDefinition } from '@grpc/grpc-js';
import { ScratchBatchEncoder } from './merge.js';
import type { RelayItem } from './merge.js';

/** The decoded request plus its original bytes, forwarded unchanged to every node. */
export interface RawRequest {
  raw: Buffer;
  /** What the fan-in reads of it (a GetAlertsRequest has only follow). */
  req: Pick<GetFlowsRequest, 'follow' | 'first' | 'number'>;
}

/** A node's streaming method the relay fans in: GetFlows (batched where the node has it) or GetAlerts. */
export interface Upstream {
  name: string;
  path: string;
  batchedPath?: string;
}

const identity = (b: Buffer): Buffer => b;
const decodeRaw = (raw: Buffer): RawRequest => ({ raw, req: GetFlowsRequest.decode(raw) });

export const GET_FLOWS_PATH = ObserverService.getFlows.path;
export const FLOWS_UPSTREAM: Upstream = { name: 'GetFlows', path: GET_FLOWS_PATH, batchedPath: GET_FLOWS_BATCHED_PATH };
export const ALERTS_UPSTREAM: Upstream = { name: 'GetAlerts', path: AlertsService.getAlerts.path };

/** flowctl.alerts.v1.Alerts as the relay serves it: raw bytes in and out, like GetFlows. */
export const relayAlertsDefinition = {
  getAlerts: {
    ...AlertsService.getAlerts,
    requestDeserialize: (raw: Buffer): RawRequest => ({ raw, req: { follow: GetAlertsRequest.decode(raw).follow ?? false } }),
    responseSerialize: identity,
  },
} as unknown as ServiceDefinition;
/** flowctl's batched GetFlows (proto/flowctl/batch.proto, @flowctl/flow/batch). */
export { GET_FLOWS_BATCHED_PATH };

/** The Observer service as the relay serves it: GetFlows takes/produces raw bytes. */
export const relayObserverDefinition = {
  ...ObserverService,
  getFlows: {
    ...ObserverService.getFlows,
    requestDeserialize: decodeRaw,
    responseSerialize: identity,
  },
} as unknown as ServiceDefinition;

/** A FlowBatch to send: its encoding, or the relay items it is made of. */
export type BatchMessage = Buffer | readonly RelayItem[];

/** Server side of the batched method; items are encoded at send time into the server's own scratch buffer (grpc-js copies the result). */
export function batchObserverDefinition(): ServiceDefinition {
  const enc = new ScratchBatchEncoder();
  const serializeBatch = (m: BatchMessage): Buffer => (Buffer.isBuffer(m) ? m : enc.encode(m as readonly RelayItem[]));
  return {
    getFlowsBatched: { ...BatchObserverService.getFlowsBatched, requestDeserialize: decodeRaw, responseSerialize: serializeBatch },
  } as unknown as ServiceDefinition;
}

const codecOf = <M extends { path: string; requestSerialize: unknown; responseDeserialize: unknown }>(m: M) => ({
  path: m.path,
  serialize: m.requestSerialize as M['requestSerialize'],
  deserialize: m.responseDeserialize as M['responseDeserialize'],
});

export const unaryCodecs = {
  addBlock: codecOf(BlocksService.add),
  removeBlock: codecOf(BlocksService.remove),
  listBlocks: codecOf(BlocksService.list),
  getServiceMap: {
    path: ServiceMapService.getServiceMap.path,
    serialize: ServiceMapService.getServiceMap.requestSerialize,
    deserialize: ServiceMapService.getServiceMap.responseDeserialize,
  },
  listPolicies: {
    path: PolicyService.list.path,
    serialize: PolicyService.list.requestSerialize,
    deserialize: PolicyService.list.responseDeserialize,
  },
  listLearnedFqdns: {
    path: PolicyService.listLearnedFqdns.path,
    serialize: PolicyService.listLearnedFqdns.requestSerialize,
    deserialize: PolicyService.listLearnedFqdns.responseDeserialize,
  },
  serverStatus: {
    path: ObserverService.serverStatus.path,
    serialize: (r: ServerStatusRequest) => Buffer.from(ServerStatusRequest.encode(r).finish()),
    deserialize: (b: Buffer) => ServerStatusResponse.decode(b),
  },
  getNamespaces: {
    path: ObserverService.getNamespaces.path,
    serialize: (r: GetNamespacesRequest) => Buffer.from(GetNamespacesRequest.encode(r).finish()),
    deserialize: (b: Buffer) => GetNamespacesResponse.decode(b),
  },
};

export { identity as rawCodec };
