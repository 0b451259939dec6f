// One error class per input kind, each with a stable code, so the agent can keep the last good
// state and report the message verbatim, and the CLI can print it as one line.

/** A bad endpoints file. The message is `FILE:LINE: reason`. */
export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID';
  constructor(
    readonly file: string,
    readonly line: number,
    readonly reason: string,
  ) {
    super(`${file}:${line}: ${reason}`);
    this.name = 'ConfigError';
  }
}

/** A bad policy document. The message is `FILE: document N: reason` (N counts from 1). */
export class PolicyError extends Error {
  readonly code = 'POLICY_INVALID';
  constructor(
    readonly file: string,
    readonly document: number,
    readonly reason: string,
  ) {
    super(document > 0 ? `${file}: document ${document}: ${reason}` : `${file}: ${reason}`);
    this.name = 'PolicyError';
  }
}
