import { describe, expect, it } from 'vitest';
import { LostEventSource, type Flow, type LostEvent } from '@flowctl/flow';
import { FakeDatapath } from '../testing/fake-datapath.js';
import type { DatapathEvent } from '../datapath/events.js';
import { flowEvent } from '../parser/fixtures.js';
import { MonitorConsumer } from './consumer.js';

function setup(queueSize: number, maxQueue = queueSize, readIntervalMs = 0) {
  const dp = new FakeDatapath();
  const flows: Flow[] = [];
  const lost: LostEvent[] = [];
  // A decoder that tags each flow with the event's source port, so order and completeness are visible.
  const decode = (ev: DatapathEvent): Flow[] => (ev.kind === 'flow' ? [{ uuid: String(ev.srcPort) }] : []);
  const c = new MonitorConsumer(dp, decode, { writeFlow: (f) => flows.push(f), writeLost: (l) => lost.push(l) }, { queueSize, maxQueue, chunk: 10, lostIntervalMs: 60_000, readIntervalMs });
  c.start();
  return { dp, c, flows, lost };
}

const batch = (from: number, n: number) => Array.from({ length: n }, (_, i) => flowEvent({ srcPort: from + i }));
const tick = () => new Promise((r) => setImmediate(r));

describe('MonitorConsumer', () => {
  it('keeps batches that arrive after the pause, up to the hard bound', async () => {
    const { dp, c, flows } = setup(20, 40);
    dp.emit(batch(0, 25));
    expect(dp.paused).toBe(true);
    dp.emit(batch(25, 10)); // in flight when the pause happened: kept
    dp.emit(batch(35, 10)); // beyond 40: 5 dropped
    expect(c.stats.queueDropped).toBe(5);
    for (let i = 0; i < 8; i++) await tick();
    expect(flows).toHaveLength(40);
    expect(dp.paused).toBe(false);
  });

  it('rests the datapath for the read interval after each batch; it resumes once both the rest and backpressure are over', async () => {
    const { dp, c, flows } = setup(20, 40, 30);
    dp.emit(batch(0, 5));
    expect(dp.paused).toBe(true); // resting: the ring fills up for the next read
    for (let i = 0; i < 3; i++) await tick();
    expect(flows).toHaveLength(5); // what was read is decoded at once
    expect(dp.paused).toBe(true);
    await new Promise((r) => setTimeout(r, 40));
    expect(dp.paused).toBe(false);
    dp.emit(batch(5, 25)); // over the queue size: paused by backpressure and resting
    await new Promise((r) => setTimeout(r, 40));
    for (let i = 0; i < 5; i++) await tick();
    expect(flows).toHaveLength(30);
    expect(dp.paused).toBe(false); // resumed once drained
    c.stop();
  });

  it('decodes every event in order, in chunks that yield to the event loop', async () => {
    const { dp, c, flows } = setup(1000);
    dp.emit(batch(0, 25));
    dp.emit(batch(25, 5));
    expect(flows).toHaveLength(0); // nothing decoded inside the ring-buffer callback
    await tick();
    expect(flows).toHaveLength(10);
    for (let i = 0; i < 5; i++) await tick();
    expect(flows.map((f) => Number(f.uuid))).toEqual(Array.from({ length: 30 }, (_, i) => i));
    expect(c.stats.decoded).toBe(30);
  });

  it('pauses the datapath when the queue fills, resumes when drained, and counts overflow as one lost event per interval', async () => {
    const { dp, c, flows, lost } = setup(20, 20);
    dp.emit(batch(0, 15));
    expect(dp.paused).toBe(false);
    dp.emit(batch(15, 15)); // 10 overflow
    expect(dp.paused).toBe(true);
    dp.emit(batch(30, 3)); // 3 more overflow while paused
    expect(c.stats.queueDropped).toBe(13);
    for (let i = 0; i < 5; i++) await tick();
    expect(dp.paused).toBe(false);
    expect(flows).toHaveLength(20);
    c.flushLost();
    expect(lost).toHaveLength(1);
    expect(lost[0]!.source).toBe(LostEventSource.OBSERVER_EVENTS_QUEUE);
    expect(lost[0]!.num_events_lost).toBe(13n);
    expect(lost[0]!.first).toBeDefined();
    expect(lost[0]!.last).toBeDefined();
    c.flushLost();
    expect(lost).toHaveLength(1); // nothing new, nothing sent
  });

  it('reports kernel ring-buffer losses from the datapath counters as deltas', () => {
    const { dp, c, lost } = setup(100);
    dp.ctrs.ringbufFull = 7n;
    c.flushLost();
    dp.ctrs.ringbufFull = 9n;
    c.flushLost();
    c.flushLost();
    expect(lost.map((l) => [l.source, l.num_events_lost])).toEqual([
      [LostEventSource.PERF_EVENT_RING_BUFFER, 7n],
      [LostEventSource.PERF_EVENT_RING_BUFFER, 2n],
    ]);
    expect(c.stats.kernelLost).toBe(9n);
  });
});
