// Test helpers of @flowctl/relay ('@flowctl/relay/testing'); never part of the main entry.
export * from './fake-agent.js';
export * from './fake-peer-server.js';
export * from './follow-client.js';
export * from './spawn.js';
