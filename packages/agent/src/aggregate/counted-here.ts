// Whether this node counts a flow on its service-map edge (see @flowctl/flow/servicemap/classify
// for which edge that is). A connection seen at both ends (two veths of one node, or
// two nodes) is counted at one end only, so that a relay can simply add the nodes' maps:
//   - L3/L4 and SOCK records at the client's end (traffic_direction EGRESS) when the client is a
//     pod, else at the server's end (INGRESS);
//   - L7 records (already reported once per node) on the client's node when the client is a pod,
//     else on the server's node;
//   - drops wherever they happen (a packet is dropped once).
import { FlowType, TrafficDirection, Verdict, type Flow } from '@flowctl/flow';
import type { Classified } from '@flowctl/flow/servicemap/classify';

/** Whether this node counts the flow on its edge (see the top of this file). */
export function countedHere(f: Flow, c: Classified, isLocalIp: (ip: string) => boolean, verdict = f.verdict): boolean {
  if (verdict === Verdict.DROPPED) return true;
  const clientIsPod = c.client.kind === 'workload';
  if (c.type === FlowType.L7) return clientIsPod ? isLocalIp(c.client.ip) : isLocalIp(c.server.ip);
  // SOCK records of one socket: EGRESS is the client's (see parser/sock.ts), as for L3/L4 flows.
  return f.traffic_direction === (clientIsPod ? TrafficDirection.EGRESS : TrafficDirection.INGRESS);
}
