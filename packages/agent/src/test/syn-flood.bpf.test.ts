// A real SYN flood (hping3 --flood -S, 5 s from one address, then from random ones) at a pod while a
// client makes 50 ordinary HTTP requests: every request succeeds and appears as a flow, the flood
// is summed in summary flows whose counts match the kernel's counter, the agent stays under 200 MB,
// the kernel ring loses (almost) nothing, and the connection tables do not fill. With
// --syn-flood-protect the flood's SYNs are dropped and counted, and the requests still succeed; with
// --xdp-interface on the attacker's link too, they are dropped there, at XDP, and summed per source
// (one, then random ones), while a keep-alive connection the attacker opened before keeps working.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DropReason, Verdict, suppressedNumbers, type Flow } from '@flowctl/flow';
import { SynFloodLab, type Phase } from './syn-flood-lab.js';

const skip = process.getuid?.() !== 0 ? 'not root' : undefined;
if (skip) process.stderr.write(`\n!!! SKIPPING syn-flood.bpf.test.ts: ${skip} !!!\n\n`);

const REQUESTS = 50;
const FLOOD_S = 5;
const MB = 2 ** 20;

let lab: SynFloodLab;

/** Flows of the client's connections to the web pod, by client port. */
function clientPorts(flows: Flow[]): Set<number> {
  return new Set(flows.filter((f) => f.IP?.source === lab.client.ip && f.l4?.TCP?.destination_port === 80).map((f) => f.l4!.TCP!.source_port ?? 0));
}

/** Summary flows of suppressed new-connection packets (kernel-drop summaries are counted apart). */
function summaries(flows: Flow[]) {
  return flows.flatMap((f) => {
    const n = suppressedNumbers(f);
    return n?.events === 'new-connection' ? [{ f, n }] : [];
  });
}

/** The summaries add up to the kernel's counter, but for windows still open when read: the pod
 * retransmits SYN-ACKs to the flood's half-open attempts for a minute after it. */
function addsUp(summed: number, counter: number): void {
  expect(summed).toBeLessThanOrEqual(counter);
  expect(counter - summed).toBeLessThan(Math.max(200, counter * 0.001));
}

async function settle(): Promise<Flow[]> {
  // The last window's summary comes a second after its first suppressed packet.
  await new Promise((r) => setTimeout(r, 2500));
  return lab.flows();
}

function checkPhase(p: Phase, flows: Flow[]): void {
  expect(p.sent).toBeGreaterThan(1000);
  expect(p.ok).toBe(REQUESTS);
  expect(p.served).toHaveLength(REQUESTS);
  const seen = clientPorts(flows);
  expect(p.served.filter((port) => !seen.has(port))).toEqual([]);
}

describe.skipIf(skip)('SYN flood at a pod (real kernel, hping3)', () => {
  beforeAll(async () => {
    lab = new SynFloodLab();
    await lab.startAgent();
  }, 120_000);

  afterAll(async () => {
    await lab?.stopAgent();
    lab?.close();
  });

  it('one source: all 50 requests succeed and are flows; the flood is one summary per second; nothing lost', async () => {
    const p = await lab.flood(FLOOD_S, false, REQUESTS);
    const flows = await settle();
    checkPhase(p, flows);
    const sums = summaries(flows);
    expect(sums.length).toBeGreaterThanOrEqual(FLOOD_S - 1);
    expect(sums.every(({ f, n }) => f.IP?.source === lab.attacker.ip && f.IP?.destination === lab.web.ip && n.sources === 'one')).toBe(true);
    expect(sums[0]!.f.Summary).toMatch(new RegExp(`^\\d+ SYNs from ${lab.attacker.ip.replace(/\./g, '\\.')} to ${lab.web.ip.replace(/\./g, '\\.')}:80 in the last 1\\.\\ds`));
    expect(sums[0]!.f.destination?.pod_name).toBe('web-0');
    // Nothing is lost silently: the summaries add up to the kernel's counter of suppressed packets.
    const suppressed = await lab.metric('flowctl_agent_datapath_stats_total', 'name="connSuppressed"');
    expect(suppressed).toBeGreaterThan(p.sent * 0.9);
    addsUp(sums.reduce((s, { n }) => s + n.packets, 0), suppressed);
    expect(await lab.metric('flowctl_agent_datapath_stats_total', 'name="ringbufFull"')).toBeLessThan(p.sent * 0.001);
    expect(await lab.metric('flowctl_agent_lost_events_total')).toBeLessThan(p.sent * 0.001);
  }, 60_000);

  it('random sources: all 50 requests succeed and are flows; the flood is summed as many sources', async () => {
    const before = (await lab.flows()).length;
    const p = await lab.flood(FLOOD_S, true, REQUESTS);
    const flows = await settle();
    checkPhase(p, flows);
    const many = summaries(flows).filter(({ n }) => n.sources === 'many');
    expect(many.length).toBeGreaterThanOrEqual(FLOOD_S - 1);
    expect(many[0]!.f.Summary).toMatch(/SYNs from many sources \(last [\d.]+\) to /);
    const suppressed = await lab.metric('flowctl_agent_datapath_stats_total', 'name="connSuppressed"');
    addsUp(summaries(flows).reduce((s, { n }) => s + n.packets, 0), suppressed);
    expect(await lab.metric('flowctl_agent_lost_events_total')).toBeLessThan(p.sent * 0.001);
    // The pod's kernel drops the SYN-ACKs to spoofed addresses: those drops are budgeted too.
    expect(await lab.metric('flowctl_agent_datapath_stats_total', 'name="kdropSuppressed"')).toBeGreaterThan(p.sent * 0.5);
    expect(flows.filter((f) => suppressedNumbers(f)?.events === 'kernel-drop').length).toBeGreaterThanOrEqual(1);
    // Bounded: what the budgets admit (100 new sources a second, each with its answers), not one per SYN.
    expect(flows.length - before).toBeLessThan(p.sent * 0.15);
  }, 60_000);

  it('after both floods: agent RSS under 200 MB, connection tables not full', async () => {
    expect(lab.agentPeakRss()).toBeLessThan(200 * MB);
    expect(await lab.metric('flowctl_agent_bpf_map_entries', 'map="flows4"')).toBeLessThan(1000);
    expect(await lab.metric('flowctl_agent_bpf_map_entries', 'map="conns4"')).toBeLessThan(5000);
  });

  it('--syn-flood-protect: the flood\'s SYNs are dropped and counted, the 50 requests still succeed and are flows', async () => {
    await lab.stopAgent();
    await lab.startAgent(['--syn-flood-protect']);
    const p = await lab.flood(FLOOD_S, false, REQUESTS);
    const flows = await settle();
    checkPhase(p, flows);
    const dropped = await lab.metric('flowctl_agent_datapath_stats_total', 'name="synFloodDropped"');
    expect(dropped).toBeGreaterThan(p.sent * 0.8);
    const sums = summaries(flows);
    expect(sums.some(({ f }) => f.verdict === Verdict.DROPPED && f.drop_reason_desc === DropReason.DROP_RATE_LIMITED)).toBe(true);
    addsUp(sums.reduce((s, { n }) => s + n.dropped, 0), dropped);
    expect(lab.agentPeakRss()).toBeLessThan(200 * MB);
  }, 90_000);

  it('--syn-flood-protect with --xdp-interface: the SYNs are dropped at XDP on that link, summed per source; established traffic is untouched', async () => {
    await lab.stopAgent();
    await lab.startAgent(['--syn-flood-protect', '--xdp-interface', lab.attacker.hostIf]);
    expect(lab.log).toMatch(new RegExp(`${lab.attacker.hostIf}.*(native|generic)`));
    const established = lab.keepAlive(FLOOD_S + 2);
    const p = await lab.flood(FLOOD_S, false, REQUESTS);
    const flows = await settle();
    checkPhase(p, flows);
    // The attacker's connection opened before the flood served every request, on one connection
    // (slowly: its packets share the link, and the veth's queue, with the flood).
    const ka = await established;
    expect(ka).toMatchObject({ failed: 0, ports: [expect.any(Number)] });
    expect(ka.ok).toBeGreaterThanOrEqual(3);
    const dropped = await lab.metric('flowctl_agent_datapath_stats_total', 'name="xdpSynFloodDropped"');
    expect(dropped).toBeGreaterThan(p.sent * 0.8);
    // Dropped at XDP, so TC never saw them.
    expect(await lab.metric('flowctl_agent_datapath_stats_total', 'name="synFloodDropped"')).toBeLessThan(p.sent * 0.01);
    const xdp = summaries(flows).filter(({ f }) => f.interface?.name === lab.attacker.hostIf);
    expect(xdp.length).toBeGreaterThanOrEqual(FLOOD_S - 1);
    expect(xdp.every(({ f, n }) => f.verdict === Verdict.DROPPED && f.drop_reason_desc === DropReason.DROP_RATE_LIMITED &&
      f.IP?.source === lab.attacker.ip && n.sources === 'one' && n.dropped === n.syns)).toBe(true);
    expect(xdp[0]!.f.Summary).toMatch(/^\d+ SYNs from 10\.203\.26\.30 to 10\.203\.26\.10:80 in the last [\d.]+s: dropped at XDP by --syn-flood-protect/);
    addsUp(xdp.reduce((s, { n }) => s + n.dropped, 0), dropped);
    expect(lab.agentPeakRss()).toBeLessThan(200 * MB);
  }, 90_000);

  it('--syn-flood-protect at XDP, random sources: dropped there too, summed as many sources', async () => {
    const before = await lab.metric('flowctl_agent_datapath_stats_total', 'name="xdpSynFloodDropped"');
    const p = await lab.flood(FLOOD_S, true, REQUESTS);
    const flows = await settle();
    checkPhase(p, flows);
    const dropped = (await lab.metric('flowctl_agent_datapath_stats_total', 'name="xdpSynFloodDropped"')) - before;
    expect(dropped).toBeGreaterThan(p.sent * 0.8);
    const many = summaries(flows).filter(({ f, n }) => f.interface?.name === lab.attacker.hostIf && n.sources === 'many');
    expect(many.length).toBeGreaterThanOrEqual(FLOOD_S - 1);
    expect(many.at(-1)!.f.Summary).toMatch(/SYNs from many sources \(last [\d.]+\) to 10\.203\.26\.10:80 .*: dropped at XDP/);
    expect(lab.agentPeakRss()).toBeLessThan(200 * MB);
  }, 90_000);
});
