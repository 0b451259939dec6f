// flowctl.servicemap.v1.ServiceMap on the agent: the store's answer; a bad filter is INVALID_ARGUMENT.
import type * as grpc from '@grpc/grpc-js';
import type { ServiceMapServer } from '@flowctl/flow/gen/flowctl/servicemap.grpc';
import { grpcStatusOf } from '@flowctl/flow/grpc-status';
import type { ServiceMapStore } from '../aggregate/service-map.js';

export function serviceMapImpl(store: ServiceMapStore): ServiceMapServer {
  return {
    getServiceMap: (call, cb) => {
      try {
        cb(null, store.query(call.request));
      } catch (e) {
        cb(grpcStatusOf(e) as grpc.ServiceError);
      }
    },
  };
}
