// `flowctl map`: the service map of a window (workloads and who calls whom, with counts), from
// the agents' per-edge time buckets, so the window is not limited by the flow ring.
import { Command, Option } from 'commander';
import { CliError } from '../errors.js';
import { FlowFilterBuilder } from '../options/flow-filter.js';
import type { GlobalOptions, Io } from '../program.js';
import { addFilterFlags } from './observe.js';

interface MapOptions {
  since: string;
  until?: string;
  output: string;
  exclude: string[];
}

const collect = (v: string, prev: string[]) => [...prev, v];

export function registerMapCommand(program: Command, io: Io, globals: () => GlobalOptions): void {
  const builder = new FlowFilterBuilder();
  const cmd = program
    .command('map')
    .description('Print the service map: workloads, who calls whom, and how much, how slow, how many errors and drops')
    .option('--since <time>', 'start of the window: relative (30m, 1h) or absolute, as observe --since', '5m')
    .option('--until <time>', 'end of the window (default: now)')
    .addOption(new Option('-o, --output <format>', 'table, json, dot or mermaid').default('table'))
    .option('--exclude <selector>', 'leave out a node and its edges: namespace/workload, namespace/, world, a CIDR, or a label k=v (repeatable)', collect, []);
  addFilterFlags(cmd, builder);
  cmd.action(async (opts: MapOptions) => {
    const { MAP_OUTPUTS, renderMap, mapWarnings } = await import('../map/render.js');
    const output = opts.output as (typeof MAP_OUTPUTS)[number];
    if (!MAP_OUTPUTS.includes(output)) throw new CliError('usage', `invalid argument "${opts.output}" for "-o, --output" flag: want one of ${MAP_OUTPUTS.join(', ')}`);
    const built = builder.finish();
    const g = globals();
    const { queryServiceMap } = await import('../map/query.js');
    const m = await queryServiceMap({
      server: g.server, timeoutMs: g.timeoutMs, tls: g.tls, since: opts.since, ...(opts.until !== undefined && { until: opts.until }),
      whitelist: built.whitelist, blacklist: built.blacklist, exclude: opts.exclude,
    });
    io.out.write(renderMap(m, output));
    io.out.flush();
    if (output !== 'table') {
      const w = mapWarnings(m);
      if (w) {
        io.err.write(w);
        io.err.flush();
      }
    }
  });
}
