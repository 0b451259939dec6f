// Test helpers of @flowctl/agent ('@flowctl/agent/testing'); never part of the main entry.
export { FakeDatapath } from './fake-datapath.js';
export * from '../parser/fixtures.js';
export * from '../test/netns.js';
