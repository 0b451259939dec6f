// One error class for the agent; mapping to gRPC status codes happens only at the server edge.
export type ErrorCode = 'INVALID_ARGUMENT' | 'UNIMPLEMENTED' | 'CONFIG' | 'UNAVAILABLE' | 'INTERNAL';

export class FlowctlError extends Error {
  override name = 'FlowctlError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    Object.setPrototypeOf(this, new.target.prototype);
  }
}
