// The agent throws flowctl's one error class; its gRPC status is decided in server/server.ts only.
export { FlowctlError, type ErrorCode } from '@flowctl/flow';
