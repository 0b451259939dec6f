// Desired state → datapath: TC attachments on the wanted interfaces, the network namespaces whose
// socket events and kernel drops it reports, the IP → identity map and the policy maps. It is
// the one owner of what the agent asked of the datapath, so stopping undoes exactly that.
import type { CompiledPolicy } from '@flowctl/policy';
import type { Logger } from '../server/server.js';
import type { Datapath } from './datapath.js';

export class DatapathReconciler {
  private readonly attached = new Map<string, { ifname: string; netns?: string }>();
  /** Network namespaces being watched ('' = our own). */
  private readonly watchedNetns = new Set<string>();
  private closed = false;

  constructor(
    readonly datapath: Datapath,
    private readonly log: Logger,
    private readonly onAttachError: (ifname: string) => void = () => {},
  ) {}

  /** Attaches to `interfaces` and detaches from the rest; watches `netns` ('' = our own) and unwatches the rest. */
  reconcile(interfaces: Iterable<string>, netns: Iterable<string>): void {
    const dp = this.datapath;
    this.reconcileNetns(new Set(netns));
    const want = new Map<string, { ifname: string; netns?: string }>();
    for (const ifname of interfaces) want.set(ifname, { ifname });
    for (const [k, a] of this.attached) {
      if (want.has(k)) continue;
      this.detach(a);
      this.attached.delete(k);
    }
    for (const [k, a] of want) {
      if (this.attached.has(k)) continue;
      try {
        dp.attach(a.ifname, a.netns);
        this.attached.set(k, a);
        this.log.info({ ifname: a.ifname }, 'attached');
      } catch (e) {
        // The interface may not exist yet (pod still starting); the next reload retries.
        this.onAttachError(a.ifname);
        this.log.warn({ ifname: a.ifname, err: e instanceof Error ? e.message : String(e) }, 'attach failed');
      }
    }
  }

  private reconcileNetns(want: Set<string>): void {
    const dp = this.datapath;
    if (!dp.watchNetns || !dp.unwatchNetns) return;
    for (const n of this.watchedNetns) {
      if (want.has(n)) continue;
      dp.unwatchNetns(n || undefined);
      this.watchedNetns.delete(n);
    }
    for (const n of want) {
      if (this.watchedNetns.has(n)) continue;
      try {
        dp.watchNetns(n || undefined);
        this.watchedNetns.add(n);
      } catch (e) {
        this.log.warn({ netns: n, err: e instanceof Error ? e.message : String(e) }, 'cannot watch network namespace');
      }
    }
  }

  /** Replaces the policy maps; throws when the datapath refuses (the previous policy stays). */
  setPolicy(policy: CompiledPolicy): void {
    this.datapath.setPolicy(policy);
  }

  /** Replaces the IP → identity map; a refusal is logged and the previous map stays. */
  setIdentities(rows: { cidr: string; identity: number }[]): void {
    try {
      this.datapath.setIdentities(rows);
    } catch (e) {
      this.log.error({ err: String(e) }, 'datapath refused the identities');
    }
  }

  get attachedInterfaces(): string[] {
    return [...this.attached.keys()].sort();
  }

  /** Detaches and unwatches everything, then closes the datapath (idempotent). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const a of this.attached.values()) this.detach(a);
    this.attached.clear();
    for (const n of this.watchedNetns) this.datapath.unwatchNetns?.(n || undefined);
    this.watchedNetns.clear();
    this.datapath.close();
  }

  private detach(a: { ifname: string; netns?: string }): void {
    try {
      this.datapath.detach(a.ifname, a.netns);
    } catch (e) {
      this.log.warn({ ifname: a.ifname, err: String(e) }, 'detach failed');
    }
  }
}
