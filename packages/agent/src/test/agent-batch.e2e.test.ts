// flowctl.observer.BatchObserver/GetFlowsBatched against the agent over real gRPC: the same
// responses as GetFlows (one cursor behind both), bounded batches, prompt delivery on follow.
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ObserverClient, Verdict, type GetFlowsRequest, type GetFlowsResponse } from '@flowctl/flow';
import { BatchObserverClient, decodeFlowBatch } from '@flowctl/flow/batch';
import { encodeResponse } from '@flowctl/flow/json';
import { Agent } from '../agent.js';
import { FakeDatapath } from '../testing/fake-datapath.js';
import { fixtures, flowEvent } from '../parser/fixtures.js';

let agent: Agent;
let dp: FakeDatapath;
let addr: string;

function getFlows(req: GetFlowsRequest): Promise<GetFlowsResponse[]> {
  const c = new ObserverClient(addr, grpc.credentials.createInsecure());
  return new Promise((resolve, reject) => {
    const out: GetFlowsResponse[] = [];
    const s = c.getFlows(req);
    s.on('data', (r: GetFlowsResponse) => out.push(r));
    s.on('end', () => (c.close(), resolve(out)));
    s.on('error', (e) => (c.close(), reject(e)));
  });
}

function getBatches(req: GetFlowsRequest): Promise<GetFlowsResponse[][]> {
  const c = new BatchObserverClient(addr, grpc.credentials.createInsecure());
  return new Promise((resolve, reject) => {
    const out: GetFlowsResponse[][] = [];
    const s = c.getFlowsBatched(req);
    s.on('data', (b: Buffer) => out.push(decodeFlowBatch(b, addr)));
    s.on('end', () => (c.close(), resolve(out)));
    s.on('error', (e) => (c.close(), reject(e)));
  });
}

beforeAll(async () => {
  dp = new FakeDatapath();
  agent = new Agent({
    nodeName: 'node-batch',
    listenAddress: '127.0.0.1:0',
    ringCapacity: 4095,
    datapath: dp,
    log: { info() {}, warn() {}, error() {} },
  });
  await agent.start();
  addr = `127.0.0.1:${agent.tcpPort}`;
  // 1,000 flows in four ring-buffer wake-ups, every seventh a policy drop.
  for (let b = 0; b < 4; b++) {
    dp.emit(Array.from({ length: 250 }, (_, i) => {
      const n = b * 250 + i;
      return n % 7 === 0 ? flowEvent({ ...fixtures.policyDrop, srcPort: 20000 + n }) : flowEvent({ srcPort: 20000 + n });
    }));
  }
  await new Promise((r) => setTimeout(r, 100));
});

afterAll(async () => {
  await agent?.stop();
});

describe('GetFlowsBatched', () => {
  it('returns exactly what GetFlows returns, in bounded batches', async () => {
    for (const req of [{ number: 1000n }, { number: 10n }, { first: true, number: 300n }, { whitelist: [{ verdict: [Verdict.DROPPED] }] }] as GetFlowsRequest[]) {
      const plain = await getFlows(req);
      const batches = await getBatches(req);
      const flat = batches.flat();
      expect(flat.map(encodeResponse)).toEqual(plain.map(encodeResponse));
      for (const b of batches) {
        expect(b.length).toBeGreaterThan(0);
        expect(b.length).toBeLessThanOrEqual(256);
      }
    }
    const all = await getBatches({ number: 1000n });
    expect(all.flat()).toHaveLength(1000);
    expect(all.length).toBe(4); // 1000 = 3 × 256 + 232: full batches, not one write per flow
    const drops = (await getBatches({ whitelist: [{ verdict: [Verdict.DROPPED] }] })).flat();
    expect(drops).toHaveLength(143);
    expect(drops.every((r) => r.flow?.verdict === Verdict.DROPPED)).toBe(true);
  });

  it('follow: flows written later arrive at once, without waiting for a full batch', async () => {
    const c = new BatchObserverClient(addr, grpc.credentials.createInsecure());
    const s = c.getFlowsBatched({ follow: true });
    const got: GetFlowsResponse[] = [];
    s.on('data', (b: Buffer) => got.push(...decodeFlowBatch(b)));
    s.on('error', () => {});
    await new Promise((r) => setTimeout(r, 200));
    expect(got).toHaveLength(0);
    const t0 = Date.now();
    dp.emit([flowEvent({ srcPort: 33333 })]);
    while (got.length === 0 && Date.now() - t0 < 2000) await new Promise((r) => setTimeout(r, 5));
    const delay = Date.now() - t0;
    s.cancel();
    c.close();
    expect(got).toHaveLength(1);
    expect(got[0]!.flow?.l4?.TCP?.source_port).toBe(33333);
    expect(delay).toBeLessThan(500);
  });

  it('rejects an invalid request with InvalidArgument, as GetFlows does', async () => {
    const e = await getBatches({ first: true, follow: true }).catch((x: grpc.ServiceError) => x);
    expect((e as grpc.ServiceError).code).toBe(grpc.status.INVALID_ARGUMENT);
    const bad = await getBatches({ whitelist: [{ source_ip: ['10.0.0.0/99'] }] }).catch((x: grpc.ServiceError) => x);
    expect((bad as grpc.ServiceError).code).toBe(grpc.status.INVALID_ARGUMENT);
  });
});
