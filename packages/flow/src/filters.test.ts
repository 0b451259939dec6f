import { describe, expect, it } from 'vitest';
import {
  DropReason, FlowType, IPVersion, L7FlowType, LostEventSource, TrafficDirection, Verdict,
} from './gen/flow/flow.js';
import type { Flow, FlowFilter } from './gen/flow/flow.js';
import { NodeState } from './gen/relay/relay.js';
import { compileFilters, matchFlow } from './filters.js';
import { FlowctlError } from './errors.js';
import { makeCorpus } from './testing/corpus.js';

const shopFrontend = {
  ID: 1, identity: 48211, cluster_name: 'default', namespace: 'shop', pod_name: 'frontend-7d9f8b6c5-x2k4q',
  labels: ['k8s:app=frontend', 'k8s:io.kubernetes.pod.namespace=shop', 'k8s:tier=web'],
  workloads: [{ name: 'frontend', kind: 'Deployment' }],
};
const shopOrders = {
  ID: 2, identity: 48212, cluster_name: 'east', namespace: 'shop', pod_name: 'order-service-5c8d7f9b4-mh7rt',
  labels: ['k8s:app=order-service', 'k8s:io.kubernetes.pod.namespace=shop', 'k8s:version=2'],
  workloads: [{ name: 'order-service', kind: 'Deployment' }],
};
const defaultClient = {
  ID: 3, identity: 51001, namespace: 'default', pod_name: 'client-6f7d8c9b5-zz8kq', labels: ['k8s:app=client'],
  workloads: [{ name: 'client', kind: 'StatefulSet' }],
};
const world = { identity: 2, labels: ['reserved:world'] };

/** frontend → order-service, HTTP GET request over IPv4, node-1 */
const http: Flow = {
  uuid: 'uuid-http', verdict: Verdict.FORWARDED, Type: FlowType.L7, node_name: 'node-1',
  node_labels: ['kubernetes.io/hostname=node-1', 'zone=a'],
  IP: { source: '10.244.1.11', destination: '10.244.2.12', ipVersion: IPVersion.IPv4, source_xlated: '192.168.0.1' },
  l4: { TCP: { source_port: 40000, destination_port: 8080 } },
  source: shopFrontend, destination: shopOrders,
  source_service: { namespace: 'shop', name: 'frontend' }, destination_service: { namespace: 'shop', name: 'order-service' },
  event_type: { type: 129 }, traffic_direction: TrafficDirection.EGRESS, is_reply: false,
  l7: { type: L7FlowType.RESPONSE, http: { code: 503, method: 'GET', url: 'http://order-service:8080/api/v1/orders%2Fx?id=1', protocol: 'HTTP/1.1',
    headers: [{ key: 'x-tenant', value: 'blue' }] } },
  trace_context: { parent: { trace_id: 'abc123' } }, interface: { index: 7, name: 'lxc1' },
};
/** default client → world, dropped by policy, IPv6 TCP SYN, node default/node-2 */
const drop: Flow = {
  uuid: 'uuid-drop', verdict: Verdict.DROPPED, drop_reason_desc: DropReason.POLICY_DENIED, Type: FlowType.L3_L4,
  node_name: 'default/node-2', IP: { source: 'fd00:10:244:1::15', destination: '2606:2800:220:1:248:1893:25c8:1946', ipVersion: IPVersion.IPv6, encrypted: true },
  l4: { TCP: { source_port: 51000, destination_port: 443, flags: { SYN: true } } }, source: defaultClient, destination: world,
  destination_names: ['api.example.com'], event_type: { type: 1, sub_type: 133 }, traffic_direction: TrafficDirection.INGRESS,
  ip_trace_id: { trace_id: 99n },
};
/** DNS response from kube-dns (UDP), is_reply true, node east/node-3 */
const dns: Flow = {
  uuid: 'uuid-dns', verdict: Verdict.FORWARDED, Type: FlowType.L7, node_name: 'east/node-3',
  IP: { source: '10.244.3.2', destination: '10.244.1.21', ipVersion: IPVersion.IPv4 },
  l4: { UDP: { source_port: 53, destination_port: 41000 } },
  source: { namespace: 'kube-system', pod_name: 'coredns-5d78c9869d-7xk2p', labels: ['k8s:k8s-app=kube-dns'], identity: 102 },
  destination: defaultClient, is_reply: true, event_type: { type: 129 },
  l7: { type: L7FlowType.RESPONSE, dns: { query: 'api.example.com.', qtypes: ['A'] } },
  source_names: ['KUBE-DNS.kube-system.svc.cluster.local'],
};
/** ICMPv4 echo from the host, is_reply unset, trace to-endpoint */
const icmp: Flow = {
  verdict: Verdict.FORWARDED, Type: FlowType.L3_L4, node_name: 'node-1',
  IP: { source: '10.244.1.1', destination: '10.244.1.11', ipVersion: IPVersion.IPv4 },
  l4: { ICMPv4: { type: 8 } }, source: { identity: 1, labels: ['reserved:host'] }, destination: shopFrontend,
  event_type: { type: 4 },
};
/** dropped with is_reply unset */
const dropNoReply: Flow = { ...drop, uuid: 'uuid-drop2', is_reply: undefined };
const all = { http, drop, dns, icmp, dropNoReply };
type Name = keyof typeof all;

const cases: [string, FlowFilter, Name[]][] = [
  ['uuid', { uuid: ['uuid-http', 'nope'] }, ['http']],
  ['source_ip exact v4', { source_ip: ['10.244.1.11'] }, ['http']],
  ['source_ip CIDR (unmasked)', { source_ip: ['10.244.1.99/24'] }, ['http', 'icmp']],
  ['source_ip v6 CIDR does not match v4', { source_ip: ['fd00:10:244:1::/64'] }, ['drop', 'dropNoReply']],
  ['source_ip ::/0 only v6', { source_ip: ['::/0'] }, ['drop', 'dropNoReply']],
  ['destination_ip v6 exact (non-canonical form)', { destination_ip: ['2606:2800:0220:1:248:1893:25c8:1946'] }, ['drop', 'dropNoReply']],
  ['source_ip_xlated', { source_ip_xlated: ['192.168.0.0/16'] }, ['http']],
  ['source_pod ns/prefix', { source_pod: ['shop/front'] }, ['http']],
  ['source_pod without namespace means default', { source_pod: ['client', 'frontend'] }, ['drop', 'dropNoReply']],
  ['destination_pod ns/ = any pod in ns', { destination_pod: ['shop/'] }, ['http', 'icmp']],
  ['destination_pod "/" = any namespace, not world', { destination_pod: ['/'] }, ['http', 'dns', 'icmp']],
  ['destination_pod /prefix in any namespace', { destination_pod: ['/client'] }, ['dns']],
  ['source_fqdn wildcard, case-insensitive pattern', { source_fqdn: ['*.KUBE-SYSTEM.svc.cluster.local.'] }, []],
  ['source_fqdn matches lower-case names only', { source_fqdn: ['*.svc.cluster.local'] }, []],
  ['destination_fqdn exact', { destination_fqdn: ['api.example.com'] }, ['drop', 'dropNoReply']],
  ['destination_fqdn wildcard', { destination_fqdn: ['*.example.com'] }, ['drop', 'dropNoReply']],
  ['source_label k8s:app=x', { source_label: ['k8s:app=frontend'] }, ['http']],
  ['source_label without source = any:', { source_label: ['app=frontend'] }, ['http']],
  ['source_label any: explicitly', { source_label: ['any:app in (frontend, client)'] }, ['http', 'drop', 'dropNoReply']],
  ['source_label wrong source', { source_label: ['reserved:app=frontend'] }, []],
  ['source_label set-based and AND', { source_label: ['app in (frontend,order-service),tier'] }, ['http']],
  ['destination_label !key', { destination_label: ['!k8s:app'] }, ['drop', 'dropNoReply']],
  ['destination_label key!=v matches absent key too', { destination_label: ['app!=frontend'] }, ['http', 'drop', 'dns', 'dropNoReply']],
  ['destination_label notin', { destination_label: ['app notin (order-service, client)'] }, ['drop', 'icmp', 'dropNoReply']],
  ['destination_label reserved:world', { destination_label: ['reserved:world'] }, ['drop', 'dropNoReply']],
  ['destination_label gt', { destination_label: ['version>1'] }, ['http']],
  ['source_service', { source_service: ['shop/front'] }, ['http']],
  ['destination_service name without ns = default ns', { destination_service: ['order-service'] }, []],
  ['destination_service', { destination_service: ['shop/order'] }, ['http']],
  ['source_workload by name', { source_workload: [{ name: 'frontend' }] }, ['http']],
  ['destination_workload by kind', { destination_workload: [{ kind: 'StatefulSet' }] }, ['dns']],
  ['destination_workload name and kind', { destination_workload: [{ name: 'client', kind: 'Deployment' }] }, []],
  ['source_cluster_name', { source_cluster_name: ['default'] }, ['http']],
  ['destination_cluster_name', { destination_cluster_name: ['east'] }, ['http']],
  ['traffic_direction', { traffic_direction: [TrafficDirection.INGRESS] }, ['drop', 'dropNoReply']],
  ['verdict', { verdict: [Verdict.DROPPED] }, ['drop', 'dropNoReply']],
  ['verdict OR', { verdict: [Verdict.DROPPED, Verdict.FORWARDED] }, ['http', 'drop', 'dns', 'icmp', 'dropNoReply']],
  ['drop_reason_desc', { drop_reason_desc: [DropReason.POLICY_DENIED] }, ['drop', 'dropNoReply']],
  ['interface by name', { interface: [{ name: 'lxc1' }] }, ['http']],
  ['interface index must match too', { interface: [{ name: 'lxc1', index: 8 }] }, []],
  ['event_type any sub type', { event_type: [{ type: 1 }] }, ['drop', 'dropNoReply']],
  ['event_type with sub type', { event_type: [{ type: 1, match_sub_type: true, sub_type: 181 }] }, []],
  ['event_type trace to-endpoint (sub type 0)', { event_type: [{ type: 4, match_sub_type: true, sub_type: 0 }] }, ['icmp']],
  ['event_type type 0 = any', { event_type: [{ type: 0, match_sub_type: true, sub_type: 133 }] }, ['drop', 'dropNoReply']],
  ['http_status_code exact', { http_status_code: ['503'] }, ['http']],
  ['http_status_code 5+', { http_status_code: ['5+'] }, ['http']],
  ['http_status_code 50+', { http_status_code: ['50+'] }, ['http']],
  ['http_status_code 40+', { http_status_code: ['40+', '200'] }, []],
  ['protocol tcp', { protocol: ['TCP'] }, ['http', 'drop', 'dropNoReply']],
  ['protocol icmp = v4 or v6', { protocol: ['icmp'] }, ['icmp']],
  ['protocol icmpv6', { protocol: ['icmpv6'] }, []],
  ['protocol udp OR dns', { protocol: ['udp', 'dns'] }, ['dns']],
  ['protocol http', { protocol: ['http'] }, ['http']],
  ['source_port', { source_port: ['53'] }, ['dns']],
  ['destination_port', { destination_port: ['8080', '443'] }, ['http', 'drop', 'dropNoReply']],
  ['reply true', { reply: [true] }, ['dns']],
  ['reply false: unset is_reply only counts for drops', { reply: [false] }, ['http', 'drop', 'dropNoReply']],
  ['dns_query regex', { dns_query: ['example\\.com\\.$'] }, ['dns']],
  ['source_identity', { source_identity: [1, 102] }, ['dns', 'icmp']],
  ['destination_identity reserved world', { destination_identity: [2] }, ['drop', 'dropNoReply']],
  ['http_method case-insensitive', { http_method: ['get'] }, ['http']],
  ['http_path regex on the unescaped path', { http_path: ['^/api/v1/orders/x$'] }, ['http']],
  ['http_url regex on the full URL', { http_url: ['\\?id=1$'] }, ['http']],
  ['http_header exact key and value', { http_header: [{ key: 'x-tenant', value: 'blue' }] }, ['http']],
  ['http_header value must match', { http_header: [{ key: 'x-tenant', value: 'red' }] }, []],
  ['tcp_flags subset', { tcp_flags: [{ SYN: true }] }, ['drop', 'dropNoReply']],
  ['tcp_flags needs every flag of an entry', { tcp_flags: [{ SYN: true, ACK: true }] }, []],
  ['node_name bare name = any cluster', { node_name: ['node-1'] }, ['http', 'icmp']],
  ['node_name default/ applies to names without cluster', { node_name: ['default/node-*'] }, ['http', 'drop', 'icmp', 'dropNoReply']],
  ['node_name cluster glob', { node_name: ['east/*'] }, ['dns']],
  ['node_name node glob', { node_name: ['node-[23]'.replace('[23]', '*')] }, ['http', 'drop', 'dns', 'icmp', 'dropNoReply']],
  ['node_labels selector', { node_labels: ['zone=a'] }, ['http']],
  ['ip_version', { ip_version: [IPVersion.IPv6] }, ['drop', 'dropNoReply']],
  ['trace_id', { trace_id: ['abc123'] }, ['http']],
  ['ip_trace_id', { ip_trace_id: [99n] }, ['drop', 'dropNoReply']],
  ['encrypted true', { encrypted: [true] }, ['drop', 'dropNoReply']],
  ['encrypted false', { encrypted: [false] }, ['http', 'dns', 'icmp']],
  ['AND across fields', { source_pod: ['shop/'], verdict: [Verdict.FORWARDED], http_status_code: ['5+'] }, ['http']],
  ['AND across fields (one fails)', { source_pod: ['shop/'], verdict: [Verdict.DROPPED] }, []],
  ['empty filter matches everything', {}, ['http', 'drop', 'dns', 'icmp', 'dropNoReply']],
];

describe('FlowFilter fields (Hubble server semantics)', () => {
  it.each(cases)('%s', (_name, filter, expected) => {
    const got = (Object.keys(all) as Name[]).filter((n) => matchFlow(all[n], filter));
    expect(got.sort()).toEqual([...expected].sort());
  });

  it('matches source FQDNs against the names as stored (lower-case patterns)', () => {
    const lower: Flow = { ...dns, source_names: ['kube-dns.kube-system.svc.cluster.local'] };
    expect(matchFlow(lower, { source_fqdn: ['*.KUBE-SYSTEM.svc.cluster.local.'] })).toBe(true);
    expect(matchFlow(lower, { source_fqdn: ['kube-dns.*'] })).toBe(true);
    expect(matchFlow(lower, { source_fqdn: ['dns.kube-system.svc.cluster.local'] })).toBe(false);
  });
});

describe('compileFilters', () => {
  const resp = (f: Flow) => ({ flow: f, node_name: f.node_name });

  it('is whitelist (OR of filters) minus blacklist', () => {
    const p = compileFilters([{ source_pod: ['shop/'] }, { destination_pod: ['shop/'] }], [{ http_status_code: ['5+'] }]);
    expect(p(resp(http))).toBe(false);
    expect(p(resp(icmp))).toBe(true);
    expect(p(resp(dns))).toBe(false);
    const none = compileFilters();
    expect(Object.values(all).every((f) => none(resp(f)))).toBe(true);
    const onlyBlack = compileFilters([], [{ verdict: [Verdict.DROPPED] }]);
    expect(Object.values(all).filter((f) => onlyBlack(resp(f))).length).toBe(3);
  });

  it('lets lost events and node status through any filter', () => {
    const p = compileFilters([{ verdict: [Verdict.DROPPED] }], [{}]);
    expect(p({ lost_events: { source: LostEventSource.HUBBLE_RING_BUFFER, num_events_lost: 1n } })).toBe(true);
    expect(p({ node_status: { state_change: NodeState.NODE_UNAVAILABLE, node_names: ['x'] } })).toBe(true);
    expect(p(resp(drop))).toBe(false); // the blacklist {} matches every flow
  });

  it('--namespace shop equals source OR destination in shop over a corpus', () => {
    const corpus = makeCorpus(1500, 5);
    const p = compileFilters([{ source_pod: ['shop/'] }, { destination_pod: ['shop/'] }]);
    for (const r of corpus) {
      const f = r.flow;
      const expected = !f || f.source?.namespace === 'shop' || f.destination?.namespace === 'shop';
      expect(p(r)).toBe(expected);
    }
  });

  it.each<[string, FlowFilter, RegExp]>([
    ['bad IP', { source_ip: ['10.0.0.256'] }, /invalid source_ip filter "10.0.0.256": invalid IP address/],
    ['bad CIDR length', { destination_ip: ['10.0.0.0/33'] }, /invalid destination_ip filter "10.0.0.0\/33": invalid CIDR prefix length/],
    ['leading zero', { source_ip: ['010.0.0.1'] }, /invalid IP address/],
    ['bad v6', { source_ip: ['fd00::1::2'] }, /invalid IP address/],
    ['empty pod', { source_pod: [''] }, /invalid source_pod filter ""/],
    ['bad fqdn', { destination_fqdn: ['a b.com'] }, /invalid destination_fqdn filter "a b.com": invalid character " "/],
    ['fqdn with two trailing dots', { source_fqdn: ['x..'] }, /multiple trailing dots/],
    ['bad label selector', { source_label: ['app in (a'] }, /invalid source_label filter "app in \(a"/],
    ['bad label key', { destination_label: ['-app=x'] }, /invalid label key/],
    ['bad http status', { http_status_code: ['600'] }, /invalid http_status_code filter "600"/],
    ['bad http status prefix', { http_status_code: ['5++'] }, /invalid http_status_code filter/],
    ['unknown protocol', { protocol: ['quic'] }, /invalid protocol filter "quic": unknown protocol/],
    ['bad port', { source_port: ['70000'] }, /invalid source_port filter "70000"/],
    ['port not a number', { destination_port: ['http'] }, /invalid destination_port filter "http"/],
    ['bad regex', { http_path: ['(unclosed'] }, /invalid http_path filter "\(unclosed"/],
    ['bad dns regex', { dns_query: ['[z-a]'] }, /invalid dns_query filter/],
    ['node name with two slashes', { node_name: ['a/b/c'] }, /too many slashes/],
    ['node name bad character', { node_name: ['node:1'] }, /invalid character ":"/],
    ['empty cluster name', { source_cluster_name: [''] }, /invalid source_cluster_name filter "": empty cluster name/],
    ['http filter with non-l7 event type', { http_method: ['GET'], event_type: [{ type: 1 }] }, /requires the event type filter to only match 'l7' events/],
    ['cel', { experimental: { cel_expression: ['_flow.verdict == DROPPED'] } }, /^cel_expression filters are not supported$/],
  ])('rejects %s with an INVALID_ARGUMENT FlowctlError', (_n, filter, re) => {
    expect(() => compileFilters([filter])).toThrow(FlowctlError);
    expect(() => compileFilters([filter])).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => compileFilters([], [filter])).toThrow(re);
  });

  it('accepts an http filter together with event type l7', () => {
    expect(compileFilters([{ http_method: ['GET'], event_type: [{ type: 129 }] }])(resp(http))).toBe(true);
  });
});
