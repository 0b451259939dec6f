// A datapath without a kernel: tests push decoded events, and it records what the agent asked of
// it (attachments, identities, policies) so tests can assert the agent's side of the contract.
import type { CompiledPolicy } from '@flowctl/policy';
import type { Datapath } from '../datapath/datapath.js';
import type { DatapathCounters, DatapathEvent } from '../datapath/events.js';

export class FakeDatapath implements Datapath {
  readonly attached = new Map<string, { ifname: string; netns?: string }>();
  identities: { cidr: string; identity: number }[] = [];
  policy: CompiledPolicy | undefined;
  policyUpdates = 0;
  paused = false;
  closed = false;
  readonly ctrs: DatapathCounters = { ringbufFull: 0n, flowMapFull: 0n, malformed: 0n };
  private sink: ((events: DatapathEvent[]) => void) | undefined;

  start(onEvents: (events: DatapathEvent[]) => void): void {
    this.sink = onEvents;
  }

  /** Monotonic-clock shift that makes recorded events happen now (set on the first emit). */
  private shiftNs: bigint | undefined;

  /**
   * Delivers one batch, as one ring-buffer wake-up would. Recorded events carry kernel times from
   * whenever they were recorded (fixtures: seconds after boot); they are shifted, keeping their
   * spacing, so that the first one happens now — as from a real datapath, and so that "the last
   * hour" and rate windows do not depend on how long the machine has been up.
   */
  emit(events: DatapathEvent[]): void {
    if (!this.sink) throw new Error('FakeDatapath.emit before start');
    if (events.length === 0) return;
    this.shiftNs ??= process.hrtime.bigint() - events[0]!.tsNs;
    const shift = this.shiftNs;
    this.sink(events.map((e) => shiftEvent(e, shift)));
  }

  get started(): boolean {
    return this.sink !== undefined;
  }

  attach(ifname: string, netns?: string): void {
    this.attached.set(`${netns ?? ''}/${ifname}`, netns === undefined ? { ifname } : { ifname, netns });
  }

  detach(ifname: string, netns?: string): void {
    this.attached.delete(`${netns ?? ''}/${ifname}`);
  }

  setIdentities(entries: { cidr: string; identity: number }[]): void {
    this.identities = entries;
  }

  setPolicy(policy: CompiledPolicy): void {
    this.policy = policy;
    this.policyUpdates++;
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
  }

  counters(): DatapathCounters {
    return { ...this.ctrs };
  }

  close(): void {
    this.attached.clear();
    this.sink = undefined;
    this.closed = true;
  }
}

function shiftEvent(e: DatapathEvent, by: bigint): DatapathEvent {
  if (e.kind !== 'flow') return { ...e, tsNs: e.tsNs + by };
  return {
    ...e,
    tsNs: e.tsNs + by,
    firstSeenNs: e.firstSeenNs ? e.firstSeenNs + by : 0n,
    lastSeenNs: e.lastSeenNs ? e.lastSeenNs + by : 0n,
  };
}
