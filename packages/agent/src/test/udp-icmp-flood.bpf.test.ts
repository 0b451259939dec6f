// Real UDP and ICMP floods (hping3 --flood --udp / --icmp, 5 s each, from one address and from random
// ones) at a pod running nginx and dnsmasq, while a client makes 50 HTTP requests and 20 DNS lookups:
// every request and every lookup dnsmasq logged appears as a flow, the flood is summed in summary
// flows (UDP, ICMP; the pod's kernel drops of it too) whose counts add up to the kernel's counter,
// the kernel ring loses (almost) nothing and the agent stays under 200 MB.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { suppressedNumbers, type Flow } from '@flowctl/flow';
import { SynFloodLab, type FloodOptions, type Phase } from './syn-flood-lab.js';

const skip = process.getuid?.() !== 0 ? 'not root' : undefined;
if (skip) process.stderr.write(`\n!!! SKIPPING udp-icmp-flood.bpf.test.ts: ${skip} !!!\n\n`);

const REQUESTS = 50;
const LOOKUPS = 20;
const FLOOD_S = 5;
const MB = 2 ** 20;

let lab: SynFloodLab;

/** New-flow summaries of one protocol (kernel-drop summaries apart). */
function summaries(flows: Flow[], proto: 'UDP' | 'ICMPv4', events = 'new-connection') {
  return flows.flatMap((f) => {
    const n = suppressedNumbers(f);
    return n?.events === events && f.l4?.[proto] ? [{ f, n }] : [];
  });
}

async function phase(randSource: boolean, hping: string[]): Promise<{ p: Phase; flows: Flow[] }> {
  const o: FloodOptions = { hping, lookups: LOOKUPS };
  const p = await lab.flood(FLOOD_S, randSource, REQUESTS, o);
  // The last window's summary comes a second after its first suppressed packet.
  await new Promise((r) => setTimeout(r, 2500));
  const flows = await lab.flows();
  expect(p.sent).toBeGreaterThan(1000);
  // HTTP: every request succeeded and is a flow (by the client port nginx logged).
  expect(p.ok).toBe(REQUESTS);
  const ports = new Set(flows.filter((f) => f.IP?.source === lab.client.ip && f.l4?.TCP?.destination_port === 80).map((f) => f.l4!.TCP!.source_port));
  expect(p.served.filter((port) => !ports.has(port))).toEqual([]);
  expect(p.served).toHaveLength(REQUESTS);
  // DNS: every lookup was answered, dnsmasq logged it, and it is a DNS flow of the client.
  expect(p.answered).toBe(LOOKUPS);
  expect(p.logged).toEqual(p.names);
  const queried = new Set(flows.filter((f) => f.IP?.source === lab.client.ip && f.l7?.dns).map((f) => f.l7!.dns!.query));
  expect(p.names.filter((n) => !queried.has(`${n}.`))).toEqual([]);
  // Nothing lost silently: the new-flow summaries add up to the kernel's counter (but for windows
  // still open when read), and the rings and the agent lost (almost) nothing.
  const all = flows.flatMap((f) => (suppressedNumbers(f)?.events === 'new-connection' ? [suppressedNumbers(f)!.packets] : []));
  const summed = all.reduce((s, n) => s + n, 0);
  const counter = await lab.metric('flowctl_agent_datapath_stats_total', 'name="connSuppressed"');
  expect(summed).toBeLessThanOrEqual(counter);
  expect(counter - summed).toBeLessThan(Math.max(200, counter * 0.001));
  expect(await lab.metric('flowctl_agent_datapath_stats_total', 'name="ringbufFull"')).toBeLessThan(p.sent * 0.001);
  expect(await lab.metric('flowctl_agent_lost_events_total')).toBeLessThan(p.sent * 0.001);
  return { p, flows };
}

describe.skipIf(skip)('UDP and ICMP floods at a pod (real kernel, hping3, dnsmasq)', () => {
  beforeAll(async () => {
    lab = new SynFloodLab('udp');
    await lab.startDns();
    await lab.startAgent();
  }, 120_000);

  afterAll(async () => {
    await lab?.stopAgent();
    lab?.close();
  });

  it('UDP at port 53 from one source: requests and lookups all seen; the flood is one DNS summary per second', async () => {
    const before = await lab.metric('flowctl_agent_datapath_stats_total', 'name="connSuppressed"');
    const { p, flows } = await phase(false, ['--udp', '-p', '53']);
    const sums = summaries(flows, 'UDP').filter(({ f }) => f.IP?.source === lab.attacker.ip);
    expect(sums.length).toBeGreaterThanOrEqual(FLOOD_S - 1);
    expect(sums.every(({ f, n }) => f.IP?.destination === lab.web.ip && f.l4?.UDP?.destination_port === 53 && n.sources === 'one')).toBe(true);
    expect(sums[0]!.f.Summary).toMatch(/^\d+ UDP packets from 10\.203\.26\.30 to 10\.203\.26\.10:53 in the last [\d.]+s: events suppressed/);
    // DNS's budget (1,000/s, burst 1,000) admits at most that many of the flood's packets.
    const suppressed = (await lab.metric('flowctl_agent_datapath_stats_total', 'name="connSuppressed"')) - before;
    expect(suppressed).toBeGreaterThan(p.sent * 0.8 - 1_000 * (FLOOD_S + 2));
  }, 60_000);

  it('UDP at a closed port from random sources: seen as many sources; the pod\'s kernel drops are summed too', async () => {
    const before = (await lab.flows()).length;
    const kdrop0 = await lab.metric('flowctl_agent_datapath_stats_total', 'name="kdropSuppressed"');
    const { p, flows } = await phase(true, ['--udp', '-p', '9999']);
    const many = summaries(flows, 'UDP').filter(({ n }) => n.sources === 'many');
    expect(many.length).toBeGreaterThanOrEqual(FLOOD_S - 1);
    expect(many.at(-1)!.f.Summary).toMatch(/UDP packets from many sources \(last [\d.]+\) to 10\.203\.26\.10:9999/);
    // Nothing listens at 9999: the pod's kernel drops each packet (NO_SOCKET), budgeted per source as well.
    expect((await lab.metric('flowctl_agent_datapath_stats_total', 'name="kdropSuppressed"')) - kdrop0).toBeGreaterThan(p.sent * 0.5);
    expect(summaries(flows, 'UDP', 'kernel-drop').length).toBeGreaterThanOrEqual(1);
    // Bounded: what the budgets admit, not one flow per packet.
    expect(flows.length - before).toBeLessThan(p.sent * 0.15);
  }, 60_000);

  it('ICMP from random sources: seen as many sources; from one source: one flow, nothing lost', async () => {
    const { p, flows } = await phase(true, ['--icmp']);
    const many = summaries(flows, 'ICMPv4').filter(({ n }) => n.sources === 'many');
    expect(many.length).toBeGreaterThanOrEqual(FLOOD_S - 1);
    expect(many.at(-1)!.f.Summary).toMatch(/^\d+ ICMPv4 EchoRequest packets from many sources \(last [\d.]+\) to 10\.203\.26\.10 in the last/);
    expect(many.reduce((s, { n }) => s + n.packets, 0)).toBeGreaterThan(p.sent * 0.5);
    // One source pings with one id: one connection entry, so nothing to suppress and nothing lost.
    await phase(false, ['--icmp']);
  }, 60_000);

  it('after the floods: agent RSS under 200 MB, connection tables not full', async () => {
    expect(lab.agentPeakRss()).toBeLessThan(200 * MB);
    expect(await lab.metric('flowctl_agent_bpf_map_entries', 'map="flows4"')).toBeLessThan(1000);
    expect(await lab.metric('flowctl_agent_bpf_map_entries', 'map="conns4"')).toBeLessThan(20_000);
  });
});
