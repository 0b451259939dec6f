// Service map costs: (1) what aggregating a flow into the per-edge buckets adds to the agent's
// path (ring write with vs without it, same run, same flows); (2) how long `flowctl map --since 1h`
// takes through a relay in front of 10 agents holding an hour of 15 s buckets each.
//
//   pnpm exec tsx --conditions=@flowctl/source bench/service-map.ts
//   (env ROUNDS and PASSES of the aggregation; NODES, EDGES per bucket per node of the query)
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { FlowType, attachConnNumbers, type Flow } from '../packages/flow/src/index.js';
import { makeCorpus } from '../packages/flow/src/testing/corpus.js';
import { ServiceMapStore } from '../packages/agent/src/aggregate/service-map.js';
import { Agent } from '../packages/agent/src/agent.js';
import { FakeDatapath } from '../packages/agent/src/testing/fake-datapath.js';
import { Observer } from '../packages/agent/src/observer/observer.js';
import { spawnRelay, repoRoot } from '../packages/relay/src/testing/spawn.js';
import { cpus, loadavg } from 'node:os';
import { median, medianCI, progress, writeSection } from './lib/report.js';

const run = promisify(execFile);
const ROUNDS = Number(process.env.ROUNDS ?? 41);
const PASSES = Number(process.env.PASSES ?? 3);
const WARMUP = 5;
const NODES = Number(process.env.NODES ?? 10);
const EDGES = Number(process.env.EDGES ?? 200);
const N = 20_000;

/** Wall time of fn in ns (hrtime: ns resolution, where CPU-time accounting is tick-grained). */
function wall(fn: () => void): number {
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0);
}

// Realistic flows; L3/L4 ones carry connection numbers as the parser attaches them, and flows of
// one pod share its Endpoint object, as the agent's endpoint directory hands them out.
const flows: Flow[] = makeCorpus(N, 3).flatMap((r) => (r.flow ? [r.flow] : []));
const endpoints = new Map<string, Flow['source']>();
const shared = (e: Flow['source']) => {
  if (!e) return e;
  const k = JSON.stringify(e);
  let s = endpoints.get(k);
  if (!s) endpoints.set(k, (s = Object.freeze(e)));
  return s;
};
for (const f of flows) {
  f.source = shared(f.source);
  f.destination = shared(f.destination);
}
let bytes = 0;
for (const f of flows) {
  if (f.Type === FlowType.L3_L4 && f.verdict === 1) attachConnNumbers(f, { bytes_sent: (bytes += 1500), bytes_received: bytes >> 1, packets_sent: 10, packets_received: 8 });
}

interface Aggregation { base: number; withMap: number; cost: number; ci: [number, number]; control: number }

/**
 * Per round: the ring write alone (A) and with the service map in front (B), PASSES passes over
 * the corpus each, in alternating order so drift and load hit both alike; the cost is the median
 * of the rounds' B − A. A second A in each round gives A − A, the method's zero.
 */
function aggregation(): Aggregation {
  // Steady state, as in an agent: the edges of the current bucket exist after the warm-up.
  const o1 = new Observer({ nodeName: 'bench', capacity: 65535 });
  const o2 = new Observer({ nodeName: 'bench', capacity: 65535 });
  const now = Date.now();
  const store = new ServiceMapStore({ nodeName: 'bench', isLocalIp: () => true, now: () => now });
  const ringOnly = () => { for (let p = 0; p < PASSES; p++) for (const f of flows) o1.writeFlow(f); };
  const withMap = () => { for (let p = 0; p < PASSES; p++) for (const f of flows) { store.observe(f); o2.writeFlow(f); } };
  for (let r = 0; r < WARMUP; r++) { ringOnly(); withMap(); }
  const per = PASSES * flows.length;
  const base: number[] = [];
  const both: number[] = [];
  const cost: number[] = [];
  const control: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    let a: number;
    let b: number;
    if (r % 2) { a = wall(ringOnly); b = wall(withMap); } else { b = wall(withMap); a = wall(ringOnly); }
    const a2 = wall(ringOnly);
    base.push(a / per);
    both.push(b / per);
    cost.push((b - a) / per);
    control.push((a2 - a) / per);
  }
  return { base: median(base), withMap: median(both), cost: median(cost), ci: medianCI(cost), control: median(control) };
}

/** An agent whose store holds an hour of buckets with EDGES distinct pod pairs each. */
async function filledAgent(i: number): Promise<Agent> {
  let clock = Date.now() - 3_600_000;
  const agent = new Agent({
    nodeName: `node-${i}`, listenAddress: '127.0.0.1:0', unixSocket: '', metricsAddress: '', datapath: new FakeDatapath(),
    serviceMap: { now: () => clock }, log: { info() {}, warn() {}, error() {} },
  });
  await agent.start();
  for (let b = 0; b < 240; b++) {
    for (let e = 0; e < EDGES; e++) {
      const src = { namespace: `ns${e % 7}`, pod_name: `client${e % 25}-${i}`, workloads: [{ name: `client${e % 25}`, kind: 'Deployment' }], labels: [`k8s:app=client${e % 25}`] };
      const dst = { namespace: `ns${e % 5}`, pod_name: `server${e % 40}-${i}`, workloads: [{ name: `server${e % 40}`, kind: 'Deployment' }], labels: [`k8s:app=server${e % 40}`] };
      agent.serviceMap.observe({
        verdict: 1, Type: FlowType.L3_L4, traffic_direction: 2, is_reply: false, trace_reason: 1,
        IP: { source: `10.${i}.0.${e % 250}`, destination: `10.${i}.1.${e % 250}` },
        l4: { TCP: { source_port: 40000 + b, destination_port: 8000 + (e % 8) } }, source: src, destination: dst,
      });
    }
    clock += 15_000;
  }
  return agent;
}

async function mapQuery(): Promise<{ ms: number[]; startMs: number[]; edges: number; nodes: number }> {
  const agents = await Promise.all(Array.from({ length: NODES }, (_, i) => filledAgent(i)));
  const relay = await spawnRelay(['--listen-address', '127.0.0.1:0', ...agents.flatMap((a) => ['--peer', `127.0.0.1:${a.tcpPort}`])], true);
  const server = `127.0.0.1:${relay.port}`;
  const flowctl = join(repoRoot, 'bin', 'flowctl');
  try {
    // Wait until the relay has every node connected.
    for (let t = 0; t < 60; t++) {
      const { stdout } = await run(flowctl, ['map', '--since', '1m', '-o', 'json', '--server', server]).catch(() => ({ stdout: '{}' }));
      const m = JSON.parse(stdout || '{}') as { edges?: unknown[]; unavailable_nodes?: string[] };
      if (m.edges && !m.unavailable_nodes) break;
      if (t % 10 === 9) progress(`waiting for the relay's nodes: ${stdout.slice(0, 300)}`);
      await new Promise((r) => setTimeout(r, 500));
    }
    const ms: number[] = [];
    let out = '';
    for (let r = 0; r < 7; r++) {
      const t0 = performance.now();
      out = (await run(flowctl, ['map', '--since', '1h', '-o', 'json', '--server', server], { maxBuffer: 256 << 20 })).stdout;
      ms.push(performance.now() - t0);
    }
    // Baseline in the same run: the CLI starting and exiting without a server.
    const startMs: number[] = [];
    for (let r = 0; r < 7; r++) {
      const t0 = performance.now();
      await run(flowctl, ['version']);
      startMs.push(performance.now() - t0);
    }
    const m = JSON.parse(out) as { edges: unknown[]; nodes: unknown[] };
    return { ms, startMs, edges: m.edges.length, nodes: m.nodes.length };
  } finally {
    await relay.stop('SIGTERM');
    await Promise.all(agents.map((a) => a.stop()));
  }
}

async function main(): Promise<void> {
  progress(`aggregation: ${flows.length} corpus flows × ${PASSES} passes, ${ROUNDS} rounds`);
  const a = aggregation();
  const load1 = loadavg()[0]!;
  const load = loadavg().map((x) => x.toFixed(1)).join(' / ');
  progress(`map query: ${NODES} agents × 240 buckets × ${EDGES} aggregates, through a relay`);
  const q = await mapQuery();
  const md = `## Service map (\`bench/service-map.ts\`)

\`pnpm exec tsx --conditions=@flowctl/source bench/service-map.ts\`

Aggregation in the agent: the ring write of ${flows.length.toLocaleString('en-US')} corpus flows (${PASSES} passes per
measurement) without (A) and with (B) \`ServiceMapStore.observe\` in front of it, in the same process, after
${WARMUP} warm-up rounds. Wall time (\`process.hrtime\`), ${ROUNDS} rounds in alternating order; the cost is the
median of the rounds' B − A (95% CI of that median in brackets). A second A per round gives A − A, the
method's zero. Load average (1, 5, 15 min) when it ended: ${load} on ${cpus().length} cores${load1 >= 1 ? ': measured under load, other work shared the cores' : ''}.

| path | ns per flow |
|---|---|
| ring write (A, baseline) | ${a.base.toFixed(0)} |
| service map + ring write (B) | ${a.withMap.toFixed(0)} |
| A − A (the method's zero) | ${a.control.toFixed(0)} |
| **aggregation cost, B − A** | **${a.cost.toFixed(0)}** [${a.ci[0].toFixed(0)}–${a.ci[1].toFixed(0)}] (goal ≤ 1,000) |

\`flowctl map --since 1h -o json\` (the CLI process, wall time) through a flowctl-relay in front of
${NODES} agents, each holding 240 buckets (an hour) of ${EDGES} pod-pair aggregates: answer
${q.edges} edges, ${q.nodes} nodes. Median of ${q.ms.length} runs: **${median(q.ms).toFixed(0)} ms** (goal ≤ 1,000 ms;
min ${Math.min(...q.ms).toFixed(0)}, max ${Math.max(...q.ms).toFixed(0)}). Baseline in the same run, \`flowctl version\` (the CLI's
start-up alone): ${median(q.startMs).toFixed(0)} ms, so the map itself takes about ${(median(q.ms) - median(q.startMs)).toFixed(0)} ms.
`;
  writeSection('service-map', md);
  progress(md);
  process.exit(0);
}

void main();
