// The one error type of bpf-loader. Native code constructs it (registered in native.ts), so every
// failure of a kernel or libbpf call carries the operation, errno and its code name.
export class BpfError extends Error {
  override readonly name = 'BpfError';
  /** Operation with its arguments, e.g. `bpf_tc_attach(ifindex=3, ingress)`. */
  readonly op: string;
  /** Positive errno. */
  readonly errno: number;
  /** errno name, e.g. `EEXIST`. */
  readonly code: string;
  /** Verifier log, on load failures. */
  log?: string;
  /** Batch map operations: elements done before the failure, and how many were asked for. */
  done?: number;
  total?: number;

  constructor(message: string, op: string, errno: number, code: string) {
    super(message);
    this.op = op;
    this.errno = errno;
    this.code = code;
  }
}
