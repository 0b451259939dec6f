// Bad input files as flowctl's one error class, with a stable code and the place, so the agent can
// keep the last good state and report the message verbatim, and the CLI can print it as one line.
import { FlowctlError } from '@flowctl/flow/errors';

/** A bad endpoints file (code CONFIG). The message is `FILE:LINE: reason`. */
export function configError(file: string, line: number, reason: string): FlowctlError {
  return new FlowctlError('CONFIG', `${file}:${line}: ${reason}`, { file, line });
}

/** A bad policy document (code POLICY). The message is `FILE: document N: reason` (N counts from 1). */
export function policyError(file: string, document: number, reason: string): FlowctlError {
  return new FlowctlError('POLICY', document > 0 ? `${file}: document ${document}: ${reason}` : `${file}: ${reason}`, { file, document });
}
