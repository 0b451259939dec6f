// Test helpers of @flowctl/flow ('@flowctl/flow/testing'); never part of the main entry.
export * from './corpus.js';
export * from './hubble.js';
export * from './pki.js';
