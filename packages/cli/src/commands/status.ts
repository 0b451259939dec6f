// `flowctl status`: Health/Check on "hubble.server.Observer", then ServerStatus, printed as hubble does.
import { Command, Option } from 'commander';
import type { ServerStatusResponse } from '@flowctl/flow/gen/observer/observer';
import { CliError } from '../errors.js';
import type { GlobalOptions, Io } from '../program.js';
import { formatGoDuration, thousands } from './numbers.js';
import { renderTable } from '../printer/table.js';

export function statusJson(s: ServerStatusResponse): string {
  const o: Record<string, unknown> = {};
  const u64 = (k: keyof ServerStatusResponse) => {
    const v = s[k] as bigint | undefined;
    if (v) o[k] = v.toString();
  };
  u64('num_flows');
  u64('max_flows');
  u64('seen_flows');
  u64('uptime_ns');
  if (s.num_connected_nodes !== undefined) o.num_connected_nodes = s.num_connected_nodes;
  if (s.num_unavailable_nodes !== undefined) o.num_unavailable_nodes = s.num_unavailable_nodes;
  if (s.unavailable_nodes?.length) o.unavailable_nodes = s.unavailable_nodes;
  if (s.version) o.version = s.version;
  if (s.flows_rate) o.flows_rate = s.flows_rate;
  return JSON.stringify(o);
}

export function flowsPerSecond(s: ServerStatusResponse): number {
  if (s.flows_rate !== undefined && s.flows_rate > 0) return s.flows_rate;
  const up = Number(s.uptime_ns ?? 0n) / 1e9;
  return up > 0 ? Number(s.seen_flows ?? 0n) / up : 0;
}

export function statusText(s: ServerStatusResponse, server: string): string {
  const num = s.num_flows ?? 0n;
  const max = s.max_flows ?? 0n;
  const pct = max > 0n ? (Number(num) / Number(max)) * 100 : 0;
  let out = `Healthcheck (via ${server}): Ok\n`;
  out += `Current/Max Flows: ${thousands(num)}/${thousands(max)} (${pct.toFixed(2)}%)\n`;
  out += `Flows/s: ${flowsPerSecond(s).toFixed(2)}\n`;
  if (s.num_connected_nodes !== undefined) {
    const total = s.num_connected_nodes + (s.num_unavailable_nodes ?? 0);
    out += `Connected Nodes: ${s.num_connected_nodes}/${total}\n`;
  }
  if (s.num_unavailable_nodes) {
    out += `Unavailable Nodes: ${s.num_unavailable_nodes}\n`;
    for (const n of s.unavailable_nodes ?? []) out += `  - ${n}\n`;
  }
  return out;
}

export function statusTable(s: ServerStatusResponse): string {
  const na = (v: number | undefined) => (v === undefined ? 'N/A' : thousands(BigInt(v)));
  return renderTable(
    ['NUM FLOWS', 'MAX FLOWS', 'SEEN FLOWS', 'FLOWS PER SECOND', 'UPTIME', 'NUM CONNECTED NODES', 'NUM UNAVAILABLE NODES', 'VERSION'],
    [[
      thousands(s.num_flows ?? 0n), thousands(s.max_flows ?? 0n), thousands(s.seen_flows ?? 0n), flowsPerSecond(s).toFixed(2),
      formatGoDuration(s.uptime_ns ?? 0n), na(s.num_connected_nodes), na(s.num_unavailable_nodes), s.version ?? '',
    ]],
  );
}

export function registerStatusCommand(program: Command, io: Io, globals: () => GlobalOptions): void {
  program
    .command('status')
    .description("Display the status of the server (health, flows stored and seen, nodes)")
    .addOption(new Option('-o, --output <format>', 'compact, table or json').default('compact'))
    .action(async (opts: { output: string }) => {
      const g = globals();
      const format = opts.output.toLowerCase();
      if (!['compact', 'json', 'jsonpb', 'table', 'tab'].includes(format)) {
        throw new CliError('usage', `invalid argument "${opts.output}" for "-o, --output" flag: expected compact, table or json`);
      }
      const { Connection } = await import('../client.js');
      const conn = new Connection({ server: g.server, timeoutMs: g.timeoutMs, tls: g.tls });
      try {
        await conn.ready();
        await conn.healthCheck();
        const s = await conn.serverStatus();
        if (format === 'json' || format === 'jsonpb') io.out.write(statusJson(s) + '\n');
        else if (format === 'table' || format === 'tab') io.out.write(statusTable(s));
        else io.out.write(statusText(s, g.server));
      } finally {
        conn.close();
        io.out.flush();
      }
    });
}
