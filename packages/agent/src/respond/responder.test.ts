import { describe, expect, it } from 'vitest';
import { defaultConfig, parseDetectConfig } from '../detect/config.js';
import { CONFIG_SECTIONS } from '../detect/index.js';
import type { Finding } from '../detect/detector.js';
import { AlertStore } from '../detect/store.js';
import { BlockList } from './block-list.js';
import { RESPOND_SECTION, Responder } from './responder.js';

const scan = (ip: string): Finding => ({
  kind: 'port-scan', severity: 'high', source: { ip }, target: '10.0.0.1', summary: `${ip} scanned 20 ports of 10.0.0.1 in 3s`, evidence: { ports: 20 },
});

function responder(yaml: string, hostIps: string[] = ['10.0.0.1'], pods: Record<string, string> = {}) {
  const cfg = parseDetectConfig(yaml, 'detect.yaml', CONFIG_SECTIONS).get('respond')!;
  const blocks = new BlockList();
  return { blocks, r: new Responder(cfg, blocks, hostIps, (ip) => pods[ip]) };
}

describe('Responder (respond section of --detect-config)', () => {
  it('blocks nothing by default', () => {
    const blocks = new BlockList();
    const r = new Responder(defaultConfig([RESPOND_SECTION]).get('respond')!, blocks, []);
    expect(r.act(scan('10.0.0.9'))).toBe('none');
    expect(blocks.size).toBe(0);
  });

  it('blocks the source of a configured kind for the TTL, with the summary as reason', () => {
    const { blocks, r } = responder('respond:\n  block-source: [port-scan]\n  block-ttl: 2m\n');
    expect(r.act(scan('10.0.0.9'))).toBe('block-source 10.0.0.9/32 for 2m');
    expect(r.act({ ...scan('10.0.0.8'), kind: 'syn-flood' })).toBe('none');
    expect(blocks.list()).toMatchObject([{ cidr: '10.0.0.9/32', origin: 'alert:port-scan', reason: '10.0.0.9 scanned 20 ports of 10.0.0.1 in 3s' }]);
    expect(blocks.list()[0]!.expiresMs! - blocks.list()[0]!.createdMs).toBe(120_000);
    blocks.close();
  });

  it('never blocks the node itself or the never-block list', () => {
    const { blocks, r } = responder('respond:\n  block-source: [port-scan]\n  never-block: [10.0.0.53, "192.168.0.0/16"]\n');
    expect(r.act(scan('10.0.0.53'))).toBe('none: 10.0.0.53 is never blocked');
    expect(r.act(scan('192.168.4.4'))).toBe('none: 192.168.4.4 is never blocked');
    expect(r.act(scan('10.0.0.1'))).toBe('none: 10.0.0.1 is never blocked');
    expect(blocks.size).toBe(0);
  });

  it('refuses unknown kinds and bad never-block entries at start-up', () => {
    expect(() => responder('respond:\n  block-source: [port-scann]\n')).toThrow('--detect-config: respond.block-source: unknown alert kind "port-scann": want one of dns-tunnel, blocklisted-domain, blocklisted-ip, port-scan, syn-flood, connection-rate');
    expect(() => responder('respond:\n  never-block: [dns-server]\n')).toThrow('--detect-config: respond.never-block: "dns-server" is not an address or CIDR');
  });

  it('gives the alert its action once, when raised', () => {
    const { blocks, r } = responder('respond:\n  block-source: [port-scan]\n');
    const store = new AlertStore({ nodeName: 'n', windowMs: 60_000, maxAlerts: 10, publishIntervalMs: 0, now: () => 1000 });
    store.respondWith((f) => r.act(f));
    store.record(scan('10.0.0.9'), 1000);
    blocks.remove('10.0.0.9');
    store.record(scan('10.0.0.9'), 2000); // an update: no second block
    expect(store.list().map((a) => [a.action, a.updates])).toEqual([['block-source 10.0.0.9/32 for 10m', 1]]);
    expect(blocks.size).toBe(0);
    blocks.close();
  });

  it('isolates a local pod source until removed (or for isolate-ttl); other sources are left alone', () => {
    const pods = { '10.0.0.9': 'shop/scanner-1', '10.0.0.53': 'kube-system/dns' };
    const { blocks, r } = responder('respond:\n  isolate: [port-scan]\n  never-block: [10.0.0.53]\n', ['10.0.0.1'], pods);
    expect(r.act(scan('10.0.0.9'))).toBe('isolate shop/scanner-1 (10.0.0.9) until removed');
    expect(r.act(scan('192.0.2.7'))).toBe('none: 192.0.2.7 is not a pod of this node');
    expect(r.act(scan('10.0.0.53'))).toBe('none: 10.0.0.53 is never blocked');
    expect(blocks.list()).toMatchObject([{ cidr: '10.0.0.9/32', isolate: 'shop/scanner-1', origin: 'alert:port-scan' }]);
    expect(blocks.list()[0]!.expiresMs).toBeUndefined();
    expect(blocks.remove('shop/scanner-1').cidr).toBe('10.0.0.9/32');
    expect(blocks.size).toBe(0);
    const t = responder('respond:\n  isolate: [port-scan]\n  isolate-ttl: 30m\n', ['10.0.0.1'], pods);
    expect(t.r.act(scan('10.0.0.9'))).toBe('isolate shop/scanner-1 (10.0.0.9) for 30m');
    t.blocks.close();
    blocks.close();
  });

  it('refuses a kind both blocked and isolated', () => {
    expect(() => responder('respond:\n  block-source: [port-scan]\n  isolate: [port-scan, syn-flood]\n')).toThrow('--detect-config: respond: "port-scan" is under both block-source and isolate: pick one');
    expect(() => responder('respond:\n  isolate: [portscan]\n')).toThrow('respond.isolate: unknown alert kind "portscan"');
  });
});
