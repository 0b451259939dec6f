// What agents, relays and the CLI agree on about alerts besides the proto: the kinds, and the JSON
// form `flowctl alerts -o json` prints (snake_case fields as in the proto, RFC 3339 times).
import type { Alert, AlertPeer, GetAlertsResponse } from './gen/flowctl/alerts.js';
import type { Timestamp } from './gen/google/protobuf/timestamp.js';

export const ALERT_KINDS = ['dns-tunnel', 'blocklisted-domain', 'blocklisted-ip', 'port-scan', 'syn-flood', 'connection-rate'] as const;

export function isAlertKind(k: string): boolean {
  return (ALERT_KINDS as readonly string[]).includes(k);
}

export function timestampToIso(t: Timestamp | undefined): string {
  const ms = Number(t?.seconds ?? 0n) * 1000 + Math.floor((t?.nanos ?? 0) / 1e6);
  return new Date(ms).toISOString();
}

function peerJson(p: AlertPeer | undefined): Record<string, unknown> | null {
  if (!p) return null;
  return {
    ip: p.ip ?? '',
    namespace: p.namespace ?? '',
    pod_name: p.pod_name ?? '',
    labels: p.labels ?? [],
    workloads: (p.workloads ?? []).map((w) => ({ name: w.name ?? '', kind: w.kind ?? '' })),
  };
}

/** `{"alert": {...}}` of one alert, in its latest state. */
export function alertJson(a: Alert): { alert: Record<string, unknown> } {
  return {
    alert: {
      id: a.id ?? '',
      kind: a.kind ?? '',
      severity: a.severity ?? '',
      source: peerJson(a.source),
      destination: peerJson(a.destination),
      target: a.target ?? '',
      summary: a.summary ?? '',
      evidence: a.evidence ?? {},
      action: a.action || 'none',
      time: timestampToIso(a.updated),
      raised: timestampToIso(a.raised),
      updates: a.updates ?? 0,
      node: a.node ?? '',
    },
  };
}

export type { Alert, AlertPeer, GetAlertsResponse };
