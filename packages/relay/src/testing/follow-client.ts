// A measuring follow client for benchmarks: counts flows per second, time-order inversions and
// agent→client delay (flows carry their send time) without decoding flows.
import { readFileSync } from 'node:fs';
import { Client, Metadata, credentials, type ChannelCredentials } from '@grpc/grpc-js';
import { serverNameOptions } from '@flowctl/flow/tls';
import { GetFlowsRequest } from '@flowctl/flow';
import { forEachResponse, GET_FLOWS_BATCHED_PATH } from '@flowctl/flow/batch';
import { ResponseTimeReader } from '../observer/wire.js';
import { GET_FLOWS_PATH } from '../observer/services.js';

export interface Result {
  perSecond: number[];
  delays: number[];
  delivered: number;
  outOfOrder: number;
  lost: number;
  rssMaxMb?: number;
  /** CPU seconds (user + system) each watched group of processes used while measuring. */
  cpuSeconds?: Record<string, number>;
  /** Length of the measured window in seconds. */
  measuredS?: number;
}

/** CPU time (user + system, all threads) of a process so far, in seconds (Linux /proc). */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

export interface ConsumeOptions {
  /** Process whose peak RSS to report (the relay). */
  rssPid?: number;
  /** Groups of processes whose CPU time to measure over the same window as the flows. */
  cpuPids?: Record<string, number[]>;
  /** Dial with these credentials (TLS), verifying the server by `serverName`. */
  tls?: { credentials: ChannelCredentials; serverName: string };
}

export function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : 0;
}

/** Follows flows on `port` for warmup+seconds and measures what arrives after the warmup. */
export function consume(port: number, seconds: number, batched: boolean, warmupS: number, opts: ConsumeOptions = {}): Promise<Result> {
  const { rssPid, cpuPids, tls } = opts;
  const cpuNow = () => {
    const out: Record<string, number> = {};
    for (const [k, pids] of Object.entries(cpuPids ?? {})) out[k] = pids.reduce((sum, p) => sum + cpuSeconds(p), 0);
    return out;
  };
  const client = new Client(`127.0.0.1:${port}`, tls?.credentials ?? credentials.createInsecure(), {
    ...serverNameOptions(tls?.serverName),
    'grpc.max_receive_message_length': 64 << 20,
    // As the relay's upstream channels (pool/manager.ts): with HTTP/2's 64 KiB window every 80
    // flows wait for a WINDOW_UPDATE, a round trip through two busy event loops.
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
  const times = new ResponseTimeReader();
  const onItem = (b: Uint8Array, start: number, end: number) => {
    times.read(b, start, end, t);
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
      const cpu0 = cpuNow();
      const t0 = Date.now();
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
        const cpu1 = cpuNow();
        res.measuredS = (Date.now() - t0) / 1000;
        if (cpuPids) res.cpuSeconds = Object.fromEntries(Object.keys(cpu1).map((k) => [k, cpu1[k]! - cpu0[k]!]));
        resolve(res);
      }, seconds * 1000 + 50);
    }, warmupS * 1000);
  });
}

