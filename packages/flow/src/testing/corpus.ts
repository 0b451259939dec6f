// A deterministic generator of realistic GetFlowsResponse objects, shaped like what a Cilium
// agent in a small shop cluster emits. Tests and benchmarks across the repo use it, so every
// value is a pure function of (n, seed): change it only together with golden files that embed it.
import {
  DropReason,
  FlowType,
  IPVersion,
  L7FlowType,
  LostEventSource,
  TraceObservationPoint,
  TraceReason,
  TrafficDirection,
  Verdict,
} from '../gen/flow/flow.js';
import type { Endpoint, Flow, Layer4, Service } from '../gen/flow/flow.js';
import type { GetFlowsResponse } from '../gen/observer/observer.js';
import type { Timestamp } from '../gen/google/protobuf/timestamp.js';

export interface CorpusPod {
  namespace: string;
  name: string;
  app: string;
  /** Label key used for the app label (`app` for most, `k8s-app` for kube-system). */
  appKey: string;
  node: string;
  ipv4: string;
  ipv6: string;
  id: number;
  identity: number;
  labels: string[];
  workload: { name: string; kind: string };
  /** Service name fronting this pod, if any. */
  service?: string;
  port: number;
}

export const CORPUS_NODES = ['node-1', 'node-2', 'node-3'] as const;

function pod(
  namespace: string, app: string, suffix: string, nodeIdx: number, host: number, id: number, identity: number,
  port: number, kind = 'Deployment', appKey = 'app', service?: string,
): CorpusPod {
  const labels = [
    `k8s:${appKey}=${app}`,
    'k8s:io.cilium.k8s.policy.cluster=default',
    `k8s:io.cilium.k8s.policy.serviceaccount=${app}`,
    `k8s:io.kubernetes.pod.namespace=${namespace}`,
  ].sort();
  return {
    namespace, app, appKey, name: suffix.startsWith(app) || suffix.startsWith('coredns') ? suffix : `${app}-${suffix}`, node: CORPUS_NODES[nodeIdx]!,
    ipv4: `10.244.${nodeIdx + 1}.${host}`, ipv6: `fd00:10:244:${nodeIdx + 1}::${host.toString(16)}`,
    id, identity, labels, workload: { name: app, kind }, port, ...(service ? { service } : {}),
  };
}

/** The pods every corpus flow is drawn from (stable: tests may refer to them by name). */
export const CORPUS_PODS: readonly CorpusPod[] = [
  pod('shop', 'frontend', '7d9f8b6c5-x2k4q', 0, 11, 1201, 48211, 8080, 'Deployment', 'app', 'frontend'),
  pod('shop', 'order-service', '5c8d7f9b4-mh7rt', 1, 12, 2202, 48212, 8080, 'Deployment', 'app', 'order-service'),
  pod('shop', 'payment', '6b5f4d8c7-p9wzl', 2, 13, 3203, 48213, 9090, 'Deployment', 'app', 'payment'),
  pod('shop', 'catalog', '84f6c9d5b-q4n8s', 0, 14, 1204, 48214, 8080, 'Deployment', 'app', 'catalog'),
  pod('shop', 'postgres', '0', 1, 15, 2205, 48215, 5432, 'StatefulSet', 'app', 'postgres'),
  pod('kube-system', 'kube-dns', 'coredns-5d78c9869d-7xk2p', 2, 2, 3006, 102, 53, 'Deployment', 'k8s-app', 'kube-dns'),
  pod('default', 'client', '6f7d8c9b5-zz8kq', 0, 21, 1221, 51001, 0, 'Deployment', 'app'),
  pod('default', 'curl', '0', 1, 22, 2222, 51002, 0, 'StatefulSet', 'app'),
];

interface ExternalPeer { ipv4: string; ipv6: string; names: string[]; port: number }
const WORLD: readonly ExternalPeer[] = [
  { ipv4: '93.184.216.34', ipv6: '2606:2800:220:1:248:1893:25c8:1946', names: ['api.example.com'], port: 443 },
  { ipv4: '142.250.74.110', ipv6: '2a00:1450:4001:82a::200e', names: ['www.google.com'], port: 443 },
  { ipv4: '151.101.1.69', ipv6: '2a04:4e42::325', names: ['registry.npmjs.org', 'npmjs.org'], port: 443 },
];

/** Deterministic PRNG (mulberry32): same seed, same corpus, on every platform. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const BASE_SECONDS = 1714564800n; // 2024-05-01T12:00:00Z

export interface CorpusOptions {
  /** Prefix node names with the cluster (`default/node-1`), as Cilium's absolute node names are. Default false. */
  clusterPrefix?: boolean;
}

/**
 * `n` GetFlowsResponses with increasing times: L3/L4 TCP/UDP/ICMPv4/ICMPv6, DNS and HTTP L7,
 * policy drops, traffic to/from reserved identities, and lost-event lines.
 */
export function makeCorpus(n: number, seed = 1, opts: CorpusOptions = {}): GetFlowsResponse[] {
  const r = rng(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const uuid = () => {
    const h = () => int(0, 0xffff).toString(16).padStart(4, '0');
    return `${h()}${h()}-${h()}-4${h().slice(1)}-${(8 + int(0, 3)).toString(16)}${h().slice(1)}-${h()}${h()}${h()}`;
  };
  const nodeName = (node: string) => (opts.clusterPrefix ? `default/${node}` : node);
  let ns = 0n;
  const out: GetFlowsResponse[] = [];
  for (let i = 0; i < n; i++) {
    // Mostly nanosecond precision, but some events land on whole ms/µs/s so every RFC 3339
    // fraction width (0/3/6/9 digits) appears in the corpus.
    ns += BigInt(int(1_000, 40_000_000));
    const shape = int(0, 9);
    // Rounding up keeps times strictly increasing.
    const unit = shape === 0 ? 1_000_000_000n : shape === 1 ? 1_000_000n : shape === 2 ? 1_000n : 1n;
    if (ns % unit !== 0n) ns += unit - (ns % unit);
    const time: Timestamp = { seconds: BASE_SECONDS + ns / 1_000_000_000n, nanos: Number(ns % 1_000_000_000n) };
    const kind = r();
    if (kind < 0.02) {
      const node = pick(CORPUS_NODES);
      const src = pick([LostEventSource.PERF_EVENT_RING_BUFFER, LostEventSource.OBSERVER_EVENTS_QUEUE, LostEventSource.HUBBLE_RING_BUFFER]);
      out.push({
        lost_events: {
          source: src,
          num_events_lost: BigInt(int(1, 5000)),
          ...(src === LostEventSource.PERF_EVENT_RING_BUFFER ? { cpu: int(0, 3) } : {}),
          ...(src === LostEventSource.OBSERVER_EVENTS_QUEUE
            ? { first: { seconds: BASE_SECONDS + ns / 1_000_000_000n - 1n, nanos: time.nanos! }, last: time }
            : {}),
        },
        node_name: nodeName(node),
        time,
      });
      continue;
    }
    const flow = makeFlow(kind, time, r, int, pick, uuid, nodeName);
    out.push({ flow, node_name: flow.node_name!, time });
  }
  return out;
}

function endpointOf(p: CorpusPod): Endpoint {
  return {
    ID: p.id, identity: p.identity, cluster_name: 'default', namespace: p.namespace, labels: p.labels,
    pod_name: p.name, workloads: [p.workload],
  };
}

function serviceOf(p: CorpusPod): Service | undefined {
  return p.service ? { name: p.service, namespace: p.namespace } : undefined;
}

const worldEndpoint = (): Endpoint => ({ identity: 2, labels: ['reserved:world'] });
const hostEndpoint = (): Endpoint => ({ identity: 1, labels: ['reserved:host'] });

const MAC = (x: number) => `0a:58:0a:f4:${((x >> 8) & 0xff).toString(16).padStart(2, '0')}:${(x & 0xff).toString(16).padStart(2, '0')}`;

function makeFlow(
  kind: number, time: Timestamp, r: () => number, int: (lo: number, hi: number) => number,
  pick: <T>(xs: readonly T[]) => T, uuid: () => string, nodeName: (n: string) => string,
): Flow {
  const pods = CORPUS_PODS;
  const clients = pods.filter((p) => p.namespace !== 'kube-system');
  const servers = pods.filter((p) => p.port !== 0 && p.app !== 'kube-dns');
  const dns = pods.find((p) => p.app === 'kube-dns')!;
  const v6 = r() < 0.15;
  const ephemeral = int(32768, 60999);
  // Request/reply: is_reply is true/false, and unset for a small share (Hubble's "unknown").
  const replyRoll = r();
  const isReply: boolean | undefined = replyRoll < 0.3 ? true : replyRoll < 0.93 ? false : undefined;

  let src: CorpusPod | 'world' | 'host' = pick(clients);
  let dst: CorpusPod | 'world' | 'host' = pick(servers);
  if (dst === src) dst = pick(servers.filter((p) => p !== src));
  let l4: Layer4;
  let summary: string;
  let type = FlowType.L3_L4;
  let l7: Flow['l7'];
  let verdict = Verdict.FORWARDED;
  let eventType: Flow['event_type'] = { type: 4 };
  let dropped = false;
  let srcNames: string[] | undefined;
  let dstNames: string[] | undefined;
  let dport = 0;

  if (kind < 0.36) {
    // Pod-to-pod TCP.
    dport = dst.port;
    const flagSets = [
      { SYN: true }, { SYN: true, ACK: true }, { ACK: true }, { ACK: true, PSH: true }, { FIN: true, ACK: true }, { RST: true },
    ];
    const flags = pick(flagSets);
    l4 = { TCP: { source_port: ephemeral, destination_port: dport, flags } };
    summary = `TCP Flags: ${Object.keys(flags).join(', ')}`;
  } else if (kind < 0.44) {
    // Egress to the world over TLS, with FQDNs from the DNS cache.
    const peer = pick(WORLD);
    dst = 'world';
    dport = peer.port;
    dstNames = peer.names;
    const flags = pick([{ SYN: true }, { ACK: true, PSH: true }, { FIN: true, ACK: true }]);
    l4 = { TCP: { source_port: ephemeral, destination_port: dport, flags } };
    summary = `TCP Flags: ${Object.keys(flags).join(', ')}`;
    const f = baseFlow();
    f.IP = { source: src.ipv4, destination: v6 ? peer.ipv6 : peer.ipv4, ipVersion: v6 ? IPVersion.IPv6 : IPVersion.IPv4 };
    if (v6) f.IP.source = src.ipv6;
    return finish(f);
  } else if (kind < 0.52) {
    // UDP (non-DNS), e.g. a metrics push.
    dport = pick([8125, 4789, 123]);
    l4 = { UDP: { source_port: ephemeral, destination_port: dport } };
    summary = 'UDP';
  } else if (kind < 0.56) {
    // Echo reply is type 0: left unset, so the corpus stays in canonical (zero-free) form.
    l4 = { ICMPv4: isReply ? {} : { type: 8 } };
    summary = isReply ? 'ICMPv4 EchoReply' : 'ICMPv4 EchoRequest';
    return finish(baseFlow(false));
  } else if (kind < 0.59) {
    l4 = { ICMPv6: { type: isReply ? 129 : 128 } };
    summary = isReply ? 'ICMPv6 EchoReply' : 'ICMPv6 EchoRequest';
    return finish(baseFlow(true));
  } else if (kind < 0.72) {
    // DNS through the proxy: L7 request or response.
    dst = dns;
    dport = 53;
    type = FlowType.L7;
    eventType = { type: 129 };
    const peer = pick(WORLD);
    const query = `${pick([...peer.names, 'order-service.shop.svc.cluster.local', 'postgres-0.postgres.shop.svc.cluster.local'])}.`;
    const qtype = pick(['A', 'AAAA']);
    const response = isReply === true;
    l4 = { UDP: { source_port: ephemeral, destination_port: 53 } };
    l7 = {
      type: response ? L7FlowType.RESPONSE : L7FlowType.REQUEST,
      ...(response ? { latency_ns: BigInt(int(50_000, 5_000_000)) } : {}),
      dns: {
        query,
        ...(response ? { ips: [qtype === 'A' ? peer.ipv4 : peer.ipv6], ttl: int(5, 300), rrtypes: [qtype] } : {}),
        observation_source: 'proxy',
        qtypes: [qtype],
      },
    };
    summary = response ? `DNS Answer "${qtype === 'A' ? peer.ipv4 : peer.ipv6}" TTL: ${l7.dns!.ttl} (Proxy ${query} ${qtype})` : `DNS Query ${query} ${qtype}`;
    if (response) [src, dst] = [dst, src];
  } else if (kind < 0.90) {
    // HTTP through the proxy: request, or response with a status and latency.
    dport = dst.port;
    type = FlowType.L7;
    eventType = { type: 129 };
    const method = pick(['GET', 'GET', 'GET', 'POST', 'PUT', 'DELETE']);
    const path = pick(['/orders', '/orders/1042', '/api/v1/items?id=7&sort=asc', '/healthz', '/payments/charge', '/catalog/search?q=<shoes>']);
    const url = `http://${dst.service ?? dst.name}:${dport}${path}`;
    const response = isReply === true;
    const code = pick([200, 200, 200, 201, 204, 301, 400, 403, 404, 500, 503]);
    l4 = { TCP: { source_port: ephemeral, destination_port: dport } };
    const headers = [
      { key: ':authority', value: `${dst.service ?? dst.name}:${dport}` },
      { key: 'user-agent', value: pick(['curl/8.5.0', 'Go-http-client/1.1', 'python-requests/2.31.0']) },
      { key: 'x-request-id', value: uuid() },
    ];
    l7 = {
      type: response ? L7FlowType.RESPONSE : L7FlowType.REQUEST,
      ...(response ? { latency_ns: BigInt(int(200_000, 80_000_000)) } : {}),
      http: { ...(response ? { code } : {}), method, url, protocol: 'HTTP/1.1', headers },
    };
    summary = response
      ? `HTTP/1.1 ${code} ${Number(l7.latency_ns! / 1_000_000n)}ms (${method} ${url})`
      : `HTTP/1.1 ${method} ${url}`;
    if (response) [src, dst] = [dst, src];
  } else if (kind < 0.97) {
    // Policy drop: default/* or the world trying to reach shop pods.
    src = r() < 0.3 ? 'world' : pick(pods.filter((p) => p.namespace === 'default'));
    dst = pick(servers.filter((p) => p.namespace === 'shop'));
    dport = dst.port;
    verdict = Verdict.DROPPED;
    dropped = true;
    eventType = { type: 1, sub_type: 133 };
    l4 = { TCP: { source_port: ephemeral, destination_port: dport, flags: { SYN: true } } };
    summary = 'TCP Flags: SYN';
  } else {
    // Host (kubelet) health probes.
    src = 'host';
    dport = (dst as CorpusPod).port;
    l4 = { TCP: { source_port: ephemeral, destination_port: dport, flags: { SYN: true } } };
    summary = 'TCP Flags: SYN';
  }
  return finish(baseFlow(v6));

  function addrOf(e: CorpusPod | 'world' | 'host', six: boolean, node: CorpusPod): string {
    if (e === 'world') return six ? WORLD[0]!.ipv6 : WORLD[0]!.ipv4;
    if (e === 'host') return six ? `fd00:10:244:${CORPUS_NODES.indexOf(node.node as 'node-1') + 1}::1` : `10.244.${CORPUS_NODES.indexOf(node.node as 'node-1') + 1}.1`;
    return six ? e.ipv6 : e.ipv4;
  }

  function baseFlow(six = v6): Flow {
    const local = typeof dst !== 'string' ? dst : (src as CorpusPod);
    return {
      IP: {
        source: addrOf(src, six, local), destination: addrOf(dst, six, local),
        ipVersion: six ? IPVersion.IPv6 : IPVersion.IPv4,
      },
    };
  }

  function finish(f: Flow): Flow {
    // The observing node is the destination pod's for ingress, the source pod's for egress.
    const ingress = typeof dst !== 'string' && (typeof src === 'string' || r() < 0.5);
    const local = ingress ? (dst as CorpusPod) : typeof src !== 'string' ? src : (dst as CorpusPod);
    const out: Flow = { time, uuid: uuid(), verdict };
    if (dropped) out.drop_reason = 133;
    out.ethernet = { source: MAC(int(0, 0xffff)), destination: MAC(int(0, 0xffff)) };
    out.IP = f.IP;
    out.l4 = l4;
    out.source = src === 'world' ? worldEndpoint() : src === 'host' ? hostEndpoint() : endpointOf(src);
    out.destination = dst === 'world' ? worldEndpoint() : dst === 'host' ? hostEndpoint() : endpointOf(dst);
    out.Type = type;
    out.node_name = nodeName(local.node);
    if (r() < 0.2) out.node_labels = [`kubernetes.io/hostname=${local.node}`, 'topology.kubernetes.io/zone=eu-west-1a'];
    if (srcNames) out.source_names = srcNames;
    if (dstNames) out.destination_names = dstNames;
    if (l7) out.l7 = l7;
    out.event_type = eventType;
    if (typeof src !== 'string' && src.service && r() < 0.5) out.source_service = serviceOf(src)!;
    if (typeof dst !== 'string' && dst.service) out.destination_service = serviceOf(dst)!;
    out.traffic_direction = ingress ? TrafficDirection.INGRESS : TrafficDirection.EGRESS;
    if (eventType!.type === 4) {
      out.trace_observation_point = ingress ? TraceObservationPoint.TO_ENDPOINT : TraceObservationPoint.FROM_ENDPOINT;
      out.trace_reason = isReply === true ? TraceReason.REPLY : isReply === false ? TraceReason.NEW : TraceReason.ESTABLISHED;
    }
    if (dropped) out.drop_reason_desc = DropReason.POLICY_DENIED;
    if (isReply !== undefined) out.is_reply = isReply;
    if (!l7) out.interface = { index: 10 + local.id % 50, name: `lxc${local.id.toString(16)}` };
    if (l7 && r() < 0.3) out.proxy_port = 10000 + int(0, 999);
    if (l7?.http && r() < 0.4) out.trace_context = { parent: { trace_id: uuid().replace(/-/g, '') } };
    if (r() < 0.1) {
      out.socket_cookie = BigInt(int(1, 2 ** 31)) * 4096n + BigInt(int(0, 4095));
      out.cgroup_id = BigInt(int(1000, 99999));
    }
    out.Summary = summary;
    return out;
  }
}
