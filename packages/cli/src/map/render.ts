// The service map as text: a cli-table3 table, Graphviz dot, or a Mermaid flowchart.
import Table from 'cli-table3';
import type { ServiceMap, ServiceMapEdge, ServiceMapNode } from './model.js';

export const MAP_OUTPUTS = ['table', 'json', 'dot', 'mermaid'] as const;
export type MapOutput = (typeof MAP_OUTPUTS)[number];

export function humanBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}

const dash = (n: number | undefined, f: (n: number) => string = String) => (n === undefined || n === 0 ? '-' : f(n));

export function renderTable(m: ServiceMap): string {
  const t = new Table({
    head: ['SOURCE', 'DESTINATION', 'PORT', 'FLOWS', 'CONNS', 'SENT', 'RECEIVED', 'DROPS', 'HTTP REQ', 'HTTP 5XX', 'HTTP P50/P99', 'DNS Q/ERR', 'RTT P50', 'RETRANS'],
    style: { head: [], border: [] },
    chars: { top: '', 'top-mid': '', 'top-left': '', 'top-right': '', bottom: '', 'bottom-mid': '', 'bottom-left': '', 'bottom-right': '', left: '', 'left-mid': '', mid: '', 'mid-mid': '', right: '', 'right-mid': '', middle: '  ' },
  });
  for (const e of m.edges) {
    const drops = e.drops ? `${e.drops}${e.drop_reasons ? ` (${Object.keys(e.drop_reasons).join(',')})` : ''}` : '-';
    t.push([
      e.source,
      e.destination,
      e.port ? `${e.port}/${e.protocol}` : e.protocol,
      String(e.flows),
      dash(e.connections),
      dash(e.bytes_sent, humanBytes),
      dash(e.bytes_received, humanBytes),
      drops,
      dash(e.http_requests),
      dash(e.http_errors),
      e.http_latency_p50_ms !== undefined ? `${e.http_latency_p50_ms}/${e.http_latency_p99_ms}ms` : '-',
      e.dns_queries || e.dns_errors ? `${e.dns_queries}/${e.dns_errors}` : '-',
      e.tcp_rtt_p50_us !== undefined ? `${e.tcp_rtt_p50_us}µs` : '-',
      dash(e.tcp_retransmits),
    ]);
  }
  let out = `Service map ${m.window.since} .. ${m.window.until}: ${m.nodes.length} nodes, ${m.edges.length} edges\n`;
  out += m.edges.length ? t.toString().split('\n').map((l) => l.trimEnd().replace(/^ /, '')).join('\n') + '\n' : 'no traffic in the window\n';
  return out + footer(m);
}

function footer(m: ServiceMap): string {
  let s = '';
  const n = m.unavailable_nodes?.length ?? 0;
  if (n) s += `warning: ${n} node${n === 1 ? '' : 's'} did not answer: ${m.unavailable_nodes!.join(', ')}\n`;
  if (m.covered_since) s += `note: aggregates reach back only to ${m.covered_since}\n`;
  if (m.overflow) s += `warning: ${m.overflow} flows were not aggregated (a bucket reached its bound of edges)\n`;
  return s;
}

/** Warnings for stderr when the output itself (json, dot, mermaid) has no room for them. */
export function mapWarnings(m: ServiceMap): string {
  return footer(m);
}

function edgeLabel(e: ServiceMapEdge): string {
  const parts = [e.port ? `${e.port}/${e.protocol}` : e.protocol];
  if (e.http_requests) parts.push(`${e.http_requests} req${e.http_errors ? `, ${e.http_errors} 5xx` : ''}${e.http_latency_p50_ms !== undefined ? `, p50 ${e.http_latency_p50_ms}ms` : ''}`);
  if (e.dns_queries) parts.push(`${e.dns_queries} DNS${e.dns_errors ? `, ${e.dns_errors} err` : ''}`);
  if (e.drops) parts.push(`${e.drops} dropped`);
  if (!e.http_requests && !e.dns_queries && (e.bytes_sent || e.bytes_received)) parts.push(`${humanBytes(e.bytes_sent + e.bytes_received)}`);
  return parts.join('\n');
}

const failing = (e: ServiceMapEdge) => e.drops > 0 || e.http_errors > 0 || e.dns_errors > 0;

function dotId(s: string): string {
  return `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;
}

function nodeLabel(n: ServiceMapNode): string {
  return n.kind === 'workload' ? `${n.workload}\n(${n.pods} pod${n.pods === 1 ? '' : 's'})` : n.id;
}

export function renderDot(m: ServiceMap): string {
  const lines = ['digraph flowctl_map {', '  rankdir=LR;', '  node [shape=box, style=rounded, fontname="sans-serif"];', '  edge [fontname="sans-serif", fontsize=10];'];
  const byNs = new Map<string, ServiceMapNode[]>();
  for (const n of m.nodes) {
    const ns = n.kind === 'workload' ? n.namespace ?? '' : '';
    byNs.set(ns, [...(byNs.get(ns) ?? []), n]);
  }
  let i = 0;
  for (const [ns, nodes] of [...byNs].sort(([a], [b]) => a.localeCompare(b))) {
    const indent = ns ? '    ' : '  ';
    if (ns) lines.push(`  subgraph cluster_${i++} {`, `    label=${dotId(ns)};`);
    for (const n of nodes) {
      const shape = n.kind === 'workload' ? '' : ', shape=ellipse';
      lines.push(`${indent}${dotId(n.id)} [label=${dotId(nodeLabel(n))}${shape}];`);
    }
    if (ns) lines.push('  }');
  }
  for (const e of m.edges) {
    const attrs = [`label=${dotId(edgeLabel(e))}`];
    if (failing(e)) attrs.push('color=red', 'fontcolor=red');
    if (e.drops && e.drops === e.flows) attrs.push('style=dashed');
    lines.push(`  ${dotId(e.source)} -> ${dotId(e.destination)} [${attrs.join(', ')}];`);
  }
  lines.push('}');
  return lines.join('\n') + '\n';
}

export function renderMermaid(m: ServiceMap): string {
  const ids = new Map<string, string>();
  m.nodes.forEach((n, i) => ids.set(n.id, `n${i}`));
  const text = (s: string) => s.replace(/"/g, '#quot;').replace(/\n/g, '<br/>');
  const lines = ['flowchart LR'];
  const byNs = new Map<string, ServiceMapNode[]>();
  for (const n of m.nodes) {
    const ns = n.kind === 'workload' ? n.namespace ?? '' : '';
    byNs.set(ns, [...(byNs.get(ns) ?? []), n]);
  }
  let s = 0;
  for (const [ns, nodes] of [...byNs].sort(([a], [b]) => a.localeCompare(b))) {
    if (ns) lines.push(`  subgraph ns${s++}["${text(ns)}"]`);
    for (const n of nodes) {
      const label = text(nodeLabel(n));
      lines.push(`${ns ? '    ' : '  '}${ids.get(n.id)}${n.kind === 'workload' ? `["${label}"]` : `(["${label}"])`}`);
    }
    if (ns) lines.push('  end');
  }
  const bad: number[] = [];
  m.edges.forEach((e, i) => {
    lines.push(`  ${ids.get(e.source)} -->|"${text(edgeLabel(e))}"| ${ids.get(e.destination)}`);
    if (failing(e)) bad.push(i);
  });
  if (bad.length) lines.push(`  linkStyle ${bad.join(',')} stroke:#d00,color:#d00`);
  return lines.join('\n') + '\n';
}

export function renderMap(m: ServiceMap, output: MapOutput): string {
  switch (output) {
    case 'json': return JSON.stringify(m) + '\n';
    case 'dot': return renderDot(m);
    case 'mermaid': return renderMermaid(m);
    default: return renderTable(m);
  }
}
