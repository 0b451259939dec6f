// A measuring follow client for benchmarks: counts flows per second, time-order inversions and
// agent→client delay (flows carry their send time) without decoding flows.
import { readFileSync } from 'node:fs';
import { Client, Metadata, credentials } from '@grpc/grpc-js';
import { GetFlowsRequest } from '@flowctl/flow';
import { forEachResponse, GET_FLOWS_BATCHED_PATH } from '@flowctl/flow/batch';
import { readResponseTimeAt } from '../observer/wire.js';
import { GET_FLOWS_PATH } from '../observer/services.js';

export interface Result {
  perSecond: number[];
  delays: number[];
  delivered: number;
  outOfOrder: number;
  lost: number;
  rssMaxMb?: number;
}

export function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : 0;
}

/** Follows flows on `port` for warmup+seconds and measures what arrives after the warmup. */
export function consume(port: number, seconds: number, batched: boolean, warmupS: number, rssPid?: number): Promise<Result> {
  const client = new Client(`127.0.0.1:${port}`, credentials.createInsecure(), {
    'grpc.max_receive_message_length': 64 << 20,
    // As the relay's upstream channels (pool/manager.ts): HTTP/2's 64 KiB window would cap the stream.
    'grpc-node.flow_control_window': 4 << 20,
  });
  const req = Buffer.from(GetFlowsRequest.encode({ follow: true }).finish());
  const raw = (b: Buffer) => b;
  const stream = client.makeServerStreamRequest(batched ? GET_FLOWS_BATCHED_PATH : GET_FLOWS_PATH, raw, raw, req, new Metadata(), {});
  const res: Result = { perSecond: [], delays: [], delivered: 0, outOfOrder: 0, lost: 0 };
  const t = { sec: 0, nsec: 0 };
  let maxSeen = 0;
  let measuring = false;
  let thisSecond = 0;
  let rssMax = 0;
  let now = 0;
  // Reads only each response's time, in place: the client must not be what limits the benchmark.
  const onItem = (b: Uint8Array, start: number, end: number) => {
    readResponseTimeAt(b, start, end, t);
    const ms = t.sec * 1000 + t.nsec / 1e6;
    if (b[start] !== 0x0a) {
      if (b[start] === 0x1a) res.lost++; // lost_events
      return; // node_status events are not flows
    }
    if (!measuring) {
      maxSeen = Math.max(maxSeen, ms);
      return;
    }
    thisSecond++;
    res.delivered++;
    if (ms < maxSeen) res.outOfOrder++;
    else maxSeen = ms;
    // Sample every 16th flow's delay: enough for p99 without holding millions of numbers.
    if ((res.delivered & 15) === 0) res.delays.push(now - ms);
  };
  stream.on('data', (buf: Buffer) => {
    now = Date.now();
    if (batched) forEachResponse(buf, onItem);
    else onItem(buf, 0, buf.length);
  });
  stream.on('error', () => {});
  return new Promise((resolve) => {
    setTimeout(() => {
      measuring = true;
      const tick = setInterval(() => {
        res.perSecond.push(thisSecond);
        thisSecond = 0;
        if (rssPid) rssMax = Math.max(rssMax, rssMb(rssPid));
      }, 1000);
      setTimeout(() => {
        clearInterval(tick);
        stream.cancel();
        client.close();
        if (rssPid) res.rssMaxMb = rssMax;
        resolve(res);
      }, seconds * 1000 + 50);
    }, warmupS * 1000);
  });
}

