// Agent memory (issue 5): RSS of an agent whose 65,535-flow ring is full of realistic flows,
// against the same agent with an empty ring, each in a fresh process (median of 3).
// The agent is the real one (Agent: endpoints file with 200 pods, gRPC server on a unix socket,
// monitor consumer, parser with L7, ring) fed through a fake datapath, so no kernel is needed:
// the kernel side's memory (maps, ring buffer) is not on the JS heap and is not counted here.
// Flows: TCP connections between random pod pairs with their SYN/SYN-ACK/ACK/FIN events at both
// observation points, DNS queries and answers, HTTP requests and responses, some world traffic.
// Run: pnpm exec tsx --conditions=@flowctl/source bench/agent-memory.ts
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { median, progress, writeSection } from './lib/report.js';

const RING = 65535;
const PODS = 200;
const RUNS = 3;

const CHILD = fileURLToPath(new URL('./agent-memory-child.mjs', import.meta.url));
// The compiled agent (as bin/flowctl-agent runs it) when built; tsx's in-process compiler would
// otherwise be counted as agent memory.
const DIST = fileURLToPath(new URL('../packages/agent/dist/', import.meta.url));
const compiled = existsSync(join(DIST, 'agent.js')) && existsSync(join(DIST, 'parser/fixtures.js'));


interface Sample { rss: number; heapUsed: number; flows: number; l7: number }

function measure(mode: 'empty' | 'full'): Sample {
  const args = compiled ? [] : ['--conditions=@flowctl/source', '--import', 'tsx'];
  const agentDir = compiled ? DIST : fileURLToPath(new URL('../packages/agent/src/', import.meta.url));
  const r = spawnSync(process.execPath, ['--expose-gc', ...args, CHILD, mode, agentDir, compiled ? '.js' : '.ts'], {
    encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 60_000,
  });
  const line = r.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as Sample;
  } catch {
    throw new Error(`child (${mode}) failed: exit ${r.status} ${r.stdout}`);
  }
}

async function main(): Promise<void> {
  const empty: Sample[] = [];
  const full: Sample[] = [];
  for (let r = 0; r < RUNS; r++) {
    progress(`run ${r + 1}/${RUNS}`);
    empty.push(measure('empty'));
    full.push(measure('full'));
  }
  const mb = (b: number) => (b / 2 ** 20).toFixed(1);
  const e = median(empty.map((s) => s.rss));
  const f = median(full.map((s) => s.rss));
  const fh = median(full.map((s) => s.heapUsed));
  const eh = median(empty.map((s) => s.heapUsed));
  const md = `## Agent memory (\`bench/agent-memory.ts\`)

The real agent (endpoints file with ${PODS} pods, gRPC server, consumer, parser with L7, ring of 65,535)
fed through a fake datapath with realistic events: TCP connections between pods (SYN … FIN at both
observation points), DNS queries/answers and HTTP requests/responses (L7 flows), some world traffic.
RSS after a forced GC, fresh process per sample, median of ${RUNS}; agent code ${compiled ? 'compiled (packages/agent/dist, as bin/flowctl-agent runs it)' : 'from sources through tsx (its compiler is counted: run `make build` first for the real figure)'}.

| agent | RSS | JS heap used | flows in ring |
|---|---|---|---|
| empty ring (baseline) | ${mb(e)} MB | ${mb(eh)} MB | 0 |
| ring full | ${mb(f)} MB | ${mb(fh)} MB | ${full[0]!.flows.toLocaleString('en-US')} (${full[0]!.l7.toLocaleString('en-US')} L7) |

- Ring full / empty: **${(f / e).toFixed(2)}×**; cost of the full ring: **${mb(f - e)} MB** (${Math.round((f - e) / RING)} bytes per flow).
- Goal: full agent ≤ 150 MB RSS: **${f <= 150 * 2 ** 20 ? 'met' : 'not met'}** (${mb(f)} MB). Kernel maps and the 8 MiB ring buffer are kernel memory, not RSS.

Command: \`pnpm exec tsx --conditions=@flowctl/source bench/agent-memory.ts\``;
  writeSection('agent-memory', md);
  console.log(md);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
