// flowctl.servicemap.v1.ServiceMap on the agent: the store's answer, filter errors as INVALID_ARGUMENT.
import * as grpc from '@grpc/grpc-js';
import { FilterError } from '@flowctl/flow';
import type { ServiceMapServer } from '@flowctl/flow/gen/flowctl/servicemap.grpc';
import type { ServiceMapStore } from '../aggregate/service-map.js';
import { toStatus } from './server.js';

export function serviceMapImpl(store: ServiceMapStore): ServiceMapServer {
  return {
    getServiceMap: (call, cb) => {
      try {
        cb(null, store.query(call.request));
      } catch (e) {
        if (e instanceof FilterError) cb({ code: grpc.status.INVALID_ARGUMENT, details: e.message });
        else cb(toStatus(e) as grpc.ServiceError);
      }
    },
  };
}
