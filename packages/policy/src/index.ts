export * from './errors.js';
export * from './identity.js';
export * from './ip.js';
export * from './endpoints.js';
