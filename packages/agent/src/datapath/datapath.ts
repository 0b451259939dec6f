// What the agent needs from a datapath. KernelDatapath (kernel.ts) drives the real eBPF programs
// through bpf-loader; tests and the replay mode use other implementations.
import type { CompiledPolicy } from '@flowctl/policy';
import type { Prefix } from '@flowctl/flow/ip';
import type { LearnedAddress } from './fqdn-maps.js';
import type { DatapathCounters, DatapathEvent } from './events.js';

export interface DatapathOptions {
  /** Bytes of L4 payload copied for DNS/HTTP (default 512). */
  maxPayload?: number;
  /** Emit an event for every packet instead of aggregating per connection. */
  everyPacket?: boolean;
  /** Seconds between stats events of a long connection (default 5). */
  statsIntervalS?: number;
  /** Report policy verdicts as AUDIT instead of dropping. */
  policyAudit?: boolean;
  /** Ring buffer size in bytes (power of two, default 8 MiB). */
  ringBytes?: number;
  /** Load the XDP drop list (attachXdp and the block methods need it). */
  xdp?: boolean;
  /** Per-source budget of new-flow events (bpf/budget.bpf.h), for each of TCP, UDP and ICMP; DNS
   *  refills DNS_BUDGET_FACTOR times faster; null: none. Default 100/s, burst 1,000 (a port scan of 1,000 ports stays one flow per port). */
  connBudget?: ConnBudget | null;
  /** --syn-flood-protect: drop over-budget SYNs to a destination past this many half-open attempts
   *  per second; 0 or unset: never drop. */
  synFloodProtect?: number;
  /** toFQDNs: seconds an address learned from a DNS answer stays at least (default 3600). */
  fqdnMinTtlS?: number;
  /** toFQDNs: addresses an endpoint keeps per question name, the ones expiring last (default 50). */
  fqdnMaxIpsPerName?: number;
}

/**
 * --tofqdns-min-ttl: Cilium's default before 1.14 (it is 0 since, as Cilium keeps the addresses
 * of open connections past expiry; flowctl does not, so it keeps the longer default).
 */
export const DEFAULT_FQDN_MIN_TTL_S = 3600;
/** Cilium's tofqdns-endpoint-max-ip-per-hostname. */
export const DEFAULT_FQDN_MAX_IPS_PER_NAME = 50;

export const DEFAULT_CONN_BUDGET: ConnBudget = { perSecond: 100, burst: 1000 };
/** The rate of DNS lookups' budget against the others' (bpf/budget.bpf.h says why DNS gets more). */
export const DNS_BUDGET_FACTOR = 10;

export interface ConnBudget {
  /** New connections per second a source may start with an event each. */
  perSecond: number;
  /** How many it may start at once. */
  burst: number;
}

export interface Datapath {
  /** Starts delivering events; `onEvents` is called once per ring-buffer wake-up with a batch. */
  start(onEvents: (events: DatapathEvent[]) => void): void;
  /** Attaches flow+verdict programs at TC ingress and egress of an endpoint interface (idempotent). */
  attach(ifname: string, netns?: string): void;
  detach(ifname: string, netns?: string): void;
  /** Replaces the IP → identity map (endpoint IPs as /32 or /128, CIDR identities as prefixes). */
  setIdentities(entries: { cidr: string; identity: number }[]): void;
  /** Replaces policy maps live (no program reload). */
  setPolicy(policy: CompiledPolicy): void;
  /** Backpressure from user space: stop/start draining the ring buffer. */
  pause(): void;
  resume(): void;
  counters(): DatapathCounters;
  /** Detaches everything this datapath attached and frees its kernel objects (idempotent). */
  close(): void;

  // Optional capabilities: a datapath without them (tests, replay) leaves them out.
  /** Reports socket events and kernel drops of a network namespace (a name under /run/netns, a
   *  path, or undefined for the agent's own); reference counted. Returns its inode. */
  watchNetns?(name?: string): number;
  unwatchNetns?(name?: string): void;
  /** Entries in use per kernel map, for the map fill metric. */
  mapFill?(): MapFill[];
  /** The XDP drop list on a node interface of the agent's namespace; returns the mode the driver took. */
  attachXdp?(ifname: string): XdpMode;
  /** Adds or replaces a drop-list entry (live, no reload). */
  writeBlock?(entry: KernelBlock): void;
  deleteBlock?(entry: KernelBlock): void;
  /** Denies the egress but DNS of the local endpoint at `entry.prefix` (one address), at TC, for
   *  drop-list entry `entry.id` (an isolation), or stops; endIsolation forgets the entry's counts. */
  writeIsolation?(entry: KernelBlock): void;
  deleteIsolation?(entry: KernelBlock): void;
  endIsolation?(id: number): void;
  /** Packets and bytes dropped per entry id, summed over CPUs. */
  blockCounts?(): Map<number, { packets: bigint; bytes: bigint }>;
  /** toFQDNs answers the kernel may have missed: stores what the agent matched in a DNS answer as
   *  the kernel stores what it matches (TTL rules included). Returns how many addresses were new. */
  learnFqdn?(answer: FqdnAnswer): number;
  /** Dual-stack local endpoints, so toFQDNs learns AAAA records from answers over IPv4 (and A over IPv6). */
  setFqdnPeers?(pairs: readonly { v4: string; v6: string }[]): void;
  /** What endpoints learned from DNS answers (toFQDNs), expired or not. */
  fqdnLearned?(): LearnedAddress[];
}

/** A DNS answer to an endpoint whose question name matched toFQDNs selectors. */
export interface FqdnAnswer {
  family: 4 | 6;
  /** the endpoint's address the answer went to */
  endpoint: string;
  /** the question name, lower case, no trailing dot */
  name: string;
  /** A (family 4) or AAAA (family 6) addresses */
  addrs: string[];
  ttlS: number;
  /** bits of the selectors' identities above MIN_FQDN_IDENTITY, as in fqdn_ips */
  bits: bigint;
}

export type XdpMode = 'native' | 'generic';

/** A drop-list entry as the kernel holds it. */
export interface KernelBlock {
  id: number;
  prefix: Prefix;
  /** On the kernel's monotonic clock (process.hrtime.bigint()); 0n: never. */
  expiresNs: bigint;
}

export interface MapFill {
  map: string;
  entries: number;
  max: number;
}
