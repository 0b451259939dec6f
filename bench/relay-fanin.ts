// Relay fan-in: 10 fake agents (child processes) streaming flows at a set rate into one
// flowctl-relay and one client. Reports flows/s delivered, how many arrived in time order, the
// agent→client delay (each flow carries its scheduled send time), and relay RSS. Baseline in the
// same run: one agent straight to the client. Also measures the plain (one flow per message)
// Observer path through the relay, which is why agent↔relay↔client use the batched method.
//   pnpm exec tsx bench/relay-fanin.ts   (env AGENTS, RATE per agent, SECONDS to override)
import { existsSync } from 'node:fs';
import { spawnFakeAgent, spawnRelay } from '../packages/relay/src/testing/spawn.js';
import type { Child } from '../packages/relay/src/testing/spawn.js';
import { consume } from '../packages/relay/src/testing/follow-client.js';
import type { Result } from '../packages/relay/src/testing/follow-client.js';
import { median, percentile, progress, writeSection } from './lib/report.js';

const AGENTS = Number(process.env.AGENTS ?? 10);
const RATE = Number(process.env.RATE ?? 32_000);
const SECONDS = Number(process.env.SECONDS ?? 15);
const WARMUP_S = 3;
// The relay as deployed (bin/flowctl-relay runs dist/); falls back to sources when not built.
const compiled = existsSync(new URL('../packages/relay/dist/main.js', import.meta.url));

async function withAgents<T>(n: number, rate: number, fn: (agents: Child[]) => Promise<T>): Promise<T> {
  const agents = await Promise.all(
    Array.from({ length: n }, (_, i) => spawnFakeAgent(['--node-name', `bench-node-${i + 1}`, '--rate', String(rate), '--seed', String(i + 1)])),
  );
  try {
    return await fn(agents);
  } finally {
    await Promise.all(agents.map((a) => a.stop()));
  }
}

async function viaRelay(n: number, rate: number, seconds: number, batched: boolean): Promise<Result> {
  return withAgents(n, rate, async (agents) => {
    const relay = await spawnRelay([
      '--listen-address', '127.0.0.1:0',
      ...agents.flatMap((a) => ['--peer', `127.0.0.1:${a.port}`]),
      ...(batched ? [] : ['--no-upstream-batch']),
    ], compiled);
    try {
      await new Promise((r) => setTimeout(r, 500));
      return await consume(relay.port, seconds, batched, WARMUP_S, relay.proc.pid);
    } finally {
      await relay.stop();
    }
  });
}

const fmt = (x: number) => Math.round(x).toLocaleString('en-US');
const summary = (r: Result) => ({
  flowsPerSec: median(r.perSecond),
  p50: percentile(r.delays, 50),
  p99: percentile(r.delays, 99),
  inOrder: r.delivered ? 1 - r.outOfOrder / r.delivered : 0,
});

async function main(): Promise<void> {
  const started = Date.now();
  progress(`baseline: 1 agent at ${fmt(RATE)} flows/s straight to the client`);
  const base = await withAgents(1, RATE, (a) => consume(a[0]!.port, 6, true, WARMUP_S));
  progress(`fan-in: ${AGENTS} agents × ${fmt(RATE)} flows/s through the relay (batched), ${SECONDS}s`);
  const fan = await viaRelay(AGENTS, RATE, SECONDS, true);
  const plainRate = 5_000;
  progress(`plain Observer path: ${AGENTS} agents × ${fmt(plainRate)} flows/s, one flow per message`);
  const plain = await viaRelay(AGENTS, plainRate, 6, false);
  const b = summary(base);
  const f = summary(fan);
  const p = summary(plain);
  const goal = (ok: boolean) => (ok ? 'met' : '**missed**');
  const md = `## Relay fan-in (\`bench/relay-fanin.ts\`)

${AGENTS} fake agents (separate processes, \`packages/relay/src/testing/fake-agent.ts\`) each stream
${fmt(RATE)} flows/s (offered ${fmt(AGENTS * RATE)} flows/s) into one \`flowctl-relay\` (default sort buffer
100, drain timeout 1 s) and one follow client on the same machine. Flows carry their scheduled send
time, so delay includes every queue from the agent to the client. Medians of 1 s samples after a
${WARMUP_S} s warm-up.

| run | flows/s delivered (median) | in time order | delay p50 | delay p99 | relay RSS max |
|---|---|---|---|---|---|
| baseline: 1 agent → client, no relay | ${fmt(b.flowsPerSec)} | ${(b.inOrder * 100).toFixed(2)} % | ${fmt(b.p50)} ms | ${fmt(b.p99)} ms | – |
| ${AGENTS} agents → relay → client, batched | ${fmt(f.flowsPerSec)} | ${(f.inOrder * 100).toFixed(2)} % | ${fmt(f.p50)} ms | ${fmt(f.p99)} ms | ${fmt(fan.rssMaxMb ?? 0)} MB |
| ${AGENTS} agents × ${fmt(plainRate)}/s → relay → client, plain GetFlows | ${fmt(p.flowsPerSec)} | ${(p.inOrder * 100).toFixed(2)} % | ${fmt(p.p50)} ms | ${fmt(p.p99)} ms | ${fmt(plain.rssMaxMb ?? 0)} MB |

- Fan-in throughput vs the single-agent baseline: **${(f.flowsPerSec / Math.max(1, b.flowsPerSec)).toFixed(2)}×**
  (${AGENTS} agents); p99 delay ${fmt(f.p99)} ms vs ${fmt(b.p99)} ms direct.
- Goals: ≥ 300,000 flows/s ${goal(f.flowsPerSec >= 300_000)}; p99 ≤ 1.5 s ${goal(f.p99 <= 1500)}; RSS ≤ 200 MB ${goal((fan.rssMaxMb ?? 1e9) <= 200)}.
- "In time order" counts flows not older than one already delivered; the relay orders within its
  100-entry / 1 s window (Hubble's semantics), so some inversions between nodes are expected.
- Relay run from ${compiled ? '`packages/relay/dist` (as `bin/flowctl-relay`)' : 'TypeScript sources through tsx (not built)'}; agents and client share the
  machine with it, so on a busy 2-core box the figures are bounded by CPU share, not by the relay alone.
- Lost-event records seen by the client: ${fan.lost} (batched run), ${plain.lost} (plain run).
- The plain path (one GetFlowsResponse per gRPC message, what Hubble and its CLI speak) is
  bounded by grpc-js's per-message cost; flowctl agents, relay and client therefore use
  \`/flowctl.observer.BatchObserver/GetFlowsBatched\` when both ends support it.

Command: \`pnpm exec tsx bench/relay-fanin.ts\` (${Math.round((Date.now() - started) / 1000)} s).`;
  writeSection('relay-fanin', md);
  process.stdout.write(`${md}\n`);
}

await main();
