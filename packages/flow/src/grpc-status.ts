// The gRPC status a server answers for an error; only the servers' edges call this.
import { status } from '@grpc/grpc-js';
import { FlowctlError, type ErrorCode } from './errors.js';

const STATUS: Record<ErrorCode, status> = {
  INVALID_ARGUMENT: status.INVALID_ARGUMENT,
  CONFIG: status.FAILED_PRECONDITION,
  POLICY: status.FAILED_PRECONDITION,
  MALFORMED: status.INTERNAL,
  NOT_FOUND: status.NOT_FOUND,
  UNIMPLEMENTED: status.UNIMPLEMENTED,
  UNAVAILABLE: status.UNAVAILABLE,
  INTERNAL: status.INTERNAL,
};

/** A FlowctlError keeps its code's status and message; anything else is INTERNAL. */
export function grpcStatusOf(e: unknown): { code: status; details: string } {
  if (e instanceof FlowctlError) return { code: STATUS[e.code], details: e.message };
  return { code: status.INTERNAL, details: e instanceof Error ? e.message : String(e) };
}
