// One error class for everything the user can get wrong or the server can refuse. bin.ts prints
// `message` as one line and exits with `exitCode`; anything else is a bug and shows a stack only
// under --debug.
export type CliErrorCode = 'usage' | 'filter' | 'time' | 'input' | 'server' | 'io';

export class CliError extends Error {
  override readonly name = 'CliError';
  constructor(
    readonly code: CliErrorCode,
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

export function isCliError(e: unknown): e is CliError {
  return e instanceof CliError;
}
