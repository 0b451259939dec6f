// Loads bpf/.output/flowctl.bpf.o through bpf-loader with chosen knobs, runs crafted packets
// through BPF_PROG_TEST_RUN and collects the decoded events. Shared by the datapath tests and
// bench/bpf-cost.ts.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { BpfObject, forEachRecord, probeFeatures, type RingBuffer } from '../../addon/lib/index.js';
import { decodeEvent, readCounters, type CounterName } from '../../packages/agent/src/datapath/abi.js';
import type { FlowEvent, SuppressedEvent } from '../../packages/agent/src/datapath/events.js';
import { PolicyMapWriter, type PolicyMaps } from '../../packages/agent/src/datapath/policy-maps.js';

export const objectPath = fileURLToPath(new URL('../.output/flowctl.bpf.o', import.meta.url));

export const TC_ACT_OK = 0;
export const TC_ACT_SHOT = 2;

/** Why the kernel tests cannot run, or undefined. Only a refusal by the kernel is a reason to skip. */
export function skipReason(): string | undefined {
  if (!existsSync(objectPath)) throw new Error(`${objectPath} is missing: run make -C bpf`);
  const f = probeFeatures();
  if (f.privileged) return undefined;
  const reason = `kernel refuses BPF to this process (${f.privilegeError ?? 'no CAP_BPF/CAP_SYS_ADMIN'})`;
  console.warn(`\n*** SKIPPING flowctl datapath kernel tests: ${reason} ***\n`);
  return reason;
}

export interface Knobs {
  maxPayload?: number;
  everyPacket?: boolean;
  statsIntervalNs?: bigint;
  policyAudit?: boolean;
  /** New-connection budgets (budget.bpf.h); none unless given, as tests send many SYNs from one address. */
  budget?: { intervalNs: bigint; burst: number; reportNs?: bigint; synProtectHalfopen?: number; dnsIntervalNs?: bigint };
  /** toFQDNs minimum TTL in seconds (default 3600). */
  fqdnMinTtlS?: number;
}

export class Datapath {
  readonly obj: BpfObject;
  readonly events: FlowEvent[] = [];
  /** Summaries of suppressed new-connection packets, as their timers send them. */
  readonly summaries: SuppressedEvent[] = [];
  private readonly ring: RingBuffer;

  constructor(knobs: Knobs = {}) {
    this.obj = BpfObject.open(objectPath, { name: 'flowctl' });
    try {
      if (knobs.maxPayload !== undefined) this.obj.setRodata('max_payload', knobs.maxPayload);
      this.obj.setRodata('every_packet', knobs.everyPacket ? 1 : 0);
      // Tests control time-based events explicitly: none unless asked for.
      this.obj.setRodata('stats_interval_ns', knobs.statsIntervalNs ?? 0n);
      this.obj.setRodata('policy_audit', knobs.policyAudit ? 1 : 0);
      this.obj.setRodata('budget_interval_ns', knobs.budget?.intervalNs ?? 0n);
      if (knobs.budget) this.obj.setRodata('budget_burst', knobs.budget.burst);
      if (knobs.budget) this.obj.setRodata('budget_dns_interval_ns', knobs.budget.dnsIntervalNs ?? knobs.budget.intervalNs);
      if (knobs.budget?.reportNs !== undefined) this.obj.setRodata('budget_report_ns', knobs.budget.reportNs);
      if (knobs.budget?.synProtectHalfopen !== undefined) this.obj.setRodata('syn_protect_halfopen', knobs.budget.synProtectHalfopen);
      if (knobs.fqdnMinTtlS !== undefined) this.obj.setRodata('fqdn_min_ttl_s', knobs.fqdnMinTtlS);
      this.obj.setMaxEntries('events', 1 << 20);
      this.obj.load();
      this.ring = this.obj.ringBuffer('events', (batch, count) =>
        forEachRecord(batch, count, (buf, off, len) => {
          const ev = decodeEvent(buf, off, len);
          if (ev.kind === 'suppressed') this.summaries.push(ev);
          else this.events.push(ev);
        }),
      );
    } catch (err) {
      this.obj.close();
      throw err;
    }
  }

  get maps(): PolicyMaps {
    return {
      ipcache: this.obj.map('ipcache'),
      policyEnforce: this.obj.map('policy_enforce'),
      policy: this.obj.map('policy'),
      config: this.obj.map('config'),
      fqdn: { names: this.obj.map('fqdn_names'), ips: this.obj.map('fqdn_ips'), peers: this.obj.map('fqdn_peers'), globs: this.obj.map('fqdn_globs') },
    };
  }

  private policyWriter: PolicyMapWriter | undefined;

  /** Writes policies and identities as the agent does (one writer per map set). */
  get writer(): PolicyMapWriter {
    return (this.policyWriter ??= new PolicyMapWriter(this.maps));
  }

  /** The `counters` map summed over CPUs. */
  counters(): Record<CounterName, bigint> {
    const m = this.obj.map('counters');
    return readCounters((k) => m.lookup(k));
  }

  /**
   * Runs one packet through a program ('from' = TC ingress = from the endpoint, 'to' = TC egress),
   * `repeat` times back to back in the kernel, and waits for exactly the events the kernel counted
   * as written. The retval is that of the last run.
   */
  async run(dir: 'from' | 'to', data: Buffer, repeat = 1): Promise<{ retval: number; events: FlowEvent[] }> {
    const before = this.counters().events;
    const n0 = this.events.length;
    const prog = this.obj.program(dir === 'from' ? 'flowctl_tc_ingress' : 'flowctl_tc_egress');
    const r = prog.testRun({ data, repeat });
    const want = n0 + Number(this.counters().events - before);
    const deadline = Date.now() + 2000;
    while (this.events.length < want) {
      if (Date.now() > deadline) throw new Error(`ring delivered ${this.events.length - n0} of ${want - n0} events`);
      await new Promise((res) => setTimeout(res, 1));
    }
    return { retval: r.retval, events: this.events.slice(n0) };
  }

  /** Runs `n` packets one after another, the i-th made by `make(i)` (distinct sequence numbers:
   * the same TCP payload again is a retransmission, which sends nothing); their events together. */
  async runEach(dir: 'from' | 'to', n: number, make: (i: number) => Buffer): Promise<{ retval: number; events: FlowEvent[] }> {
    const out: { retval: number; events: FlowEvent[] } = { retval: 0, events: [] };
    for (let i = 0; i < n; i++) {
      const r = await this.run(dir, make(i));
      out.retval = r.retval;
      out.events.push(...r.events);
    }
    return out;
  }

  /** Like run() for a packet that must produce exactly one event. */
  async one(dir: 'from' | 'to', data: Buffer): Promise<FlowEvent & { retval: number }> {
    const r = await this.run(dir, data);
    if (r.events.length !== 1) throw new Error(`expected one event, got ${r.events.length}`);
    return { ...r.events[0]!, retval: r.retval };
  }

  close(): void {
    this.ring.close();
    this.obj.close();
  }
}
