import { describe, expect, it } from 'vitest';
import { Chalk } from 'chalk';
import type { Alert, GetAlertsResponse } from '@flowctl/flow/gen/flowctl/alerts';
import { LostEventSource } from '@flowctl/flow/gen/flow/flow';
import { NodeState } from '@flowctl/flow/gen/relay/relay';
import { AlertPrinter, type AlertOutput } from './printer.js';
import { StringSink } from '../printer/terminal.js';

process.env.TZ = 'UTC';

const alert: Alert = {
  id: '3f2a9c0d1e4b5a67',
  kind: 'port-scan',
  severity: 'high',
  source: { ip: '10.10.1.70', namespace: 'default', pod_name: 'scanner-a', labels: ['k8s:app=scanner-a'], workloads: [] },
  destination: { ip: '10.10.2.10', namespace: 'shop', pod_name: 'payment-service-4b2a1', labels: [], workloads: [{ name: 'payment-service', kind: 'Deployment' }] },
  target: 'scan',
  summary: '10.10.1.70 (default/scanner-a) scanned 999 ports of 10.10.2.10 (shop/payment-service-4b2a1) in 2.1s (1012 failed attempts)',
  evidence: { type: 'vertical', failed_attempts: 1012, sample_ports: [1, 2, 3] },
  action: 'none',
  raised: { seconds: 1796414886n, nanos: 0 },
  updated: { seconds: 1796414888n, nanos: 500_000_000 },
  updates: 2,
  node: 'node-1',
};

function print(output: AlertOutput, rs: GetAlertsResponse[]) {
  const out = new StringSink();
  const err = new StringSink();
  const p = new AlertPrinter({ output, out, err, color: new Chalk({ level: 0 }) });
  for (const r of rs) p.write(r);
  p.close();
  return { out: out.text, err: err.text };
}

describe('flowctl alerts output', () => {
  it('compact: one line per raise or update', () => {
    const raised = { ...alert, updates: 0, updated: alert.raised };
    expect(print('compact', [{ alert: raised }, { alert }]).out).toBe(
      'Dec  4 20:08:06.000 [node-1] HIGH port-scan raised: default/scanner-a (10.10.1.70) -> shop/payment-service-4b2a1 (10.10.2.10): ' + alert.summary + '\n' +
        'Dec  4 20:08:08.500 [node-1] HIGH port-scan updated #2: default/scanner-a (10.10.1.70) -> shop/payment-service-4b2a1 (10.10.2.10): ' + alert.summary + '\n',
    );
  });

  it('json: {"alert": ...} per line with the issue\'s fields', () => {
    const line = JSON.parse(print('json', [{ alert }]).out);
    expect(Object.keys(line)).toEqual(['alert']);
    expect(line.alert).toEqual({
      id: '3f2a9c0d1e4b5a67', kind: 'port-scan', severity: 'high',
      source: { ip: '10.10.1.70', namespace: 'default', pod_name: 'scanner-a', labels: ['k8s:app=scanner-a'], workloads: [] },
      destination: { ip: '10.10.2.10', namespace: 'shop', pod_name: 'payment-service-4b2a1', labels: [], workloads: [{ name: 'payment-service', kind: 'Deployment' }] },
      target: 'scan', summary: alert.summary, evidence: alert.evidence, action: 'none',
      time: '2026-12-04T20:08:08.500Z', raised: '2026-12-04T20:08:06.000Z', updates: 2, node: 'node-1',
    });
  });

  it('table: the latest state of each alert, once', () => {
    const raised = { ...alert, updates: 0, updated: alert.raised };
    const { out } = print('table', [{ alert: raised }, { alert }]);
    const lines = out.trimEnd().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^UPDATED\s+NODE\s+KIND\s+SEVERITY\s+SOURCE\s+DESTINATION\s+UPDATES\s+SUMMARY$/);
    expect(lines[1]).toMatch(/^Dec  4 20:08:08\.500\s+node-1\s+port-scan\s+high\s+default\/scanner-a \(10\.10\.1\.70\)\s+shop\/payment-service-4b2a1 \(10\.10\.2\.10\)\s+2\s+10\.10\.1\.70/);
  });

  it('node trouble and lost updates go to stderr, never into the alert stream', () => {
    const { out, err } = print('json', [
      { node_status: { state_change: NodeState.NODE_CONNECTED, node_names: ['node-1'] } },
      { node_status: { state_change: NodeState.NODE_ERROR, node_names: ['node-2'], message: 'node stopped streaming' } },
      { lost_events: { source: LostEventSource.OBSERVER_EVENTS_QUEUE, num_events_lost: 7n }, node_name: 'node-1' },
    ]);
    expect(out).toBe('');
    expect(err).toBe(
      'warning: alerts of node-2 missing: error "node stopped streaming"\n' +
        'warning: 7 alert updates lost on node-1 (OBSERVER_EVENTS_QUEUE): the reader fell behind\n',
    );
  });
});
