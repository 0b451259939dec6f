// Cross-checks against independent implementations:
//  (a) the real Hubble CLI (v0.12.3, Cilium 1.13/1.14 API) re-reads what our codec prints and
//      re-prints it with Go protojson, and applies its own (vendored Cilium) filters to it;
//  (b) protobufjs, loading our proto/ files, reads what ts-proto writes and the reverse.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { Workload } from './gen/flow/flow.js';
import type { Flow } from './gen/flow/flow.js';
import { GetFlowsResponse } from './gen/observer/observer.js';
import { compileFilters } from './filters.js';
import { decodeFlowFilter, encodeResponse } from './json.js';
import { formatRfc3339 } from './time.js';
import { makeCorpus } from './testing/corpus.js';
import { hubbleCli } from './testing/hubble.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

// Fields the v0.12.3 CLI does not know; it warns once on stderr and drops them. This is the
// hubble-api.md §1.8 list minus uuid and auth_type, which v0.12.3 already has (checked by hand:
// the CLI re-prints both).
const FLOW_FIELDS_NEWER_THAN_CLI = [
  'emitter', 'tunnel', 'node_labels', 'trace_reason', 'file', 'ip_trace_id', 'extensions', 'egress_allowed_by',
  'ingress_allowed_by', 'egress_denied_by', 'ingress_denied_by', 'policy_log', 'aggregate',
] as const;

function forOldCli(r: GetFlowsResponse): GetFlowsResponse {
  const f: Flow = { ...r.flow };
  for (const k of FLOW_FIELDS_NEWER_THAN_CLI) delete f[k];
  const ep = (e: Flow['source']) => {
    if (!e) return e;
    const { cluster_name: _drop, ...rest } = e;
    return rest;
  };
  if (f.source) f.source = ep(f.source);
  if (f.destination) f.destination = ep(f.destination);
  if (f.IP) {
    const { source_xlated: _drop, ...ip } = f.IP;
    f.IP = ip;
  }
  if (f.l4?.VRRP || f.l4?.IGMP) delete f.l4;
  return { ...r, flow: f };
}

/** A flow with every Flow field set, including the newest ones and strings that need escaping. */
function everyField(): GetFlowsResponse {
  const t = { seconds: 1714564800n, nanos: 120_000_000 };
  const ep = { ID: 7, identity: 300, cluster_name: 'c1', namespace: 'shop', labels: ['k8s:app=a&b'], pod_name: 'p<1>', workloads: [{ name: 'w', kind: 'Deployment' }] };
  const pol = { name: 'allow', namespace: 'shop', labels: ['k8s:x=y'], revision: 5n, kind: 'CiliumNetworkPolicy' };
  const flow: Flow = {
    time: t, uuid: 'u-1', emitter: { name: 'Hubble', version: '1.19.0' }, verdict: 2, drop_reason: 133, auth_type: 1,
    ethernet: { source: 'aa', destination: 'bb' }, IP: { source: '1.1.1.1', source_xlated: '9.9.9.9', destination: '2.2.2.2', ipVersion: 1, encrypted: true },
    l4: { TCP: { source_port: 1, destination_port: 2, flags: { FIN: true, SYN: true, RST: true, PSH: true, ACK: true, URG: true, ECE: true, CWR: true, NS: true } } },
    tunnel: { protocol: 1, IP: { source: '3.3.3.3', destination: '4.4.4.4', ipVersion: 1 }, l4: { UDP: { source_port: 5, destination_port: 4789 } }, vni: 9 },
    source: ep, destination: { ...ep, ID: 8 }, Type: 2, node_name: 'default/n1', node_labels: ['a=b'],
    source_names: ['s.example'], destination_names: ['d.example'],
    l7: { type: 1, latency_ns: 99n, http: { code: 200, method: 'GET', url: 'http://x/<a>&b?\u2028', protocol: 'HTTP/1.1',
      headers: [{ key: 'k', value: 'v\u2029\u007f\t"\\\u0001é😀' }] } },
    reply: true, event_type: { type: 129, sub_type: 3 }, source_service: { name: 's', namespace: 'shop' },
    destination_service: { name: 'd', namespace: 'shop' }, traffic_direction: 1, policy_match_type: 2, trace_observation_point: 101,
    trace_reason: 1, file: { name: 'bpf_lxc.c', line: 12 }, ip_trace_id: { trace_id: 1234n, ip_option_type: 136 },
    drop_reason_desc: 133, is_reply: false, debug_capture_point: 4, interface: { index: 3, name: 'eth0' }, proxy_port: 1000,
    trace_context: { parent: { trace_id: 'abc' } }, sock_xlate_point: 1, socket_cookie: 2n ** 64n - 1n, cgroup_id: 42n,
    Summary: 'TCP Flags: SYN',
    extensions: { type_url: 'type.googleapis.com/flow.Workload', value: Buffer.from(Workload.encode({ name: 'ext', kind: 'K' }).finish()) },
    egress_allowed_by: [pol], ingress_allowed_by: [pol], egress_denied_by: [pol], ingress_denied_by: [pol], policy_log: ['log'],
    aggregate: { ingress_flow_count: 1, egress_flow_count: 2, unknown_direction_flow_count: 3 },
  };
  return { flow, node_name: 'default/n1', time: t };
}

describe('interop with the real Hubble CLI', { tags: ['hubble'] }, () => {
  let hubble = '';
  let dir = '';
  let file = '';
  let corpus: GetFlowsResponse[] = [];

  beforeAll(() => {
    hubble = hubbleCli();
    dir = mkdtempSync(join(tmpdir(), 'flowctl-flow-interop-'));
    corpus = [...makeCorpus(600, 42), everyField(), ...makeCorpus(200, 43, { clusterPrefix: true })];
    file = join(dir, 'flows.json');
    writeFileSync(file, corpus.map(encodeResponse).join('\n') + '\n');
  });
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const run = (args: string[]) => {
    const r = spawnSync(hubble, ['observe', '--input-file', file, '--all', '-o', 'json', ...args], { encoding: 'utf8', timeout: 30_000, maxBuffer: 256 << 20 });
    if (r.error) throw r.error;
    if (r.status !== 0) throw new Error(`hubble ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
    return { lines: r.stdout.split('\n').filter((l) => l !== ''), stderr: r.stderr };
  };

  it('re-prints every flow byte for byte (minus the fields newer than its API, which it reports)', () => {
    const { lines, stderr } = run([]);
    const flows = corpus.filter((r) => r.flow);
    // The CLI's file reader passes flows only; lost events are not re-printed.
    expect(lines.length).toBe(flows.length);
    expect(corpus.length - flows.length).toBeGreaterThan(0);
    for (let i = 0; i < flows.length; i++) expect(lines[i]).toBe(encodeResponse(forOldCli(flows[i]!)));
    expect(stderr).toMatch(/unknown field detected/);
  });

  it('re-prints a corpus without newer fields identically and without warnings', () => {
    const old = corpus.filter((r) => r.flow).map(forOldCli);
    const f2 = join(dir, 'old.json');
    writeFileSync(f2, old.map(encodeResponse).join('\n') + '\n');
    const r = spawnSync(hubble, ['observe', '--input-file', f2, '--all', '-o', 'json'], { encoding: 'utf8', timeout: 30_000, maxBuffer: 256 << 20 });
    expect(r.status).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(old.map(encodeResponse).join('\n') + '\n');
  });

  // The CLI turns flags into FlowFilters (shown with --print-raw-filters) and applies them with
  // Cilium's own filter code; our decoder reads those filters and our engine must agree.
  it.each(([
    ['--verdict', 'DROPPED'], ['--namespace', 'shop'], ['--from-namespace', 'kube-system'], ['--to-pod', 'shop/order'],
    ['--pod', 'client'], ['--from-label', 'app=frontend'], ['--to-label', 'k8s:app in (payment, catalog)'], ['--label', '!k8s:app'],
    ['--to-label', 'reserved:world'], ['--protocol', 'udp'], ['--protocol', 'icmp'], ['--protocol', 'http'], ['--protocol', 'dns'],
    ['--http-status', '5+'], ['--http-status', '404'], ['--http-method', 'post'], ['--http-path', '^/orders/[0-9]+$'],
    ['--to-fqdn', '*.example.com'], ['--from-ip', '10.244.1.0/24'], ['--ip', 'fd00:10:244:2::c'], ['--port', '53'],
    ['--to-port', '8080'], ['--node-name', 'node-2'], ['--node-name', 'default/node-*'], ['--type', 'l7'], ['--type', 'drop:133'],
    ['--type', 'trace:to-endpoint'], ['--identity', 'world'], ['--from-identity', '48211'], ['--traffic-direction', 'ingress'],
    ['--tcp-flags', 'SYN'], ['--tcp-flags', 'syn,ack'], ['--ip-version', 'v6'], ['--from-service', 'shop/order'],
    ['--to-workload', 'payment'], ['--not', '--namespace', 'shop'], ['--from-pod', 'default/', '--not', '--verdict', 'DROPPED'],
  ] as string[][]).map((a) => [a.join(' '), a] as const))('filters like the CLI: %s', (_name, args) => {
    const raw = execFileSync(hubble, ['observe', '--print-raw-filters', ...args], { encoding: 'utf8', timeout: 30_000 });
    const doc = (parseYaml(raw) ?? {}) as { allowlist?: string[]; denylist?: string[] };
    const wl = (doc.allowlist ?? []).map((j) => decodeFlowFilter(j, 'allowlist'));
    const bl = (doc.denylist ?? []).map((j) => decodeFlowFilter(j, 'denylist'));
    const keep = compileFilters(wl, bl);
    const ours = corpus.filter((r) => r.flow && keep(r)).map((r) => encodeResponse(forOldCli(r)));
    const theirs = run(args).lines;
    expect(theirs.length).toBeGreaterThan(0);
    expect(ours).toEqual(theirs);
  });
});

describe('binary interop with protobufjs (a second protobuf implementation)', () => {
  const require = createRequire(join(repo, 'package.json'));
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const protobuf = require('protobufjs') as typeof import('protobufjs');
  const root = new protobuf.Root();
  root.resolvePath = (_o: string, t: string) => (t.startsWith('google/protobuf/') ? join('/usr/include', t) : join(repo, 'proto', t));
  root.loadSync(['observer/observer.proto'], { keepCase: true });
  root.resolveAll();
  const PbResponse = root.lookupType('observer.GetFlowsResponse');

  const WRAPPERS = new Set(['BoolValue', 'UInt32Value', 'Int32Value', 'UInt64Value', 'Int64Value', 'StringValue', 'DoubleValue']);
  /** protobufjs's plain object → protojson shape, walking protobufjs's own reflection. */
  function toProtoJson(type: import('protobufjs').Type, o: Record<string, unknown>): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const f of type.fieldsArray) {
      const v = o[f.name];
      if (v === undefined || v === null || (Array.isArray(v) && v.length === 0)) continue;
      const conv = (x: unknown): unknown => {
        const rt = f.resolvedType;
        if (rt instanceof protobuf.Type) {
          const obj = x as Record<string, unknown>;
          if (rt.fullName === '.google.protobuf.Timestamp') {
            return formatRfc3339({ seconds: BigInt((obj.seconds as string | undefined) ?? 0), nanos: (obj.nanos as number | undefined) ?? 0 });
          }
          if (WRAPPERS.has(rt.name) && rt.fullName.startsWith('.google.protobuf.')) return obj.value ?? (rt.name === 'BoolValue' ? false : 0);
          if (rt.fullName === '.google.protobuf.Any') {
            const inner = root.lookupType((obj.type_url as string).split('/').pop()!);
            const decoded = inner.toObject(inner.decode(Buffer.from(obj.value as string, 'base64')), { longs: String, enums: String });
            return { '@type': obj.type_url, ...toProtoJson(inner, decoded) };
          }
          return toProtoJson(rt, obj);
        }
        return x;
      };
      out[f.name] = Array.isArray(v) ? v.map(conv) : conv(v);
    }
    return out;
  }

  const samples = () => [...makeCorpus(1500, 77), ...makeCorpus(300, 78, { clusterPrefix: true })];

  it('protobufjs decodes what ts-proto encodes to the same values', () => {
    for (const r of samples()) {
      const bytes = GetFlowsResponse.encode(r).finish();
      const m = PbResponse.decode(bytes);
      expect(PbResponse.verify(m)).toBeNull();
      const plain = PbResponse.toObject(m, { longs: String, enums: String, bytes: String });
      expect(toProtoJson(PbResponse, plain)).toEqual(JSON.parse(encodeResponse(r)));
    }
  });

  it('ts-proto decodes what protobufjs encodes to the same values', () => {
    for (const r of samples()) {
      const pbMsg = PbResponse.decode(GetFlowsResponse.encode(r).finish());
      const pbBytes = PbResponse.encode(pbMsg).finish();
      const back = GetFlowsResponse.decode(pbBytes);
      expect(encodeResponse(back)).toBe(encodeResponse(r));
    }
  });

  it('agrees on a message built by protobufjs from scratch', () => {
    const msg = PbResponse.fromObject({
      flow: {
        time: { seconds: '1714564800', nanos: 5 }, verdict: 'DROPPED', drop_reason_desc: 'POLICY_DENIED', is_reply: { value: false },
        l4: { UDP: { source_port: 53, destination_port: 40000 } }, socket_cookie: '18446744073709551615',
        source: { labels: ['k8s:app=a'], namespace: 'shop' }, Summary: 'x',
      },
      node_name: 'node-1',
    });
    const r = GetFlowsResponse.decode(PbResponse.encode(msg).finish());
    expect(encodeResponse(r)).toBe(
      '{"flow":{"time":"2024-05-01T12:00:00.000000005Z","verdict":"DROPPED","l4":{"UDP":{"source_port":53,"destination_port":40000}},'
      + '"source":{"namespace":"shop","labels":["k8s:app=a"]},"drop_reason_desc":"POLICY_DENIED","is_reply":false,'
      + '"socket_cookie":"18446744073709551615","Summary":"x"},"node_name":"node-1"}',
    );
  });
});
