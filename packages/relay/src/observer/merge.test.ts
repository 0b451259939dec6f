import { describe, expect, it } from 'vitest';
import { GetFlowsResponse, NodeState } from '@flowctl/flow';
import { FanIn, aggregateErrors, ScratchBatchEncoder, itemBytes, nodeStatusItem, sortFlows } from './merge.js';
import { decodeFlowBatch, encodeBatch } from '@flowctl/flow/batch';
import type { RelayItem } from './merge.js';
import { readResponseTime } from './wire.js';

const T0 = 1_714_564_800;

/** A response from `node` at T0 + ms, as raw bytes the way the relay receives it. */
function flowAt(node: string, ms: number): RelayItem {
  const sec = T0 + Math.floor(ms / 1000);
  const nanos = (ms % 1000) * 1e6;
  const raw = Buffer.from(
    GetFlowsResponse.encode({ flow: { node_name: node, Summary: `${node}@${ms}` }, node_name: node, time: { seconds: BigInt(sec), nanos } }).finish(),
  );
  const item: RelayItem = { sec: 0, nsec: 0, raw };
  readResponseTime(raw, item);
  return item;
}

const summary = (it: RelayItem) => GetFlowsResponse.decode(itemBytes(it)).flow?.Summary ?? `status:${it.msg?.node_status?.state_change}`;

async function collect(gen: AsyncIterable<RelayItem[]>): Promise<RelayItem[]> {
  const out: RelayItem[] = [];
  for await (const b of gen) out.push(...b);
  return out;
}

async function* fromBatches(...batches: RelayItem[][]): AsyncGenerator<RelayItem[]> {
  for (const b of batches) yield b;
}

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('sortFlows', () => {
  it('restores time order across interleaved node streams within the buffer', async () => {
    const a = [0, 10, 20, 30, 40].map((ms) => flowAt('a', ms));
    const b = [5, 15, 25, 35].map((ms) => flowAt('b', ms));
    const out = await collect(sortFlows(fromBatches(a, b), { qlen: 100, drainTimeoutMs: 1000 }));
    expect(out.map(summary)).toEqual(['a@0', 'b@5', 'a@10', 'b@15', 'a@20', 'b@25', 'a@30', 'b@35', 'a@40']);
  });

  it('forces the oldest entry out once qlen entries are held (best effort, like Hubble)', async () => {
    const late = flowAt('b', 1);
    const out = await collect(
      sortFlows(fromBatches([flowAt('a', 10), flowAt('a', 20), flowAt('a', 30)], [late]), { qlen: 2, drainTimeoutMs: 1000 }),
    );
    // With room for 2, a@10 and a@20 leave before b@1 can overtake them: the buffer bounds
    // memory, not lateness.
    expect(out.map(summary)).toEqual(['a@10', 'a@20', 'b@1', 'a@30']);
  });

  it('counts early exits from a full buffer and drain-timeout flushes for the metrics', async () => {
    const stats = { overflow: 0, drains: 0, drained: 0 };
    await collect(sortFlows(fromBatches([flowAt('a', 10), flowAt('a', 20), flowAt('a', 30)], [flowAt('b', 1)]), { qlen: 2, drainTimeoutMs: 1000, stats }));
    expect(stats).toEqual({ overflow: 2, drains: 0, drained: 0 });

    const fan = new FanIn({ capacity: 100, relayNode: 'relay' });
    const now = Date.now();
    fan.add('a').push([1, 2, 3].map((i) => ({ ...flowAt('a', i), sec: Math.floor((now - 5000) / 1000), nsec: i })));
    const drainStats = { overflow: 0, drains: 0, drained: 0 };
    const it = sortFlows(fan, { qlen: 100, drainTimeoutMs: 50, stats: drainStats })[Symbol.asyncIterator]();
    expect((await it.next()).value).toHaveLength(3);
    expect(drainStats).toEqual({ overflow: 0, drains: 1, drained: 3 });
    fan.close();
    await it.return?.(undefined);
  });

  it('drains entries older than the timeout when input pauses', async () => {
    const fan = new FanIn({ capacity: 100, relayNode: 'relay' });
    const inlet = fan.add('a');
    const now = Date.now();
    const old: RelayItem = { ...flowAt('a', 0), sec: Math.floor((now - 5000) / 1000), nsec: 0 };
    inlet.push([old]);
    const it = sortFlows(fan, { qlen: 100, drainTimeoutMs: 100 })[Symbol.asyncIterator]();
    const started = Date.now();
    const first = await it.next();
    const took = Date.now() - started;
    expect(first.done).toBe(false);
    expect(first.value).toEqual([old]);
    // Held for about one drain timeout even though the stream is still open.
    expect(took).toBeGreaterThanOrEqual(90);
    expect(took).toBeLessThan(1000);
    fan.close();
    await it.return?.(undefined);
  });
});

describe('FanIn', () => {
  it('merges what the nodes hold oldest first, even when one node buffered far ahead', async () => {
    const fan = new FanIn({ capacity: 1000, relayNode: 'relay-1' });
    const a = fan.add('a');
    const b = fan.add('b');
    fan.seal();
    // Both nodes hold 300 flows, b's all a second newer than a's. Taken alternately, b's would
    // fill a 100-entry heap and leave it ahead of a's older flows; merged by heads, none is late.
    a.push(Array.from({ length: 299 }, (_, i) => flowAt('a', i)));
    b.push(Array.from({ length: 300 }, (_, i) => flowAt('b', 1000 + i)));
    a.push([flowAt('a', 1500)]);
    a.end();
    b.end();
    const out = await collect(sortFlows(fan, { qlen: 100, drainTimeoutMs: 1000 }));
    const times = out.map((i) => i.sec * 1e9 + i.nsec);
    expect(times).toEqual([...times].sort((x, y) => x - y));
    expect(out.map(summary).slice(298, 301)).toEqual(['a@298', 'b@1000', 'b@1001']);
  });

  it('interleaves nodes by time, ends when sealed and drained, and reports failed nodes', async () => {
    const fan = new FanIn({ capacity: 10, relayNode: 'relay-1' });
    const a = fan.add('a');
    const b = fan.add('b');
    fan.seal();
    a.push([flowAt('a', 0), flowAt('a', 2)]);
    b.push([flowAt('b', 1)]);
    a.end();
    b.end(new Error('connection reset'));
    const out = await collect(fan);
    expect(out.filter((i) => i.raw).map(summary)).toEqual(['a@0', 'b@1', 'a@2']);
    const errs = out.filter((i) => i.msg?.node_status);
    expect(errs).toHaveLength(1);
    expect(errs[0]!.msg).toMatchObject({
      node_status: { state_change: NodeState.NODE_ERROR, node_names: ['b'], message: 'connection reset' },
      node_name: 'relay-1',
    });
  });

  it('waits up to waitMs for a node with nothing buffered, so flows leave in time order', async () => {
    const fan = new FanIn({ capacity: 100, relayNode: 'r', waitMs: 5000 });
    const a = fan.add('a');
    const b = fan.add('b');
    const it = fan[Symbol.asyncIterator]();
    a.push([flowAt('a', 10), flowAt('a', 20)]);
    const first = it.next();
    // b has sent nothing yet, so a's flows wait for it instead of leaving ahead of b's older one.
    const early = await Promise.race([first, wait(100).then(() => 'waiting')]);
    expect(early).toBe('waiting');
    b.push([flowAt('b', 5), flowAt('b', 15)]);
    // b's newest (15) is older than a@20: a@20 waits for b's next flow.
    expect((await first).value.map(summary)).toEqual(['b@5', 'a@10', 'b@15']);
    b.push([flowAt('b', 25)]);
    expect((await it.next()).value.map(summary)).toEqual(['a@20']);
    fan.close();
    await it.return?.(undefined);
  });

  it('never waits for a node that ended, and for a quiet one only waitMs', async () => {
    const fan = new FanIn({ capacity: 100, relayNode: 'r', waitMs: 150 });
    const a = fan.add('a');
    const gone = fan.add('gone');
    gone.push([flowAt('gone', 0)]);
    gone.end();
    a.push([flowAt('a', 10)]);
    const it = fan[Symbol.asyncIterator]();
    let started = Date.now();
    expect((await it.next()).value.map(summary)).toEqual(['gone@0', 'a@10']);
    expect(Date.now() - started).toBeLessThan(100);

    const quiet = fan.add('quiet');
    a.push([flowAt('a', 20)]);
    started = Date.now();
    expect((await it.next()).value.map(summary)).toEqual(['a@20']);
    const took = Date.now() - started;
    expect(took).toBeGreaterThanOrEqual(140);
    expect(took).toBeLessThan(1000);
    expect(quiet.length).toBe(0);
    fan.close();
    await it.return?.(undefined);
  });

  it('asks a producer to pause at capacity and resumes it once the consumer catches up', async () => {
    const fan = new FanIn({ capacity: 3, relayNode: 'r' });
    const a = fan.add('a');
    let resumed = 0;
    expect(a.push([flowAt('a', 0), flowAt('a', 1)])).toBe(true);
    expect(a.push([flowAt('a', 2)])).toBe(false);
    a.onResume = () => resumed++;
    const it = fan[Symbol.asyncIterator]();
    const r = await it.next();
    expect(r.value).toHaveLength(3);
    expect(resumed).toBe(1);
    fan.close();
  });
});

describe('ScratchBatchEncoder', () => {
  it('frames node responses left inside their batch and relay events as one FlowBatch', () => {
    const a = flowAt('a', 1);
    const b = flowAt('b', 2);
    const batch = encodeBatch([a.raw!, b.raw!]);
    const inBatch: RelayItem = { ...b, raw: batch, start: batch.length - b.raw!.length, end: batch.length };
    const ev = nodeStatusItem(NodeState.NODE_CONNECTED, ['a', 'b'], 'relay', Date.now());
    const enc = new ScratchBatchEncoder();
    const out = decodeFlowBatch(Buffer.from(enc.encode([a, inBatch, ev])));
    expect(out.map((r) => r.flow?.Summary ?? r.node_status?.node_names?.join(','))).toEqual(['a@1', 'b@2', 'a,b']);
    // The scratch buffer is reused: a second batch overwrites the first one's bytes.
    const again = enc.encode([b]);
    expect(decodeFlowBatch(again).map((r) => r.flow?.Summary)).toEqual(['b@2']);
  });
});

describe('aggregateErrors', () => {
  it('merges NODE_ERRORs with the same message within the window and passes the rest', async () => {
    const e = (node: string, msg: string) => nodeStatusItem(NodeState.NODE_ERROR, [node], 'relay', Date.now(), msg);
    const f = flowAt('c', 0);
    const out = await collect(aggregateErrors(fromBatches([e('a', 'down'), f], [e('b', 'down'), e('c', 'other')]), 10_000));
    const statuses = out.filter((i) => i.msg?.node_status).map((i) => i.msg!.node_status);
    expect(statuses).toEqual([
      { state_change: NodeState.NODE_ERROR, node_names: ['a', 'b'], message: 'down' },
      { state_change: NodeState.NODE_ERROR, node_names: ['c'], message: 'other' },
    ]);
    expect(out.filter((i) => i.raw)).toEqual([f]);
  });

  it('flushes a pending error after the window even while the stream stays open', async () => {
    const fan = new FanIn({ capacity: 10, relayNode: 'relay' });
    const a = fan.add('a');
    fan.add('b');
    a.end(new Error('boom'));
    const it = aggregateErrors(fan, 150)[Symbol.asyncIterator]();
    const started = Date.now();
    const r = await it.next();
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    expect(r.value?.[0]?.msg?.node_status?.node_names).toEqual(['a']);
    fan.close();
    await wait(0);
  });
});
