// Connection attempts as the L3/L4 flows show them: the kernel reports a connection's first SYN
// once per veth it crosses, so a SYN between two pods of one node arrives twice (leaving one pod,
// entering the other). Detectors that count attempts count each at one point only.
import { FlowType, TraceObservationPoint, suppressedNumbers, type Flow } from '@flowctl/flow';

/** A TCP SYN opening a connection (not the SYN-ACK answer). */
export function isSyn(f: Flow): boolean {
  const flags = f.l4?.TCP?.flags;
  return !!flags?.SYN && !flags.ACK && f.is_reply !== true && f.Type === FlowType.L3_L4 && !!f.IP?.source;
}

/**
 * The SYNs a flow stands for: 1 for a connection's SYN; for a summary of attempts the kernel's
 * budgets suppressed (docs/flows.md), its SYN count, when it is one source's or `manySources`
 * allows the sum over the sources without a budget of their own (it names only the last of them).
 */
export function synCount(f: Flow, manySources: boolean): number {
  const n = suppressedNumbers(f);
  if (n) return n.events === 'new-connection' && (manySources || n.sources === 'one') ? n.syns : 0;
  return isSyn(f) ? 1 : 0;
}

/**
 * Whether this observation of a packet is the one to count, from the point of view of `side`: at
 * the veth of that side's pod when it is local, else wherever it was seen (recordings without an
 * observation point count every time).
 */
export function countedAt(f: Flow, side: 'source' | 'destination', isLocalIp: (ip: string) => boolean): boolean {
  const p = f.trace_observation_point;
  if (p !== TraceObservationPoint.FROM_ENDPOINT && p !== TraceObservationPoint.TO_ENDPOINT) return true;
  const own = side === 'source' ? TraceObservationPoint.FROM_ENDPOINT : TraceObservationPoint.TO_ENDPOINT;
  if (p === own) return true;
  const ip = side === 'source' ? f.IP!.source! : f.IP!.destination!;
  return !isLocalIp(ip);
}

/**
 * Whether this node reports about `side` of the flow: a pod is reported by the node it runs on
 * (both nodes see a connection between pods of two nodes; one alert, not two), an address that
 * is no pod (outside the cluster, a host) by every node that sees it.
 */
export function ownedHere(f: Flow, side: 'source' | 'destination', isLocalIp: (ip: string) => boolean): boolean {
  const ip = side === 'source' ? f.IP?.source : f.IP?.destination;
  if (!ip) return false;
  return isLocalIp(ip) || !f[side]?.pod_name;
}
