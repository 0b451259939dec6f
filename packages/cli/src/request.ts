// Selector flags → GetFlowsRequest, with hubble's rules and error texts (cmd/observe/flows.go).
import type { FlowFilter } from '@flowctl/flow/gen/flow/flow';
import type { GetFlowsRequest } from '@flowctl/flow/gen/observer/observer';
import { CliError } from './errors.js';
import { parseTimeFlag } from './options/time.js';

export const UINT64_MAX = 2n ** 64n - 1n;
export const DEFAULT_LAST = 20n;

export interface Selectors {
  first?: bigint;
  last?: bigint;
  all?: boolean;
  follow?: boolean;
  since?: string;
  until?: string;
}

export function buildRequest(sel: Selectors, whitelist: FlowFilter[], blacklist: FlowFilter[], nowMs = Date.now()): GetFlowsRequest {
  const first = (sel.first ?? 0n) > 0n;
  const last = (sel.last ?? 0n) > 0n;
  if (first && last) throw new CliError('usage', 'cannot set both --first and --last');
  if (first && sel.all) throw new CliError('usage', 'cannot set both --first and --all');
  if (first && sel.follow) throw new CliError('usage', 'cannot set both --first and --follow');
  if (last && sel.all) throw new CliError('usage', 'cannot set both --last and --all');

  const req: GetFlowsRequest = { whitelist, blacklist };
  if (sel.since !== undefined) {
    const ts = parseTimeFlag(sel.since, nowMs);
    if (!ts) throw new CliError('time', `failed to parse the since time: failed to convert ${sel.since} to time`);
    req.since = ts;
  }
  // hubble ignores --until when following: the stream has no end to stop at.
  if (sel.until !== undefined && !sel.follow) {
    const ts = parseTimeFlag(sel.until, nowMs);
    if (!ts) throw new CliError('time', `failed to parse the until time: failed to convert ${sel.until} to time`);
    req.until = ts;
  }
  let number = 0n;
  if (sel.all) number = UINT64_MAX;
  else if (last) number = sel.last!;
  else if (first) number = sel.first!;
  else if (!req.since && !req.until && !sel.follow) number = DEFAULT_LAST;
  req.number = number;
  if (sel.follow) req.follow = true;
  if (first) req.first = true;
  return req;
}

/** A uint64 flag value (`--first`, `--last`), with a clear error instead of NaN. */
export function parseUint64(name: string, v: string): bigint {
  if (!/^\d+$/.test(v) || BigInt(v) > UINT64_MAX) {
    throw new CliError('usage', `invalid argument "${v}" for "--${name}" flag: expected a non-negative integer`);
  }
  return BigInt(v);
}
