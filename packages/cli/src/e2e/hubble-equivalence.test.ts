// Equivalence with Hubble: for a corpus file and a wide set of filter flag combinations,
// `flowctl observe --input-file F ... -o json|compact` prints exactly what the real hubble CLI
// (v0.12.3, Cilium 1.13 API) prints for the same arguments.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hubbleCli, makeCorpus } from '@flowctl/flow/testing';
import { encodeResponse } from '@flowctl/flow/json';
import { buildProgram, type Io } from '../program.js';
import { StringSink } from '../printer/terminal.js';

process.env.TZ = 'UTC';

const COMBOS: string[][] = [
  [],
  ['--all'],
  ['--last', '7'],
  ['--first', '9'],
  ['--verdict', 'DROPPED'],
  ['--verdict', 'FORWARDED', '--verdict', 'DROPPED', '--last', '50'],
  ['--not', '--verdict', 'FORWARDED', '--all'],
  ['-n', 'shop', '--all'],
  ['--from-namespace', 'shop', '--to-namespace', 'kube-system', '--all'],
  ['--namespace', 'default', '--not', '--namespace', 'shop', '--all'],
  ['--pod', 'shop/frontend', '--all'],
  ['--from-pod', 'shop/payment', '--to-pod', 'shop/order', '--all'],
  ['--label', 'app=frontend', '--all'],
  ['--from-label', 'k8s:app=client', '--to-label', 'app in (payment, catalog)', '--all'],
  ['-l', 'reserved:world', '--all'],
  ['--ip', '10.244.1.0/24', '--all'],
  ['--from-ip', '10.244.1.21', '--to-ip', '10.244.3.13', '--all'],
  ['--ip', 'fd00:10:244:1::/64', '--all'],
  ['--port', '53', '--all'],
  ['--from-port', '8080', '--all'],
  ['--to-port', '8080', '--to-port', '9090', '--protocol', 'tcp', '--all'],
  ['--protocol', 'udp', '--all'],
  ['--protocol', 'icmpv6', '--all'],
  ['--protocol', 'dns', '--all'],
  ['--protocol', 'http', '--http-status', '5+', '--all'],
  ['--http-status', '200', '--all'],
  ['--http-status', '40+', '--all'],
  ['--http-method', 'post', '--all'],
  ['--http-path', '^/orders/[0-9]+$', '--all'],
  ['--fqdn', '*.npmjs.org', '--all'],
  ['--to-fqdn', 'registry.npmjs.org', '--all'],
  ['-t', 'drop', '--all'],
  ['-t', 'trace:to-endpoint', '--all'],
  ['-t', 'trace:from-endpoint', '-t', 'l7', '--all'],
  ['-t', 'policy-verdict', '--all'],
  ['--identity', 'world', '--all'],
  ['--from-identity', 'host', '--all'],
  ['--to-identity', '48213', '--all'],
  ['--tcp-flags', 'syn', '--all'],
  ['--tcp-flags', 'psh,ack', '--not', '--tcp-flags', 'fin', '--all'],
  ['-4', '--verdict', 'DROPPED', '--all'],
  ['-6', '--all'],
  ['--ip-version', 'v4', '--not', '--port', '53', '--all'],
  ['--traffic-direction', 'ingress', '--all'],
  ['--traffic-direction', 'egress', '--verdict', 'DROPPED', '--all'],
  ['--node-name', 'node-1', '--all'],
  ['--node-name', 'node-*', '--not', '--node-name', '*-3', '--all'],
  ['--workload', 'Deployment/payment', '--all'],
  ['--to-workload', 'order-service', '--all'],
  ['--not', '--pod', 'shop/frontend', '--not', '--http-status', '200', '--all'],
  ['--since', '2024-05-01T12:00:10Z', '--until', '2024-05-01T12:00:20.5Z'],
  ['--since', '2024-05-01T12:00:30+00:00', '--last', '5'],
  ['--until', 'Wed, 01 May 2024 12:00:05 +0000', '--first', '30'],
];

let dir = '';
let file = '';

function hubble(args: string[]): { out: string; code: number | null; err: string } {
  const r = spawnSync(hubbleCli(), ['observe', '--input-file', file, ...args], { encoding: 'utf8', env: { ...process.env, TZ: 'UTC' }, maxBuffer: 1 << 28 });
  return { out: r.stdout, code: r.status, err: r.stderr };
}

async function flowctl(args: string[]): Promise<string> {
  const out = new StringSink();
  const err = new StringSink();
  const io: Io = { out, err, isTTY: false, closed: () => false, exitCode: 0 };
  await buildProgram(io, {}).parseAsync(['node', 'flowctl', 'observe', '--input-file', file, ...args]);
  if (err.text) throw new Error(err.text);
  return out.text;
}

describe('flowctl observe --input-file equals hubble observe --input-file', { tags: ['hubble'] }, () => {
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'flowctl-cli-eq-'));
    const raw = join(dir, 'raw.json');
    // Lost-event lines are left out: hubble's file reader drops them (it filters on the Flow only).
    const corpus = makeCorpus(3000, 11, { clusterPrefix: true }).filter((r) => r.flow);
    writeFileSync(raw, corpus.map((r) => encodeResponse(r) + '\n').join(''));
    // Let hubble drop the fields newer than its API, so both read the same file.
    const norm = spawnSync(hubbleCli(), ['observe', '--input-file', raw, '--all', '-o', 'json'], { encoding: 'utf8', maxBuffer: 1 << 28 });
    expect(norm.status).toBe(0);
    file = join(dir, 'corpus.json');
    writeFileSync(file, norm.stdout);
    expect(norm.stdout.split('\n').length).toBeGreaterThan(2900);
  });
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it.each(COMBOS.map((c) => [c.join(' ') || '(no flags)', c]))('-o json %s', async (_n, args) => {
    const want = hubble([...(args as string[]), '-o', 'json']);
    expect(want.code).toBe(0);
    const got = await flowctl([...(args as string[]), '-o', 'json']);
    expect(got.split('\n').length).toBe(want.out.split('\n').length);
    expect(got).toBe(want.out);
  });

  // hubble v0.12.3 ignores --allowlist/--denylist with --input-file; compare raw filters with the
  // flags that build the same FlowFilters instead.
  it.each([
    [['--allowlist', '{"source_pod":["shop/"],"verdict":["DROPPED"]}', '--all'], ['--from-namespace', 'shop', '--verdict', 'DROPPED', '--all']],
    [['--denylist', '{"destinationPort":["53"]}', '--first', '100'], ['--not', '--to-port', '53', '--first', '100']],
  ])('raw %j equals hubble with the equivalent flags', async (ours, theirs) => {
    const want = hubble([...theirs, '-o', 'json']);
    expect(want.code).toBe(0);
    expect(await flowctl([...ours, '-o', 'json'])).toBe(want.out);
  });

  it('the combinations are selective (not all empty, not all everything)', () => {
    const counts = COMBOS.map((c) => hubble([...c, '-o', 'json']).out.split('\n').length - 1);
    expect(counts.filter((n) => n === 0).length).toBeLessThan(COMBOS.length / 5);
    expect(new Set(counts).size).toBeGreaterThan(COMBOS.length / 3);
  });

  it.each([
    ['compact', ['--all']],
    ['compact --numeric --print-node-name', ['--all', '--numeric', '--print-node-name']],
    ['compact RFC3339Nano', ['--last', '200', '--time-format', 'RFC3339Nano']],
    ['dict', ['--last', '100', '-o', 'dict', '--print-node-name']],
    ['table', ['--last', '300', '-o', 'table']],
  ])('%s', async (_n, args) => {
    const want = hubble(args as string[]);
    expect(want.code).toBe(0);
    expect(await flowctl(args as string[])).toBe(want.out);
  });
});
