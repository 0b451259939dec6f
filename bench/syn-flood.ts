// Agent RSS and event loss under a 10-second flood (hping3 --flood -S at a pod, from one address and
// from random ones; hping3 --flood --udp at a closed port of it) while a client makes 50 HTTP
// requests, with the per-source budgets of new-flow events (the default) and without them
// (--conn-budget 0). Each run has a fresh
// agent process, so its peak RSS (VmHWM) is that run's. The scenario is the e2e test's
// (packages/agent/src/test/syn-flood-lab.ts). Root; nginx, hping3, curl.
// Run: pnpm exec tsx --conditions=@flowctl/source bench/syn-flood.ts [--seconds 10]
import { loadavg } from 'node:os';
import { suppressedNumbers } from '../packages/flow/src/suppressed.js';
import { SynFloodLab } from '../packages/agent/src/test/syn-flood-lab.js';
import { progress, writeSection } from './lib/report.js';

const SECONDS = Number(process.argv[process.argv.indexOf('--seconds') + 1] ?? 10) || 10;
const REQUESTS = 50;

/** The floods: hping3's arguments and whether from random sources. */
const FLOODS = [
  { mode: 'SYN, one source', hping: ['-S', '-p', '80'], randSource: false },
  { mode: 'SYN, random sources', hping: ['-S', '-p', '80'], randSource: true },
  { mode: 'UDP at a closed port, one source', hping: ['--udp', '-p', '9999'], randSource: false },
] as const;

interface Row { mode: string; budgets: boolean; sent: number; rssMb: number; kernelLost: number; agentLost: number; flows: number; seen: number; ok: number; suppressed: number; summaries: number }

async function once(lab: SynFloodLab, flood: (typeof FLOODS)[number], budgets: boolean): Promise<Row> {
  await lab.startAgent(budgets ? [] : ['--conn-budget', '0']);
  try {
    const p = await lab.flood(SECONDS, flood.randSource, REQUESTS, { hping: [...flood.hping] });
    await new Promise((r) => setTimeout(r, 3000));
    const flows = await lab.flows();
    const ports = new Set(flows.filter((f) => f.IP?.source === lab.client.ip && f.l4?.TCP?.destination_port === 80).map((f) => f.l4!.TCP!.source_port));
    return {
      mode: flood.mode,
      budgets,
      sent: p.sent,
      rssMb: lab.agentPeakRss() / 2 ** 20,
      kernelLost: await lab.metric('flowctl_agent_datapath_stats_total', 'name="ringbufFull"'),
      agentLost: await lab.metric('flowctl_agent_lost_events_total', 'stage="agent_queue"') + await lab.metric('flowctl_agent_lost_events_total', 'stage="hubble_ring"'),
      flows: flows.length,
      seen: p.served.filter((port) => ports.has(port)).length,
      ok: p.ok,
      suppressed: await lab.metric('flowctl_agent_datapath_stats_total', 'name="connSuppressed"') + await lab.metric('flowctl_agent_datapath_stats_total', 'name="kdropSuppressed"'),
      summaries: flows.filter((f) => suppressedNumbers(f)).length,
    };
  } finally {
    await lab.stopAgent();
  }
}

async function main(): Promise<void> {
  const lab = new SynFloodLab('bench');
  const rows: Row[] = [];
  const load0 = loadavg()[0]!;
  try {
    for (const flood of FLOODS) {
      for (const budgets of [true, false]) {
        progress(`${flood.mode}, budgets ${budgets ? 'on' : 'off'}`);
        rows.push(await once(lab, flood, budgets));
      }
    }
  } finally {
    lab.close();
  }
  const load1 = loadavg()[0]!;
  const n = (x: number) => Math.round(x).toLocaleString('en-US');
  const md = `## SYN and UDP floods: agent memory and event loss (\`bench/syn-flood.ts\`)

\`hping3 --flood -S\` at a pod's port 80 (nginx) for ${SECONDS} s, from one address and from random ones (\`--rand-source\`),
and \`hping3 --flood --udp\` at a port nothing listens on (each packet a new flow, a kernel drop and an ICMP error),
while a client pod makes ${REQUESTS} concurrent HTTP requests (started after 1 s of flood); the real agent process
(ring of 65,535 flows) with the per-source budgets of new-flow events (default: 100/s, burst 1,000 per
source, interface and kind of flow) and without them (\`--conn-budget 0\`). Fresh agent per run; peak RSS is its VmHWM.
"Lost" is what the kernel rings could not queue (\`ringbufFull\`, all rings) and what the agent's queue and
flow ring dropped (\`lost_events_total\`, stages agent_queue and hubble_ring). "Suppressed" counts new-flow
packets and kernel drops over budget (\`connSuppressed\` + \`kdropSuppressed\`), summed in the summary flows. One run per row.

| flood | budgets | packets sent | agent peak RSS | lost in kernel | lost in agent | flows in ring | requests OK / seen as flows | suppressed (summary flows) |
|---|---|---:|---:|---:|---:|---:|---:|---:|
${rows.map((r) => `| ${r.mode} | ${r.budgets ? 'on' : 'off'} | ${n(r.sent)} | ${r.rssMb.toFixed(0)} MB | ${n(r.kernelLost)} | ${n(r.agentLost)} | ${n(r.flows)} | ${r.ok} / ${r.seen} of ${REQUESTS} | ${n(r.suppressed)} (${r.summaries}) |`).join('\n')}

Goal: agent RSS ≤ 200 MB under a flood and every legitimate request seen: with budgets, ${rows.filter((r) => r.budgets).every((r) => r.rssMb <= 200 && r.seen === REQUESTS) ? '**met**' : '**not met**'}.
Load average ${load0.toFixed(1)} at the start, ${load1.toFixed(1)} at the end; hping3's rate, and so the flood's size, depends on it.

Command: \`pnpm exec tsx --conditions=@flowctl/source bench/syn-flood.ts --seconds ${SECONDS}\` (root; nginx, hping3; after \`make build\`)`;
  writeSection('syn-flood', md);
  console.log(md);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
