// /metrics of a running agent: the real agent process in replay mode scraped over HTTP and checked
// with promtool, the bind-failure path, and an in-process agent on a fake datapath for the health
// series whose inputs only a datapath produces (events read, losses by stage, parse errors).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HealthCheckResponse_ServingStatus, HealthClient } from '@flowctl/flow';
import { encodeResponse } from '@flowctl/flow/json';
import { makeCorpus } from '@flowctl/flow/testing';
import { Agent } from '../agent.js';
import { FakeDatapath } from '../testing/fake-datapath.js';
import { fixtures, flowEvent, kernelDrop, sockEvent } from '../parser/fixtures.js';
import { DEFAULT_RING_CAPACITY } from '../container/ring.js';

const REPO = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../../..');
const PROMTOOL = '/usr/bin/promtool';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the text exposition into samples (enough for assertions; promtool checks the format). */
function parseExposition(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`unparseable exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const hits = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  return hits.length ? hits.reduce((a, s) => a + s.value, 0) : undefined;
}

async function scrape(port: number): Promise<{ text: string; type: string }> {
  const r = await fetch(`http://127.0.0.1:${port}/metrics`);
  expect(r.status).toBe(200);
  return { text: await r.text(), type: r.headers.get('content-type') ?? '' };
}

function startAgent(args: string[]): { proc: ChildProcess; log: () => string } {
  let log = '';
  const proc = spawn(process.execPath, ['--conditions=@flowctl/source', '--import', 'tsx', join(REPO, 'packages/agent/src/main.ts'), ...args], {
    cwd: REPO,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  proc.stdout!.on('data', (d: Buffer) => (log += d));
  proc.stderr!.on('data', (d: Buffer) => (log += d));
  return { proc, log: () => log };
}

async function waitFor<T>(what: string, f: () => T | undefined | Promise<T | undefined>, ms: number, log?: () => string): Promise<T> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const v = await f();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${what} not within ${ms} ms${log ? `\nagent log:\n${log().slice(-2000)}` : ''}`);
}

function logLine(log: string, msg: string): Record<string, unknown> | undefined {
  for (const l of log.split('\n')) {
    if (!l.startsWith('{')) continue;
    const j = JSON.parse(l) as Record<string, unknown>;
    if (typeof j.msg === 'string' && j.msg.includes(msg)) return j;
  }
  return undefined;
}

describe('metrics of the agent process (replay mode)', () => {
  let dir: string;
  const procs: ChildProcess[] = [];
  let port: number;
  let grpcPort: number;
  let first: ReturnType<typeof startAgent>;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fca-metrics-'));
    const corpus = makeCorpus(400, 7);
    writeFileSync(join(dir, 'flows.json'), corpus.map(encodeResponse).join('\n') + '\n');
    first = startAgent(['--node-name', 'metrics-node', '--replay', join(dir, 'flows.json'), '--replay-rate', '4000',
      '--listen-address', '127.0.0.1:0', '--metrics-address', '127.0.0.1:0', '--metrics', 'flow,drop,tcp,icmp,dns,http']);
    procs.push(first.proc);
    const line = await waitFor('metrics listening', () => logLine(first.log(), 'serving metrics'), 30_000, first.log);
    port = line.port as number;
    grpcPort = (await waitFor('gRPC listening', () => logLine(first.log(), 'serving'), 10_000, first.log)).tcpPort as number;
    // The replay writes 4000 flows/s: wait for the whole corpus to have gone through once.
    await new Promise((r) => setTimeout(r, 300));
  }, 60_000);

  afterAll(() => {
    for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('serves Hubble flow metrics and the agent health series with values', async () => {
    const { text, type } = await scrape(port);
    expect(type).toMatch(/^text\/plain; version=0\.0\.4/);
    const s = parseExposition(text);
    const processed = value(s, 'hubble_flows_processed_total')!;
    expect(processed).toBeGreaterThanOrEqual(400);
    // Every flow is counted once: the sum over label sets equals what the ring has seen.
    expect(value(s, 'hubble_flows_processed_total', { protocol: 'TCP', verdict: 'FORWARDED' })).toBeGreaterThan(0);
    expect(value(s, 'hubble_drop_total', { reason: 'POLICY_DENIED' })).toBeGreaterThan(0);
    expect(value(s, 'hubble_tcp_flags_total', { flag: 'SYN' })).toBeGreaterThan(0);
    expect(value(s, 'hubble_dns_queries_total')).toBeGreaterThan(0);
    expect(value(s, 'hubble_http_requests_total')).toBeGreaterThan(0);
    expect(value(s, 'hubble_http_request_duration_seconds_count')).toBeGreaterThan(0);
    expect(value(s, 'flowctl_agent_ring_capacity')).toBe(DEFAULT_RING_CAPACITY);
    expect(value(s, 'flowctl_agent_ring_flows')).toBeGreaterThanOrEqual(400);
    for (const stage of ['kernel_ringbuf', 'kernel_flow_map', 'agent_queue', 'hubble_ring']) {
      expect(value(s, 'flowctl_agent_lost_events_total', { stage })).toBe(0);
    }
    expect(value(s, 'flowctl_agent_process_cpu_seconds_total')).toBeGreaterThan(0);
    expect(value(s, 'flowctl_agent_process_resident_memory_bytes')).toBeGreaterThan(10 << 20);
    expect(value(s, 'flowctl_agent_nodejs_heap_size_used_bytes')).toBeGreaterThan(0);
    // A second scrape later sees more flows: the counters follow the live replay.
    await new Promise((r) => setTimeout(r, 300));
    const later = parseExposition((await scrape(port)).text);
    expect(value(later, 'hubble_flows_processed_total')!).toBeGreaterThan(processed);
  });

  it('passes promtool check metrics', async () => {
    const { text } = await scrape(port);
    const r = spawnSync(PROMTOOL, ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect(r.error).toBeUndefined();
    expect(`${r.stdout}${r.stderr}`.trim()).toBe('');
    expect(r.status).toBe(0);
  });

  it('a metrics bind failure is one log line; the agent keeps serving flows', async () => {
    const second = startAgent(['--node-name', 'metrics-node-2', '--replay', join(dir, 'flows.json'),
      '--listen-address', '127.0.0.1:0', '--metrics-address', `127.0.0.1:${port}`]);
    procs.push(second.proc);
    const line = await waitFor('bind failure logged', () => logLine(second.log(), 'metrics disabled'), 30_000, second.log);
    expect(line.msg).toMatch(new RegExp(`^metrics disabled: cannot listen on 127\\.0\\.0\\.1:${port}: .*EADDRINUSE`));
    expect(second.log().split('\n').filter((l) => l.includes('metrics disabled'))).toHaveLength(1);
    const tcpPort = (await waitFor('gRPC listening', () => logLine(second.log(), 'serving'), 10_000, second.log)).tcpPort as number;
    const h = new HealthClient(`127.0.0.1:${tcpPort}`, grpc.credentials.createInsecure());
    const st = await new Promise<HealthCheckResponse_ServingStatus | undefined>((res, rej) =>
      h.check({ service: 'hubble.server.Observer' }, (e, r) => (e ? rej(e) : res(r.status))));
    h.close();
    expect(st).toBe(HealthCheckResponse_ServingStatus.SERVING);
    expect(second.proc.exitCode).toBeNull();
    expect(tcpPort).not.toBe(grpcPort);
  });

  it('--metrics-address "" disables metrics; a bad --metrics list is a one-line usage error', async () => {
    const off = startAgent(['--replay', join(dir, 'flows.json'), '--listen-address', '127.0.0.1:0', '--metrics-address', '']);
    procs.push(off.proc);
    await waitFor('gRPC listening', () => logLine(off.log(), 'serving'), 30_000, off.log);
    expect(off.log()).not.toMatch(/serving metrics|metrics disabled/);

    const bad = spawnSync(process.execPath, ['--conditions=@flowctl/source', '--import', 'tsx', join(REPO, 'packages/agent/src/main.ts'),
      '--replay', join(dir, 'flows.json'), '--listen-address', '127.0.0.1:0', '--metrics-address', '127.0.0.1:0', '--metrics', 'flow,bogus'],
    { cwd: REPO, encoding: 'utf8', timeout: 30_000 });
    expect(bad.status).not.toBe(0);
    expect(bad.stderr.trim()).toBe(`error: option '--metrics <handlers>' argument 'flow,bogus' is invalid. unknown handler "bogus" (known: flow, drop, dns, tcp, icmp, http, httpV2, port-distribution, flows-to-world, tcp-health, dns-latency)`);
  });
});

describe('agent health metrics (fake datapath)', () => {
  let agent: Agent;
  let dp: FakeDatapath;

  beforeAll(async () => {
    dp = new FakeDatapath();
    agent = new Agent({
      nodeName: 'node-m',
      listenAddress: '127.0.0.1:0',
      metricsAddress: '127.0.0.1:0',
      metrics: 'flow,drop:sourceContext=namespace;destinationContext=pod',
      datapath: dp,
      log: { info() {}, warn() {}, error() {} },
    });
    await agent.start();
  });

  afterAll(async () => {
    await agent?.stop();
  });

  it('counts events read by source, losses by stage and parse errors', async () => {
    const garbageDns = flowEvent({ ...fixtures.dnsQuery, payload: Buffer.from('not dns'), payloadLen: 7 });
    dp.emit([fixtures.tcpSyn, fixtures.udp, fixtures.policyDrop, garbageDns, sockEvent]);
    dp.emit([kernelDrop]);
    dp.ctrs.ringbufFull = 5n;
    dp.ctrs.flowMapFull = 3n;
    // The consumer reports kernel ring-buffer losses once per second (Hubble's lost-event interval).
    await new Promise((r) => setTimeout(r, 1200));
    const s = parseExposition((await scrape(agent.metricsPort!)).text);
    expect(value(s, 'flowctl_agent_events_read_total', { source: 'flow' })).toBe(4);
    expect(value(s, 'flowctl_agent_events_read_total', { source: 'sock' })).toBe(1);
    expect(value(s, 'flowctl_agent_events_read_total', { source: 'kdrop' })).toBe(1);
    expect(value(s, 'hubble_lost_events_total', { source: 'perf_event_ring_buffer' })).toBe(5);
    expect(value(s, 'flowctl_agent_lost_events_total', { stage: 'kernel_ringbuf' })).toBe(5);
    expect(value(s, 'flowctl_agent_lost_events_total', { stage: 'kernel_flow_map' })).toBe(3);
    expect(value(s, 'flowctl_agent_parse_errors_total', { kind: 'l7' })).toBe(1);
    expect(value(s, 'flowctl_agent_datapath_stats_total', { name: 'flowMapFull' })).toBe(3);
    // Context options as in Hubble: the drop carries the source namespace label.
    const drop = s.find((x) => x.name === 'hubble_drop_total');
    expect(drop?.labels).toMatchObject({ reason: 'POLICY_DENIED', protocol: 'TCP' });
    expect(Object.keys(drop!.labels).sort()).toEqual(['destination', 'protocol', 'reason', 'source']);
    expect(value(s, 'hubble_flows_processed_total')).toBe(agent.observer.seenFlows);
  });
});
