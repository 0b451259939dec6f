export * from './errors.js';
export * from './identity.js';
export * from './ip.js';
export * from './endpoints.js';
export * from './selector.js';
export * from './policy-doc.js';
export * from './compile.js';
export * from './check.js';
