// The public surface of @flowctl/flow: generated API types (Hubble Observer API v1) and the
// pure-TypeScript pieces every other package shares.
export * from './gen/flow/flow.js';
// Services and clients live in the *.grpc files, so that the messages (and the JSON codec) load
// without @grpc/grpc-js; this index exports both.
export * from './gen/observer/observer.js';
export * from './gen/observer/observer.grpc.js';
export * from './gen/relay/relay.js';
export { ChangeNotification, ChangeNotificationType, NotifyRequest, TLS as PeerTLS } from './gen/peer/peer.js';
export { PeerClient, PeerService } from './gen/peer/peer.grpc.js';
export type { PeerServer } from './gen/peer/peer.grpc.js';
export { HealthCheckRequest, HealthCheckResponse, HealthCheckResponse_ServingStatus } from './gen/grpc/health/v1/health.js';
export { HealthClient, HealthService } from './gen/grpc/health/v1/health.grpc.js';
export type { HealthServer } from './gen/grpc/health/v1/health.grpc.js';
export { Timestamp } from './gen/google/protobuf/timestamp.js';
export * from './json.js';
export * from './filters.js';
export * from './time.js';
export * from './identity.js';
export * from './ip.js';
export * from './errors.js';
export * from './conn-numbers.js';
export * from './suppressed.js';
