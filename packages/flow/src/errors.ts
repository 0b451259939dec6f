// The one error class of flowctl's libraries (flow, policy, agent, relay). The code says what went
// wrong; only the servers' edges map it to a gRPC status and only the bin entry points to an exit code.
export type ErrorCode =
  /** A request, filter or flag value the caller can correct. */
  | 'INVALID_ARGUMENT'
  /** A bad endpoints file, peers file, listen address or other configuration. */
  | 'CONFIG'
  /** A bad policy document. */
  | 'POLICY'
  /** Bytes or JSON that do not decode (a FlowBatch, protojson, a PolicyService reply). */
  | 'MALFORMED'
  /** A named thing (a drop-list entry...) that is not there. */
  | 'NOT_FOUND'
  | 'UNIMPLEMENTED'
  | 'UNAVAILABLE'
  | 'INTERNAL';

export interface ErrorDetails {
  cause?: unknown;
  /** The filter field or dotted proto path at fault, when known. */
  field?: string;
  /** The file at fault and where in it: a line (endpoints) or a document counted from 1 (policy). */
  file?: string;
  line?: number;
  document?: number;
}

export class FlowctlError extends Error {
  override readonly name = 'FlowctlError';
  readonly field: string | undefined;
  readonly file: string | undefined;
  readonly line: number | undefined;
  readonly document: number | undefined;

  constructor(
    readonly code: ErrorCode,
    message: string,
    details: ErrorDetails = {},
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.field = details.field;
    this.file = details.file;
    this.line = details.line;
    this.document = details.document;
  }
}

export function isFlowctlError(e: unknown, code?: ErrorCode): e is FlowctlError {
  return e instanceof FlowctlError && (code === undefined || e.code === code);
}
