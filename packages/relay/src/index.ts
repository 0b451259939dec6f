// @flowctl/relay: fan-in of every node behind one Observer API endpoint.
export { startRelayServer, parseListenAddress, OBSERVER_SERVICE_NAME } from './server.js';
export type { RelayServer } from './server.js';
export { RelayObserver, RELAY_VERSION } from './observer/server.js';
export type { ObserverOptions, RelayStats } from './observer/server.js';
export { PeerManager, Peer } from './pool/manager.js';
export type { PeerSpec, PeerState, PoolOptions } from './pool/manager.js';
export { parsePeerAddress, DEFAULT_AGENT_PORT } from './pool/address.js';
export { Backoff } from './pool/backoff.js';
export { PriorityQueue } from './queue/priority-queue.js';
export { FanIn, aggregateErrors, sortFlows, nodeStatusItem } from './observer/merge.js';
export type { RelayItem } from './observer/merge.js';
export { GET_FLOWS_BATCHED_PATH, batchObserverDefinition } from './observer/services.js';
export { encodeBatch, decodeBatch, readResponseTime } from './observer/wire.js';
