// Writes GetFlowsResponses in hubble's formats: compact, dict, table (aligned on close, like Go's
// tabwriter with padding 3), json/jsonpb (one GetFlowsResponse per line). node_status goes to the
// error sink, as hubble does, and only UNAVAILABLE/ERROR/GONE unless --debug.
import type { ChalkInstance } from 'chalk';
import { LostEventSource, type Flow } from '@flowctl/flow/gen/flow/flow';
import type { GetFlowsResponse } from '@flowctl/flow/gen/observer/observer';
import { NodeState } from '@flowctl/flow/gen/relay/relay';
import { flowTypeText, formatTime, hostNames, identityText, joinWithCutOff, verdictText, type HostParts, type TimeFormat } from './format.js';
import { sanitize, type Sink } from './terminal.js';

export const OUTPUTS = ['compact', 'dict', 'table', 'tab', 'json', 'jsonpb'] as const;
export type Output = 'compact' | 'dict' | 'table' | 'json';

export function parseOutput(v: string): Output {
  switch (v.toLowerCase()) {
    case 'compact': return 'compact';
    case 'dict': return 'dict';
    case 'table': case 'tab': return 'table';
    case 'json': case 'jsonpb': return 'json';
  }
  throw new Error(`invalid output format: ${v}`);
}

export interface PrinterOptions {
  output: Output;
  timeFormat: TimeFormat;
  nodeName: boolean;
  /** false with --numeric: print IPs, not pod/service/FQDN names. */
  ipTranslation: boolean;
  debug: boolean;
  color: ChalkInstance;
  out: Sink;
  err: Sink;
  /** GetFlowsResponse → one line of Hubble JSON (from @flowctl/flow/json). */
  encodeJson?: (r: GetFlowsResponse) => string;
}

const DICT_SEP = '------------\n';

export class Printer {
  private line = 0;
  private rows: string[][] = [];

  constructor(private readonly o: PrinterOptions) {}

  write(r: GetFlowsResponse): void {
    if (r.flow) this.writeFlow(r, r.flow);
    else if (r.lost_events) this.writeLost(r);
    else if (r.node_status) this.writeNodeStatus(r);
  }

  /** A line of `-o json` input already in the encoder's exact form (see canonical.ts). */
  writeJsonLine(buf: Buffer, start = 0, end = buf.length): void {
    const out = this.o.out;
    if (out.writeLine) out.writeLine(buf, start, end);
    else out.write(buf.toString('utf8', start, end) + '\n');
  }

  private json(r: GetFlowsResponse): string {
    if (!this.o.encodeJson) throw new Error('JSON output needs an encoder');
    return this.o.encodeJson(r);
  }

  private host(h: HostParts): string {
    const c = this.o.color;
    const host = sanitize(h.host);
    if (c.level === 0) return h.port ? `${host}:${h.port}` : host;
    return h.port ? c.cyan(`${host}:${c.yellow(h.port)}`) : c.cyan(host);
  }

  private verdict(text: string): string {
    const c = this.o.color;
    if (c.level === 0) return text;
    if (text === 'FORWARDED' || text === 'ALLOWED' || text === 'REDIRECTED') return c.green(text);
    if (text === 'DROPPED' || text === 'DENIED' || text === 'ERROR') return c.red(text);
    return c.yellow(text);
  }

  private writeFlow(r: GetFlowsResponse, f: Flow): void {
    const o = this.o;
    switch (o.output) {
      case 'json':
        o.out.write(this.json(r) + '\n');
        return;
      case 'compact': {
        let [src, dst] = hostNames(f, o.ipTranslation);
        let srcId = f.source?.identity, dstId = f.destination?.identity;
        let arrow = '->';
        if (f.is_reply === undefined) arrow = '<>';
        else if (f.is_reply) {
          [src, dst] = [dst, src];
          [srcId, dstId] = [dstId, srcId];
          arrow = '<-';
        }
        const c = o.color;
        const id = (n: number | undefined) => (c.level ? c.magenta(identityText(n)) : identityText(n));
        const node = o.nodeName ? ` [${sanitize(f.node_name ?? '')}]` : '';
        o.out.write(
          `${formatTime(f.time, o.timeFormat)}${node}: ${this.host(src)} ${id(srcId)} ${arrow} ${this.host(dst)} ${id(dstId)} ` +
            `${sanitize(flowTypeText(f))} ${this.verdict(verdictText(f))} (${sanitize(f.Summary ?? '')})\n`,
        );
        return;
      }
      case 'dict': {
        const [src, dst] = hostNames(f, o.ipTranslation);
        let s = this.line++ > 0 ? DICT_SEP : '';
        s += `  TIMESTAMP: ${formatTime(f.time, o.timeFormat)}\n`;
        if (o.nodeName) s += `       NODE: ${sanitize(f.node_name ?? '')}\n`;
        s += `     SOURCE: ${this.host(src)}\nDESTINATION: ${this.host(dst)}\n       TYPE: ${sanitize(flowTypeText(f))}\n`;
        s += `    VERDICT: ${this.verdict(verdictText(f))}\n    SUMMARY: ${sanitize(f.Summary ?? '')}\n`;
        o.out.write(s);
        return;
      }
      case 'table': {
        const [src, dst] = hostNames(f, o.ipTranslation);
        const h = (p: HostParts) => sanitize(p.port ? `${p.host}:${p.port}` : p.host);
        const row = [formatTime(f.time, o.timeFormat)];
        if (o.nodeName) row.push(sanitize(f.node_name ?? ''));
        row.push(h(src), h(dst), sanitize(flowTypeText(f)), verdictText(f), sanitize(f.Summary ?? ''));
        this.rows.push(row);
        return;
      }
    }
  }

  private writeLost(r: GetFlowsResponse): void {
    const o = this.o;
    const l = r.lost_events!;
    const src = LostEventSource[l.source ?? 0] ?? String(l.source);
    const cpu = l.cpu ?? 0;
    const n = (l.num_events_lost ?? 0n).toString();
    switch (o.output) {
      case 'json':
        o.out.write(this.json(r) + '\n');
        return;
      case 'compact': {
        const node = o.nodeName ? ` [${sanitize(r.node_name ?? '')}]` : '';
        o.out.write(`${formatTime(r.time, o.timeFormat)}${node} EVENTS LOST: ${src} CPU(${cpu}) ${n}\n`);
        return;
      }
      case 'dict': {
        let s = this.line++ > 0 ? DICT_SEP : '';
        s += `  TIMESTAMP: ${formatTime(r.time, o.timeFormat)}\n`;
        if (o.nodeName) s += `       NODE: ${sanitize(r.node_name ?? '')}\n`;
        s += `     SOURCE: ${src}\n       TYPE: EVENTS LOST\n    VERDICT: \n    SUMMARY: CPU(${cpu}) - ${n}\n`;
        o.out.write(s);
        return;
      }
      case 'table': {
        const row = [formatTime(r.time, o.timeFormat)];
        if (o.nodeName) row.push(sanitize(r.node_name ?? ''));
        row.push('', '', 'EVENTS LOST', '', `${src} CPU(${cpu}) ${n}`);
        this.rows.push(row);
        return;
      }
    }
  }

  private writeNodeStatus(r: GetFlowsResponse): void {
    const o = this.o;
    const s = r.node_status!;
    const state = s.state_change ?? NodeState.UNKNOWN_NODE_STATE;
    if (!o.debug && state !== NodeState.NODE_UNAVAILABLE && state !== NodeState.NODE_ERROR && state !== NodeState.NODE_GONE) return;
    if (o.output === 'json') {
      o.err.write(this.json(r) + '\n');
      return;
    }
    const names = (s.node_names ?? []).map(sanitize);
    const list = joinWithCutOff(names, ', ', 50);
    let msg: string;
    switch (state) {
      case NodeState.NODE_CONNECTED: msg = `Receiving flows from ${names.length} nodes: ${list}`; break;
      case NodeState.NODE_UNAVAILABLE: msg = `${names.length} nodes are unavailable: ${list}`; break;
      case NodeState.NODE_GONE: msg = `${names.length} nodes removed from cluster: ${list}`; break;
      case NodeState.NODE_ERROR: msg = `Error ${JSON.stringify(sanitize(s.message ?? ''))} on ${names.length} nodes: ${list}`; break;
      default: msg = `Unknown node status event ${NodeState[state] ?? state} on ${names.length} nodes: ${list}`;
    }
    o.err.write(`${formatTime(r.time, o.timeFormat)} [${sanitize(r.node_name ?? '')}]: ${msg}\n`);
  }

  /** Writes what is buffered (the whole table) and flushes the sinks. */
  close(): void {
    if (this.o.output === 'table' && this.rows.length) {
      const header = ['TIMESTAMP', ...(this.o.nodeName ? ['NODE'] : []), 'SOURCE', 'DESTINATION', 'TYPE', 'VERDICT', 'SUMMARY'];
      this.o.out.write(tabwrite([header, ...this.rows]));
      this.rows = [];
    }
    this.o.out.flush();
    this.o.err.flush();
  }
}

/** Go text/tabwriter with minwidth 2, padding 3: every cell but the last is padded. */
export function tabwrite(rows: string[][], padding = 3): string {
  const widths: number[] = [];
  for (const r of rows) {
    for (let i = 0; i < r.length - 1; i++) widths[i] = Math.max(widths[i] ?? 0, [...r[i]!].length);
  }
  let out = '';
  for (const r of rows) {
    let line = '';
    for (let i = 0; i < r.length; i++) {
      const cell = r[i]!;
      line += i < r.length - 1 ? cell + ' '.repeat(Math.max(2, widths[i]! + padding) - [...cell].length) : cell;
    }
    out += line + '\n';
  }
  return out;
}
