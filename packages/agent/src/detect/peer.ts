// The sides of an alert as the API carries them: the address and the Hubble endpoint fields.
import type { Flow } from '@flowctl/flow';
import type { AlertPeer as WirePeer } from '@flowctl/flow/gen/flowctl/alerts';
import type { AlertPeer } from './detector.js';

/** The flow's source or destination as an alert peer. */
export function peerOf(flow: Flow, side: 'source' | 'destination'): AlertPeer {
  const ip = (side === 'source' ? flow.IP?.source : flow.IP?.destination) ?? '';
  const endpoint = flow[side];
  return endpoint && (endpoint.pod_name || endpoint.labels?.length) ? { ip, endpoint } : { ip };
}

/** "10.0.0.5 (default/scanner-1)" or the address alone. */
export function describePeer(p: AlertPeer): string {
  const ep = p.endpoint;
  return ep?.pod_name ? `${p.ip} (${ep.namespace ? `${ep.namespace}/` : ''}${ep.pod_name})` : p.ip;
}

export function wirePeer(p: AlertPeer): WirePeer {
  const ep = p.endpoint;
  return {
    ip: p.ip,
    namespace: ep?.namespace ?? '',
    pod_name: ep?.pod_name ?? '',
    labels: ep?.labels ?? [],
    workloads: ep?.workloads ?? [],
  };
}
