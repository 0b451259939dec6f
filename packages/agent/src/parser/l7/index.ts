// L7 decoding (DNS, HTTP/1.x) is written by the L7 engineer; this entry point is the seam the
// parser calls for every FlowEvent whose l7 field is not None.
import type { Flow } from '@flowctl/flow';
import type { FlowEvent } from '../../datapath/events.js';
import type { ParserContext } from '../context.js';

/** L7 flows (Type L7, event_type 129) derived from the event's payload; [] when there are none. */
export function l7Flows(_ev: FlowEvent, _base: Flow, _ctx: ParserContext): Flow[] {
  return [];
}
