// One error class with a code; mapping to a gRPC status happens only at the server edge.
import { status } from '@grpc/grpc-js';

export type RelayErrorCode = 'INVALID_ARGUMENT' | 'UNAVAILABLE' | 'UNIMPLEMENTED' | 'INTERNAL' | 'CONFIG';

export class RelayError extends Error {
  constructor(
    readonly code: RelayErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'RelayError';
  }

  toGrpcStatus(): status {
    switch (this.code) {
      case 'INVALID_ARGUMENT':
      case 'CONFIG':
        return status.INVALID_ARGUMENT;
      case 'UNAVAILABLE':
        return status.UNAVAILABLE;
      case 'UNIMPLEMENTED':
        return status.UNIMPLEMENTED;
      default:
        return status.INTERNAL;
    }
  }
}
