// The detectors on flows recorded from the demo cluster (test/e2e/alerts.e2e.test.ts's set-up, both
// agents' flows through the relay, `flowctl observe -o json`): `nmap -sS -p 1-60` from scanner-a
// (node-1) at payment-service (node-2, refused with RST), `nmap -sT -p 1-60` from scanner-b at
// order-service (node-1, denied by policy), and the api-gateway retrying a down service six times.
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { decodeResponse, type Flow } from '@flowctl/flow';
import { Detection } from './index.js';
import { tsToMs } from '../observer/timestamp.js';

const flows: Flow[] = gunzipSync(readFileSync(new URL('./testdata/nmap-ss-st-retry.jsonl.gz', import.meta.url)))
  .toString('utf8')
  .split('\n')
  .filter(Boolean)
  .map((l, i) => decodeResponse(l, `line ${i + 1}`).flow!);

/** Each node's agent sees its own flows and knows its own pods (10.10.N.0/24). */
function runNode(node: 'node-1' | 'node-2'): Detection {
  const prefix = node === 'node-1' ? '10.10.1.' : '10.10.2.';
  const d = new Detection({ nodeName: node, isLocalIp: (ip) => ip.startsWith(prefix) });
  let last = 0;
  for (const f of flows) {
    if (f.node_name !== node) continue;
    last = tsToMs(f.time!);
    d.observe(f, last);
  }
  d.tick(last + 5000);
  d.close();
  return d;
}

describe('detectors on a recorded nmap -sS, nmap -sT and a retrying client', () => {
  it('node-1 raises one port-scan alert per scanner, and nothing else', () => {
    const alerts = runNode('node-1').store.list();
    expect(alerts.map((a) => [a.kind, a.source!.pod_name, a.destination!.pod_name]).sort()).toEqual([
      ['port-scan', 'scanner-a', 'payment-service-4b2a1'],
      ['port-scan', 'scanner-b', 'order-service-5d8f7'],
    ]);
    for (const a of alerts) {
      expect(a.evidence).toMatchObject({ type: 'vertical', top_host: { ports: 60 }, hosts: 1 });
      expect(a.severity).toBe('medium');
    }
  });

  it('node-2 (the scanned pod\'s node) leaves the alert to the scanner\'s node', () => {
    expect(runNode('node-2').store.list()).toEqual([]);
  });

  it('the client retrying a down service is in the recording and raises nothing', () => {
    expect(flows.filter((f) => f.IP?.source === '10.10.1.10' && f.l4?.TCP?.destination_port === 9090).length).toBeGreaterThanOrEqual(6);
    for (const node of ['node-1', 'node-2'] as const) {
      expect(runNode(node).store.list().filter((a) => a.source!.ip === '10.10.1.10')).toEqual([]);
    }
  });
});
