// What every parser stage (L3/L4 here, L7 and SOCK in their own modules) needs from the agent:
// the node, the clock, who owns an IP, and counters for what could not be decoded.
import type { Endpoint, Policy, Timestamp } from '@flowctl/flow';

export interface ParserCounters {
  /** Events that could not be turned into a flow at all (garbage, missing fields). */
  malformedEvents: number;
  /** L7 payloads that could not be parsed; the L3/L4 flow was kept. */
  malformedL7: number;
  /** TCP connections whose L7 messages could no longer be followed (one unparsed flow each). */
  l7StreamLost: number;
  /** HTTP requests, HTTP responses and DNS-over-TCP messages (or DNS segments) never reported. */
  l7LostHttpRequests: number;
  l7LostHttpResponses: number;
  l7LostDns: number;
}

export interface ParserContext {
  nodeName: string;
  /** Maps bpf_ktime_get_ns() (CLOCK_MONOTONIC) to wall-clock time. */
  toWallTime(monotonicNs: bigint): Timestamp;
  /** The flow.Endpoint for an IP: an endpoint from the endpoints file, reserved:host or reserved:world. */
  endpointForIp(ip: string): Endpoint;
  /** The endpoint whose pod network namespace has this inode (SOCK attribution), if known. */
  endpointForNetns(netnsIno: number): Endpoint | undefined;
  /** True when the IP belongs to an endpoint this node owns (its traffic direction is known). */
  isLocalEndpointIp(ip: string): boolean;
  /** The policy behind a kernel rule reference (CompiledPolicy.refs[ref - 1]), if any. */
  policyForRef(ref: number): Policy | undefined;
  /** Interface name on this node for an ifindex, '' when unknown. */
  ifName(ifindex: number): string;
  /** Inode of this node's network namespace (the agent's), where ifName's indexes are; 0 when unknown. */
  nodeNetnsIno: number;
  /** FQDNs the DNS cache knows for an IP (Hubble's source_names/destination_names). */
  namesForIp(ip: string): string[];
  /** Records IPs learned from a DNS answer to `client` so later flows carry the names (and toFQDNs learns them). */
  learnNames(name: string, ips: string[], ttlS: number, client: string, tcp: boolean): void;
  newUuid(): string;
  /** The drop-list entry behind an XDP drop event's id, if the agent still knows it. */
  blockEntry?(id: number): { cidr: string; reason: string; isolate?: string } | undefined;
  counters: ParserCounters;
}
