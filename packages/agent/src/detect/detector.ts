// The seam between detectors and the alert store. A detector reads the flows the agent already
// parses and returns findings; the store turns findings into alerts, one per (kind, source, target)
// and window, updated rather than repeated.
import type { Endpoint, Flow } from '@flowctl/flow';
import type { SectionSpec, SectionValues } from './config.js';
import type { CidrSet } from './blocklist-index.js';
import type { Logger } from '../server/server.js';

export type AlertKind = 'dns-tunnel' | 'blocklisted-domain' | 'blocklisted-ip' | 'port-scan' | 'syn-flood' | 'connection-rate';
export type Severity = 'low' | 'medium' | 'high' | 'critical';

export interface AlertPeer {
  ip: string;
  /** Hubble's Endpoint of that address where the agent knows it (namespace, pod_name, labels, workloads). */
  endpoint?: Endpoint;
}

export interface Finding {
  kind: AlertKind;
  severity: Severity;
  source: AlertPeer;
  destination?: AlertPeer;
  /** What the alert is about besides its source: a registered domain, an address, a list entry. */
  target: string;
  /** One line. */
  summary: string;
  /** Counts, sample names or ports, the list and entry that matched. JSON-serialisable. */
  evidence: Record<string, unknown>;
}

export interface Detector {
  readonly name: string;
  /** Reads one flow; returns findings (new or updated) or nothing. Never throws on odd flows. */
  observe(flow: Flow, nowMs: number): Finding[] | undefined;
  /** Entries of state held, for metrics (bounded by the detector's own limits). */
  stateSize(): number;
  /** Entries forgotten so far to stay within those limits (the overflow counter). */
  stateEvicted?(): number;
  /** Called about once a second: findings held back by an update interval, now due. */
  tick?(nowMs: number): Finding[] | undefined;
  /** Stops what the detector started (timers, file watches). */
  close?(): void;
}

/** What a detector may know about the agent it runs in. */
export interface DetectContext {
  nodeName: string;
  /** True for addresses of endpoints on this node (a packet seen at two of its veths is one packet). */
  isLocalIp(ip: string): boolean;
  /** --blocklist files (the blocklist detector's lists, beside its section's own `files`). */
  blocklistFiles?: readonly string[];
  /** Told each time a list file is loaded or reloaded, with its addresses (--block-from-lists). */
  blocklistLoaded?: (file: string, cidrs: CidrSet) => void;
  /** A child logger per subsystem, for what a detector must tell the operator (bad list lines). */
  log?: (subsys: string) => Logger;
}

/** A detector's section of --detect-config (its options and their defaults) and how to build it. */
export interface DetectorSpec extends SectionSpec {
  create(config: SectionValues, ctx: DetectContext): Detector;
}
