// Detection costs: (1) what running every registered detector on a flow adds to the agent's path
// (ring write with vs without Detection.observe in front of it, same run, same flows); (2) the
// memory the detectors' state holds under a 65,535-port scan and a SYN flood from 10,000 spoofed
// sources, and that it stays bounded past them.
//
//   pnpm exec tsx --conditions=@flowctl/source bench/detect.ts   (env ROUNDS)
import v8 from 'node:v8';
import vm from 'node:vm';
import { loadavg } from 'node:os';
import { DropReason, FlowType, TraceObservationPoint, Verdict, type Flow } from '../packages/flow/src/index.js';
import { makeCorpus } from '../packages/flow/src/testing/corpus.js';
import { Detection } from '../packages/agent/src/detect/index.js';
import { Agent } from '../packages/agent/src/agent.js';
import { FakeDatapath } from '../packages/agent/src/testing/fake-datapath.js';
import { median, progress, writeSection } from './lib/report.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

const ROUNDS = Number(process.env.ROUNDS ?? 15);
const N = 20_000;
// Passes over the flows per round: CPU time is counted in scheduler ticks (4 ms here), so a round
// must last a few hundred milliseconds for a per-flow figure to mean anything.
const PASSES = 20;
const ctx = { nodeName: 'bench', isLocalIp: (ip: string) => ip.startsWith('10.') };

function cpu(fn: () => void): number {
  const c0 = process.cpuUsage();
  fn();
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / 1e6;
}

// The corpus's realistic mix (HTTP, DNS, drops, SOCK records), plus one failed connection attempt
// in 20 (a SYN and its RST) so the scan and flood paths are exercised too.
const flows: Flow[] = makeCorpus(N, 5).flatMap((r) => (r.flow ? [r.flow] : []));
for (let i = 0; i < flows.length; i += 20) {
  const port = 1 + (i % 4000);
  flows[i] = {
    Type: FlowType.L3_L4, verdict: Verdict.FORWARDED, is_reply: false, trace_observation_point: TraceObservationPoint.FROM_ENDPOINT,
    IP: { source: `10.1.0.${i % 50}`, destination: '10.2.0.9' }, l4: { TCP: { source_port: 40000, destination_port: port, flags: { SYN: true } } },
  };
  if (i + 1 < flows.length) {
    flows[i + 1] = {
      Type: FlowType.L3_L4, verdict: Verdict.FORWARDED, is_reply: true, trace_observation_point: TraceObservationPoint.TO_ENDPOINT,
      IP: { source: '10.2.0.9', destination: `10.1.0.${i % 50}` }, l4: { TCP: { source_port: port, destination_port: 40000, flags: { RST: true, ACK: true } } },
    };
  }
}

/** The agent's own per-flow path (service map, detection, ring) with detection on and off. */
function perFlow(): { base: number; withDetect: number; detectors: string[] } {
  const log = { info() {}, warn() {}, error() {} };
  const off = new Agent({ nodeName: 'bench', datapath: new FakeDatapath(), metricsAddress: '', detectOff: true, log });
  const on = new Agent({ nodeName: 'bench', datapath: new FakeDatapath(), metricsAddress: '', log });
  // writeFlow is where the parser's flows enter the agent (private: the bench drives it directly).
  const writeOff = (off as unknown as { writeFlow(f: Flow): void }).writeFlow.bind(off);
  const writeOn = (on as unknown as { writeFlow(f: Flow): void }).writeFlow.bind(on);
  const base: number[] = [];
  const withDetect: number[] = [];
  for (let r = 0; r < ROUNDS + 3; r++) {
    const b = cpu(() => { for (let k = 0; k < PASSES; k++) for (const f of flows) writeOff(f); });
    const w = cpu(() => { for (let k = 0; k < PASSES; k++) for (const f of flows) writeOn(f); });
    if (r >= 3) {
      base.push((b * 1e9) / (PASSES * flows.length));
      withDetect.push((w * 1e9) / (PASSES * flows.length));
    }
  }
  const names = on.detection!.detectors.map((x) => x.name);
  on.detection!.close();
  return { base: median(base), withDetect: median(withDetect), detectors: names };
}

interface StateFigure { what: string; flows: number; heapMb: number; entries: string; alerts: number }

/** Heap held by a fresh Detection after `feed`, against an empty one (after a full GC each). */
function state(what: string, feed: (d: Detection) => number): StateFigure {
  gc();
  const before = process.memoryUsage().heapUsed;
  const d = new Detection(ctx);
  const n = feed(d);
  d.tick(Date.now() + 60_000);
  gc();
  const heapMb = (process.memoryUsage().heapUsed - before) / 2 ** 20;
  const entries = d.detectors.map((x) => `${x.name} ${x.stateSize()}`).join(', ');
  const alerts = d.store.size;
  d.close();
  return { what, flows: n, heapMb, entries, alerts };
}

const rstFrom = (host: string, scanner: string, port: number): Flow => ({
  Type: FlowType.L3_L4, verdict: Verdict.FORWARDED, is_reply: true, trace_observation_point: TraceObservationPoint.TO_ENDPOINT,
  IP: { source: host, destination: scanner }, l4: { TCP: { source_port: port, destination_port: 40000, flags: { RST: true, ACK: true } } },
});
const synFrom = (src: string, dst: string, sport: number, dport: number): Flow => ({
  Type: FlowType.L3_L4, verdict: Verdict.FORWARDED, is_reply: false, trace_observation_point: TraceObservationPoint.TO_ENDPOINT,
  IP: { source: src, destination: dst }, l4: { TCP: { source_port: sport, destination_port: dport, flags: { SYN: true } } },
});
const denied = (src: string, dst: string, port: number): Flow => ({
  Type: FlowType.L3_L4, verdict: Verdict.DROPPED, drop_reason_desc: DropReason.POLICY_DENIED, is_reply: false,
  IP: { source: src, destination: dst }, l4: { TCP: { source_port: 40000, destination_port: port, flags: { SYN: true } } },
});

function main(): void {
  progress(`per-flow cost: ${flows.length} flows, ${ROUNDS} rounds`);
  const p = perFlow();
  progress('state under a scan and a flood');
  const t0 = Date.now();
  const figures = [
    state('`nmap -sS -p-` from one pod: 65,535 ports of one host refused (SYN + RST each)', (d) => {
      for (let port = 1; port <= 65_535; port++) {
        d.observe(synFrom('10.1.0.66', '10.2.0.10', 40000, port), t0 + port / 10);
        d.observe(rstFrom('10.2.0.10', '10.1.0.66', port), t0 + port / 10);
      }
      return 2 * 65_535;
    }),
    state('the same scan at 64 hosts at once, denied by policy (4.2 M failed attempts)', (d) => {
      let n = 0;
      for (let port = 1; port <= 65_535; port++) {
        for (let h = 0; h < 64; h++, n++) d.observe(denied('10.1.0.66', `10.2.1.${h}`, port), t0 + n / 1000);
      }
      return n;
    }),
    state('`hping3 --flood -S --rand-source`: 10,000 spoofed sources, 10 SYNs each, at one port', (d) => {
      let n = 0;
      for (let r = 0; r < 10; r++) {
        for (let s = 0; s < 10_000; s++, n++) d.observe(synFrom(`198.18.${s >> 8}.${s & 255}`, '10.2.0.10', 1024 + r, 8080), t0 + n / 50);
      }
      return n;
    }),
    state('the same flood from 1,000,000 spoofed sources (past every bound)', (d) => {
      let n = 0;
      for (let s = 0; s < 1_000_000; s++, n++) d.observe(synFrom(`198.${18 + (s >> 16)}.${(s >> 8) & 255}.${s & 255}`, '10.2.0.10', 1024, 8080), t0 + n / 50);
      return n;
    }),
  ];
  const cost = p.withDetect - p.base;
  const [l1, l5, l15] = loadavg();
  const md = `## Detection (\`bench/detect.ts\`)

\`pnpm exec tsx --conditions=@flowctl/source bench/detect.ts\`

Cost in the agent: ${flows.length.toLocaleString('en-US')} flows (the corpus's mix, one flow in ten a refused SYN or
its RST), ${PASSES} passes per round, through the agent's own per-flow path (\`Agent.writeFlow\`: service
map, detection, flow ring) of two agents in the same process, one with detection off
(\`detectOff\`) and one running every registered detector (${p.detectors.join(', ')}); CPU time, median
of ${ROUNDS} rounds, same run. Detection reads the fields the service map has just read, so it
pays for them in cache, not in memory, as in the agent. No \`--blocklist\` file is loaded (the
lookup cost of a million-entry list is in the blocklist section).

| path | ns per flow |
|---|---|
| agent path, detection off (baseline) | ${p.base.toFixed(0)} |
| agent path, detection on | ${p.withDetect.toFixed(0)} |
| **detection cost** | **${cost.toFixed(0)}** (goal ≤ 1,000) |

State held (heap after a full GC, against an empty detection) after feeding synthetic flows shaped
as the agent parses them:

| traffic | flows | heap | state entries | alerts |
|---|---|---|---|---|
${figures.map((f) => `| ${f.what} | ${f.flows.toLocaleString('en-US')} | ${f.heapMb.toFixed(1)} MiB | ${f.entries} | ${f.alerts} |`).join('\n')}

Load average during the run: ${l1!.toFixed(1)} / ${l5!.toFixed(1)} / ${l15!.toFixed(1)} on 2 cores (shared with other work: the ns figures are noisy).
`;
  writeSection('detect', md);
  progress(md);
}

main();
