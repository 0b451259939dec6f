// TCP lifecycle events (SOCK flows) are written by the L7 engineer; this is the seam the parser calls.
import type { Flow } from '@flowctl/flow';
import type { SockEvent } from '../datapath/events.js';
import type { ParserContext } from './context.js';

/** A SOCK flow for a TCP lifecycle event, or undefined when it is not worth a flow. */
export function sockFlow(_ev: SockEvent, _ctx: ParserContext): Flow | undefined {
  return undefined;
}
