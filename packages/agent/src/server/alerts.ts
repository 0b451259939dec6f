// flowctl.alerts.v1.Alerts on the agent: the store's alerts since a time, then (follow) every raise
// and update. A follower that does not keep up loses updates, never silently: a lost_events
// response (OBSERVER_EVENTS_QUEUE, as GetFlows reports its own queue) says how many.
import type * as grpc from '@grpc/grpc-js';
import { LostEventSource } from '@flowctl/flow';
import { isAlertKind } from '@flowctl/flow/alerts';
import type { Alert, GetAlertsRequest, GetAlertsResponse } from '@flowctl/flow/gen/flowctl/alerts';
import type { AlertsServer } from '@flowctl/flow/gen/flowctl/alerts.grpc';
import { FlowctlError } from '@flowctl/flow';
import { grpcStatusOf } from '@flowctl/flow/grpc-status';
import type { AlertStore } from '../detect/store.js';
import { msToTimestamp, tsToMs } from '../observer/timestamp.js';

/** Responses queued for one follower behind its flow control before updates are dropped. */
const FOLLOW_QUEUE_MAX = 4096;

/** `track` registers a follow stream with the server, which aborts it when the agent stops. */
export function alertsImpl(store: AlertStore, nodeName: string, track: (call: grpc.ServerWritableStream<unknown, unknown>) => AbortController): AlertsServer {
  return {
    getAlerts: (call: grpc.ServerWritableStream<GetAlertsRequest, GetAlertsResponse>) => {
      try {
        serve(call, store, nodeName, track);
      } catch (e) {
        call.emit('error', grpcStatusOf(e));
      }
    },
  };
}

function serve(
  call: grpc.ServerWritableStream<GetAlertsRequest, GetAlertsResponse>,
  store: AlertStore,
  nodeName: string,
  track: (call: grpc.ServerWritableStream<unknown, unknown>) => AbortController,
): void {
  const req = call.request;
  const kinds = new Set(req.kinds ?? []);
  for (const k of kinds) if (!isAlertKind(k)) throw new FlowctlError('INVALID_ARGUMENT', `unknown alert kind "${k}"`);
  const sinceMs = req.since ? tsToMs(req.since) : undefined;
  const response = (alert: Alert): GetAlertsResponse => ({ alert, node_name: nodeName, time: alert.updated! });
  if (!req.follow) {
    for (const a of store.list(sinceMs, kinds)) call.write(response(a));
    call.end();
    return;
  }
  const queue: GetAlertsResponse[] = [];
  let lost = 0;
  let blocked = false;
  let done = false;
  const pump = () => {
    blocked = false;
    while (!done && queue.length) {
      if (!call.write(queue.shift()!)) {
        blocked = true;
        return;
      }
    }
    if (lost && !done) {
      const n = lost;
      lost = 0;
      if (!call.write({ lost_events: { source: LostEventSource.OBSERVER_EVENTS_QUEUE, num_events_lost: BigInt(n) }, node_name: nodeName, time: msToTimestamp(Date.now()) })) blocked = true;
    }
  };
  const send = (r: GetAlertsResponse) => {
    if (queue.length >= FOLLOW_QUEUE_MAX) lost++;
    else queue.push(r);
    if (!blocked) pump();
  };
  // Subscribed before listing, in the same turn: nothing falls between the list and the stream.
  const unsubscribe = store.subscribe((a) => {
    if (!kinds.size || kinds.has(a.kind!)) send(response(a));
  });
  for (const a of store.list(sinceMs, kinds)) send(response(a));
  call.on('drain', pump);
  const ac = track(call as grpc.ServerWritableStream<unknown, unknown>);
  ac.signal.addEventListener('abort', () => {
    const ended = done;
    done = true;
    unsubscribe();
    // The agent is stopping: end the stream with OK, so a relay reports the node as gone.
    if (!ended && !call.cancelled) call.end();
  }, { once: true });
  const stop = () => {
    done = true;
    unsubscribe();
  };
  call.on('cancelled', stop);
  call.on('finish', stop);
}

