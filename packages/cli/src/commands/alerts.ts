// `flowctl alerts`: what the agents' detectors found (port scans, floods, DNS tunnels, blocklisted
// names and addresses), each alert once in its latest state, or (--follow) as raised and updated.
import { Command, Option } from 'commander';
import { ALERT_KINDS, isAlertKind } from '@flowctl/flow/alerts';
import type { GetAlertsRequest } from '@flowctl/flow/gen/flowctl/alerts';
import { CliError } from '../errors.js';
import { parseTimeFlag } from '../options/time.js';
import { configureColors, parseColorMode } from '../ui/colors.js';
import type { GlobalOptions, Io } from '../program.js';

interface AlertsOptions {
  follow?: boolean;
  since?: string;
  kind: string[];
  output: string;
  color: string;
}

const collect = (v: string, prev: string[]) => [...prev, v];

export function registerAlertsCommand(program: Command, io: Io, globals: () => GlobalOptions): void {
  program
    .command('alerts')
    .description('Print alerts: port scans, SYN floods, connection rates, DNS tunnels, blocklisted domains and addresses')
    .option('-f, --follow', 'print alerts as they are raised and each time they are updated')
    .option('--since <time>', 'alerts updated since a time: relative (30s, 5m, 1h) or absolute, as observe --since (default: all held; with --follow: from now)')
    .option('--kind <kind>', `only this kind (repeatable): ${ALERT_KINDS.join(', ')}`, collect, [])
    .addOption(new Option('-o, --output <format>', 'compact, table or json').default('compact'))
    .addOption(new Option('--color <when>', 'colorize compact output: auto, always or never').default('auto'))
    .action(async (opts: AlertsOptions) => {
      const { ALERT_OUTPUTS, AlertPrinter } = await import('../alerts/printer.js');
      const output = opts.output as (typeof ALERT_OUTPUTS)[number];
      if (!ALERT_OUTPUTS.includes(output)) throw new CliError('usage', `invalid argument "${opts.output}" for "-o, --output" flag: want one of ${ALERT_OUTPUTS.join(', ')}`);
      if (output === 'table' && opts.follow) throw new CliError('usage', 'table output format is not compatible with follow mode');
      for (const k of opts.kind) if (!isAlertKind(k)) throw new CliError('usage', `invalid argument "${k}" for "--kind" flag: want one of ${ALERT_KINDS.join(', ')}`);
      let color;
      try {
        color = configureColors(parseColorMode(opts.color), io.isTTY);
      } catch (e) {
        throw new CliError('usage', (e as Error).message);
      }
      const req: GetAlertsRequest = { follow: !!opts.follow, kinds: opts.kind };
      const now = Date.now();
      if (opts.since !== undefined) {
        const since = parseTimeFlag(opts.since, now);
        if (!since) throw new CliError('time', `failed to parse the since time: failed to convert ${opts.since} to time`);
        req.since = since;
      } else if (opts.follow) {
        req.since = { seconds: BigInt(Math.floor(now / 1000)), nanos: (now % 1000) * 1e6 };
      }
      const g = globals();
      const printer = new AlertPrinter({ output, out: io.out, err: io.err, color });
      const controller = new AbortController();
      const onSigint = () => controller.abort();
      process.once('SIGINT', onSigint);
      try {
        const { streamAlerts } = await import('../alerts/stream.js');
        for await (const r of streamAlerts({ server: g.server, timeoutMs: g.timeoutMs, tls: g.tls }, req, controller.signal)) {
          printer.write(r);
          if (io.closed()) break;
          if (req.follow) io.out.flush();
        }
      } finally {
        process.removeListener('SIGINT', onSigint);
        printer.close();
      }
    });
}
