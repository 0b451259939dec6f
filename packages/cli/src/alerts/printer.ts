// `flowctl alerts` output: compact (one line per alert event), table (the latest state of each
// alert, printed at the end) or json (`{"alert": {...}}` per line). Node status and lost events go
// to stderr, so stdout carries alerts only.
import { LostEventSource, NodeState } from '@flowctl/flow';
import { alertJson } from '@flowctl/flow/alerts';
import type { Alert, AlertPeer, GetAlertsResponse } from '@flowctl/flow/gen/flowctl/alerts';
import type { ChalkInstance } from 'chalk';
import { formatTime } from '../printer/format.js';
import { renderTable } from '../printer/table.js';
import { sanitize, type Sink } from '../printer/terminal.js';

export const ALERT_OUTPUTS = ['compact', 'table', 'json'] as const;
export type AlertOutput = (typeof ALERT_OUTPUTS)[number];

export function peerText(p: AlertPeer | undefined): string {
  if (!p?.ip) return '-';
  const pod = p.pod_name ? `${p.namespace ? `${p.namespace}/` : ''}${p.pod_name}` : '';
  return sanitize(pod ? `${pod} (${p.ip})` : p.ip);
}

export class AlertPrinter {
  /** Latest state per alert id, for the table. */
  private readonly latest = new Map<string, Alert>();

  constructor(private readonly o: { output: AlertOutput; out: Sink; err: Sink; color: ChalkInstance }) {}

  write(r: GetAlertsResponse): void {
    if (r.alert) this.writeAlert(r.alert);
    else if (r.lost_events) {
      const l = r.lost_events;
      this.o.err.write(`warning: ${l.num_events_lost ?? 0n} alert updates lost on ${sanitize(r.node_name ?? '')} (${LostEventSource[l.source ?? 0] ?? l.source}): the reader fell behind\n`);
    } else if (r.node_status) {
      const s = r.node_status;
      const st = s.state_change ?? NodeState.UNKNOWN_NODE_STATE;
      if (st !== NodeState.NODE_UNAVAILABLE && st !== NodeState.NODE_ERROR && st !== NodeState.NODE_GONE) return;
      const names = (s.node_names ?? []).map(sanitize).join(', ');
      const why = st === NodeState.NODE_ERROR ? `error ${JSON.stringify(sanitize(s.message ?? ''))}` : st === NodeState.NODE_GONE ? 'removed from the cluster' : 'unavailable';
      this.o.err.write(`warning: alerts of ${names} missing: ${why}\n`);
    }
  }

  private writeAlert(a: Alert): void {
    const o = this.o;
    switch (o.output) {
      case 'json':
        o.out.write(JSON.stringify(alertJson(a)) + '\n');
        return;
      case 'table':
        this.latest.set(`${a.node}\0${a.id}`, a);
        return;
      case 'compact': {
        const c = o.color;
        const sev = (a.severity ?? '').toUpperCase();
        const sevText = c.level ? (sev === 'HIGH' || sev === 'CRITICAL' ? c.red(sev) : c.yellow(sev)) : sev;
        const state = a.updates ? `updated #${a.updates}` : 'raised';
        o.out.write(
          `${formatTime(a.updated, 'StampMilli')} [${sanitize(a.node ?? '')}] ${sevText} ${sanitize(a.kind ?? '')} ${state}: ` +
            `${peerText(a.source)} -> ${peerText(a.destination)}: ${sanitize(a.summary ?? '')}\n`,
        );
        return;
      }
    }
  }

  close(): void {
    if (this.o.output === 'table' && this.latest.size) {
      const rows = [...this.latest.values()].map((a) => [
        formatTime(a.updated, 'StampMilli'),
        sanitize(a.node ?? ''),
        sanitize(a.kind ?? ''),
        sanitize(a.severity ?? ''),
        peerText(a.source),
        peerText(a.destination),
        String(a.updates ?? 0),
        sanitize(a.summary ?? ''),
      ]);
      this.o.out.write(renderTable(['UPDATED', 'NODE', 'KIND', 'SEVERITY', 'SOURCE', 'DESTINATION', 'UPDATES', 'SUMMARY'], rows));
      this.latest.clear();
    }
    this.o.out.flush();
    this.o.err.flush();
  }
}
