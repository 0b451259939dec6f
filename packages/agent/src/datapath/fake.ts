// A datapath without a kernel: tests push decoded events, and it records what the agent asked of
// it (attachments, identities, policies) so tests can assert the agent's side of the contract.
import type { CompiledPolicy } from '@flowctl/policy';
import type { Datapath } from './datapath.js';
import type { DatapathCounters, DatapathEvent } from './events.js';

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

  /** Delivers one batch, as one ring-buffer wake-up would. */
  emit(events: DatapathEvent[]): void {
    if (!this.sink) throw new Error('FakeDatapath.emit before start');
    this.sink(events);
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
