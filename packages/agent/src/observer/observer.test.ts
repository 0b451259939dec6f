import { describe, expect, it } from 'vitest';
import { LostEventSource, Verdict, type Flow, type GetFlowsRequest, type GetFlowsResponse } from '@flowctl/flow';
import { FlowctlError } from '../errors.js';
import { Observer } from './observer.js';
import { msToTimestamp } from './timestamp.js';

const T0 = 1_700_000_000_000;

function flow(i: number, over: Partial<Flow> = {}): Flow {
  return {
    time: msToTimestamp(T0 + i * 1000),
    uuid: `f${i}`,
    verdict: i % 3 === 0 ? Verdict.DROPPED : Verdict.FORWARDED,
    IP: { source: `10.203.0.${i % 250}`, destination: '10.203.9.9' },
    source: { namespace: i % 2 ? 'shop' : 'bank', pod_name: `p${i}` },
    destination: { namespace: 'db', pod_name: 'db-0' },
    node_name: 'node-a',
    ...over,
  };
}

function observer(n: number, capacity = 15, now = T0 + 100_000) {
  const o = new Observer({ nodeName: 'node-a', capacity, now: () => now });
  for (let i = 0; i < n; i++) o.writeFlow(flow(i));
  return o;
}

async function collect(o: Observer, req: GetFlowsRequest, max = 1000): Promise<GetFlowsResponse[]> {
  const out: GetFlowsResponse[] = [];
  const ac = new AbortController();
  for await (const r of o.getFlows(req, ac.signal)) {
    out.push(r);
    if (out.length >= max) break;
  }
  return out;
}
const ids = (rs: GetFlowsResponse[]) => rs.map((r) => r.flow?.uuid ?? `lost:${r.lost_events?.num_events_lost}`);

describe('Observer.getFlows (Hubble semantics)', () => {
  it('number = last N, oldest first; first = first N; number 0 = whole ring', async () => {
    const o = observer(10);
    expect(ids(await collect(o, { number: 3n }))).toEqual(['f7', 'f8', 'f9']);
    expect(ids(await collect(o, { number: 3n, first: true }))).toEqual(['f0', 'f1', 'f2']);
    expect(await collect(o, {})).toHaveLength(10);
    expect(await collect(o, { number: 18446744073709551615n })).toHaveLength(10);
  });

  it('wraps at capacity and keeps the most recent', async () => {
    const o = observer(40, 15);
    const all = await collect(o, {});
    expect(ids(all)).toEqual(Array.from({ length: 15 }, (_, i) => `f${25 + i}`));
    expect(o.serverStatus().num_flows).toBe(15n);
    expect(o.serverStatus().max_flows).toBe(15n);
    expect(o.serverStatus().seen_flows).toBe(40n);
  });

  it('counts only matching flows for number; blacklist subtracts', async () => {
    const o = observer(12);
    const dropped = await collect(o, { number: 2n, whitelist: [{ verdict: [Verdict.DROPPED] }] });
    expect(ids(dropped)).toEqual(['f6', 'f9']);
    const notShop = await collect(o, { blacklist: [{ source_pod: ['shop/'] }] });
    expect(notShop.every((r) => r.flow?.source?.namespace === 'bank')).toBe(true);
    expect(notShop).toHaveLength(6);
  });

  it('since and until bound the time range; since wins over number', async () => {
    const o = observer(10);
    const r = await collect(o, { since: msToTimestamp(T0 + 6000), number: 2n });
    expect(ids(r)).toEqual(['f8', 'f9']);
    const r2 = await collect(o, { since: msToTimestamp(T0 + 6000) });
    expect(ids(r2)).toEqual(['f6', 'f7', 'f8', 'f9']);
    const r3 = await collect(o, { first: true, until: msToTimestamp(T0 + 2000) });
    expect(ids(r3)).toEqual(['f0', 'f1', 'f2']);
    const r4 = await collect(o, { since: msToTimestamp(T0 + 3000), until: msToTimestamp(T0 + 4500) });
    expect(ids(r4)).toEqual(['f3', 'f4']);
  });

  it('rejects first with follow and invalid filters as INVALID_ARGUMENT', async () => {
    const o = observer(1);
    await expect(collect(o, { first: true, follow: true })).rejects.toThrow(/first cannot be specified with follow/);
    try {
      o.prepare({ whitelist: [{ source_ip: ['not-an-ip/99'] }] });
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(FlowctlError);
      expect((e as FlowctlError).code).toBe('INVALID_ARGUMENT');
    }
  });

  it('follow streams new flows after the backlog, and stops on abort', async () => {
    const o = observer(5);
    const ac = new AbortController();
    const got: string[] = [];
    const done = (async () => {
      for await (const r of o.getFlows({ number: 2n, follow: true }, ac.signal)) {
        got.push(r.flow?.uuid ?? 'lost');
        if (got.length === 4) ac.abort();
      }
    })();
    await new Promise((r) => setTimeout(r, 5));
    expect(got).toEqual(['f3', 'f4']);
    o.writeFlow(flow(100));
    o.writeFlow(flow(101));
    o.writeFlow(flow(102)); // after abort: not delivered
    await done;
    expect(got).toEqual(['f3', 'f4', 'f100', 'f101']);
  });

  it('follow with number 0 starts at the newest entry', async () => {
    const o = observer(5);
    const ac = new AbortController();
    const got: string[] = [];
    const done = (async () => {
      for await (const r of o.getFlows({ follow: true }, ac.signal)) {
        got.push(r.flow!.uuid!);
        ac.abort();
      }
    })();
    await new Promise((r) => setTimeout(r, 5));
    o.writeFlow(flow(50));
    await done;
    expect(got).toEqual(['f50']);
  });

  it('reports a lapped reader as a HUBBLE_RING_BUFFER lost event, never silently', async () => {
    const o = observer(15, 15);
    const ac = new AbortController();
    const it = o.getFlows({ first: true }, ac.signal);
    expect((await it.next()).value?.flow?.uuid).toBe('f0');
    for (let i = 15; i < 35; i++) o.writeFlow(flow(i)); // overwrite everything the reader had left
    const next = (await it.next()).value as GetFlowsResponse;
    expect(next.lost_events?.source).toBe(LostEventSource.HUBBLE_RING_BUFFER);
    expect(next.lost_events?.num_events_lost).toBe(19n); // f1..f19 were overwritten
    expect(next.node_name).toBe('node-a');
    expect((await it.next()).value?.flow?.uuid).toBe('f20');
    expect(o.stats.ringLapped).toBe(19);
  });

  it('a lapped reader learns the losses of the lost-event records it never read (issue 22 item 8)', async () => {
    const o = observer(15, 15);
    const ac = new AbortController();
    const it = o.getFlows({ first: true }, ac.signal);
    expect((await it.next()).value?.flow?.uuid).toBe('f0');
    o.writeLost({ source: LostEventSource.PERF_EVENT_RING_BUFFER, num_events_lost: 130_000n });
    o.writeLost({ source: LostEventSource.PERF_EVENT_RING_BUFFER, num_events_lost: 69n });
    o.writeLost({ source: LostEventSource.OBSERVER_EVENTS_QUEUE, num_events_lost: 3n });
    for (let i = 15; i < 35; i++) o.writeFlow(flow(i)); // the three records and f1..f19 are overwritten
    const got: string[] = [];
    for (let r = (await it.next()).value as GetFlowsResponse; !r.flow; r = (await it.next()).value as GetFlowsResponse) {
      got.push(`${LostEventSource[r.lost_events!.source!]}:${r.lost_events!.num_events_lost}`);
    }
    expect(got).toEqual(['HUBBLE_RING_BUFFER:19', 'PERF_EVENT_RING_BUFFER:130069', 'OBSERVER_EVENTS_QUEUE:3']);
    expect(o.stats.ringLapped).toBe(19);
  });

  it('lost events in the ring bypass filters and do not count against number', async () => {
    const o = observer(4);
    o.writeLost({ source: LostEventSource.OBSERVER_EVENTS_QUEUE, num_events_lost: 7n });
    o.writeFlow(flow(4));
    // f3 is DROPPED: the last two FORWARDED flows are f2 and f4, and the loss between them is reported.
    const r = await collect(o, { number: 2n, whitelist: [{ verdict: [Verdict.FORWARDED] }] });
    expect(ids(r)).toEqual(['f2', 'lost:7', 'f4']);
  });
});

describe('Observer status', () => {
  it('ServerStatus carries version, uptime and flows_rate over the last minute', () => {
    const now = T0 + 100_000;
    const o = new Observer({ nodeName: 'n', capacity: 4095, now: () => now });
    for (let i = 0; i < 120; i++) o.writeFlow(flow(0, { time: msToTimestamp(now - 119_500 + i * 1000) }));
    const s = o.serverStatus();
    expect(s.version).toBe('flowctl-agent v0.1.0');
    expect(s.num_connected_nodes).toBeUndefined();
    expect(s.flows_rate).toBeCloseTo(60 / 60, 1);
  });

  it('GetNamespaces lists namespaces of flows in the last hour, sorted', () => {
    const now = T0 + 100_000;
    const o = new Observer({ nodeName: 'n', capacity: 15, now: () => now });
    o.writeFlow(flow(0, { time: msToTimestamp(now - 2 * 3_600_000), source: { namespace: 'old' } }));
    o.writeFlow(flow(1));
    o.writeFlow(flow(2));
    expect(o.namespaces()).toEqual([{ namespace: 'bank' }, { namespace: 'db' }, { namespace: 'shop' }]);
  });
});
