// `flowctl list nodes|namespaces`: GetNodes / GetNamespaces (relay only, as in Hubble).
import { Command, Option } from 'commander';
import type { Node } from '@flowctl/flow/gen/observer/observer';
import { NodeState } from '@flowctl/flow/gen/relay/relay';
import { CliError } from '../errors.js';
import type { GlobalOptions, Io } from '../program.js';
import { renderTable } from '../printer/table.js';
import { formatAge, thousands } from './numbers.js';

const STATE_TEXT: Record<number, string> = {
  [NodeState.NODE_CONNECTED]: 'Connected',
  [NodeState.NODE_UNAVAILABLE]: 'Unavailable',
  [NodeState.NODE_GONE]: 'Gone',
  [NodeState.NODE_ERROR]: 'Error',
};

export function nodeJson(n: Node): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  if (n.name) o.name = n.name;
  if (n.version) o.version = n.version;
  if (n.address) o.address = n.address;
  if (n.state) o.state = NodeState[n.state] ?? n.state;
  if (n.tls && (n.tls.enabled || n.tls.server_name)) {
    o.tls = { ...(n.tls.enabled ? { enabled: true } : {}), ...(n.tls.server_name ? { server_name: n.tls.server_name } : {}) };
  }
  for (const k of ['uptime_ns', 'num_flows', 'max_flows', 'seen_flows'] as const) if (n[k]) o[k] = n[k]!.toString();
  return o;
}

export function nodesTable(nodes: Node[], wide: boolean): string {
  const header = ['NAME', 'STATUS', 'AGE', 'FLOWS/S', 'CURRENT/MAX-FLOWS'];
  if (wide) header.push('VERSION', 'ADDRESS', 'TLS');
  const rows: string[][] = [];
  for (const n of [...nodes].sort((a, b) => (a.name ?? '').localeCompare(b.name ?? ''))) {
    const up = n.uptime_ns ?? 0n;
    const connected = n.state === NodeState.NODE_CONNECTED;
    const rate = up > 0n ? (Number(n.seen_flows ?? 0n) / (Number(up) / 1e9)).toFixed(2) : 'N/A';
    const max = n.max_flows ?? 0n;
    const pct = max > 0n ? ` (${((Number(n.num_flows ?? 0n) / Number(max)) * 100).toFixed(2)}%)` : '';
    const row = [
      n.name ?? '', STATE_TEXT[n.state ?? 0] ?? 'Unknown', connected ? formatAge(up) : 'N/A', connected ? rate : 'N/A',
      connected ? `${thousands(n.num_flows ?? 0n)}/${thousands(max)}${pct}` : 'N/A',
    ];
    if (wide) row.push(n.version ?? '', n.address ?? '', n.tls?.enabled ? 'Enabled' : 'Disabled');
    rows.push(row);
  }
  return renderTable(header, rows);
}

export function registerListCommand(program: Command, io: Io, globals: () => GlobalOptions): void {
  const list = program.command('list').description('List nodes or namespaces seen by the server');
  list
    .command('nodes')
    .description('List the nodes known to the relay')
    .addOption(new Option('-o, --output <format>', 'table, wide or json').default('table'))
    .action(async (opts: { output: string }) => {
      const format = opts.output.toLowerCase();
      if (!['table', 'wide', 'json'].includes(format)) {
        throw new CliError('usage', `invalid argument "${opts.output}" for "-o, --output" flag: expected table, wide or json`);
      }
      const g = globals();
      const { Connection } = await import('../client.js');
      const conn = new Connection({ server: g.server, timeoutMs: g.timeoutMs, tls: g.tls });
      try {
        await conn.ready();
        const nodes = (await conn.getNodes()).nodes ?? [];
        if (format === 'json') io.out.write(JSON.stringify(nodes.map(nodeJson), null, 2) + '\n');
        else io.out.write(nodesTable(nodes, format === 'wide'));
      } finally {
        conn.close();
        io.out.flush();
      }
    });
  list
    .command('namespaces')
    .description('List the namespaces with flows in the last hour')
    .addOption(new Option('-o, --output <format>', 'table or json').default('table'))
    .action(async (opts: { output: string }) => {
      const format = opts.output.toLowerCase();
      if (!['table', 'json'].includes(format)) {
        throw new CliError('usage', `invalid argument "${opts.output}" for "-o, --output" flag: expected table or json`);
      }
      const g = globals();
      const { Connection } = await import('../client.js');
      const conn = new Connection({ server: g.server, timeoutMs: g.timeoutMs, tls: g.tls });
      try {
        await conn.ready();
        const nss = (await conn.getNamespaces()).namespaces ?? [];
        if (format === 'json') {
          io.out.write(JSON.stringify(nss.map((n) => ({ ...(n.cluster ? { cluster: n.cluster } : {}), namespace: n.namespace ?? '' })), null, 2) + '\n');
        } else {
          io.out.write(renderTable(['CLUSTER', 'NAMESPACE'], nss.map((n) => [n.cluster ?? '', n.namespace ?? ''])));
        }
      } finally {
        conn.close();
        io.out.flush();
      }
    });
}
