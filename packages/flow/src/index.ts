// The public surface of @flowctl/flow: generated API types (Hubble Observer API v1) and the
// pure-TypeScript pieces every other package shares.
export * from './gen/flow/flow.js';
export * from './gen/observer/observer.js';
export * from './gen/relay/relay.js';
export {
  ChangeNotification,
  ChangeNotificationType,
  NotifyRequest,
  PeerClient,
  PeerService,
  TLS as PeerTLS,
} from './gen/peer/peer.js';
export type { PeerServer } from './gen/peer/peer.js';
export {
  HealthCheckRequest,
  HealthCheckResponse,
  HealthCheckResponse_ServingStatus,
  HealthClient,
  HealthService,
} from './gen/grpc/health/v1/health.js';
export type { HealthServer } from './gen/grpc/health/v1/health.js';
export { Timestamp } from './gen/google/protobuf/timestamp.js';
export * from './json.js';
export * from './filters.js';
export * from './time.js';
export * from './identity.js';
