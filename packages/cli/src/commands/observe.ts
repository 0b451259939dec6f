// `flowctl observe`: filter flags → FlowFilters, selectors → GetFlowsRequest, then a server stream
// or --input-file through the printer.
import { Command, Option } from 'commander';
import type { FlowFilter } from '@flowctl/flow/gen/flow/flow';
import type { GetFlowsResponse } from '@flowctl/flow/gen/observer/observer';
import { CliError } from '../errors.js';
import { FILTER_FLAGS } from '../options/filter-flags.js';
import { FlowFilterBuilder } from '../options/flow-filter.js';
import { decodeFlowFilter, rawFiltersYaml } from '../options/raw-filters.js';
import { buildRequest, parseUint64, type Selectors } from '../request.js';
import { Printer, parseOutput, type Output } from '../printer/printer.js';
import { parseTimeFormat, TIME_FORMATS, type TimeFormat } from '../printer/format.js';
import { configureColors, parseColorMode } from '../ui/colors.js';
import type { Sink } from '../printer/terminal.js';
import { loadFilters, loadJson } from '../flow-deps.js';
import type { GlobalOptions, Io } from '../program.js';

interface ObserveOptions extends Selectors {
  output: string;
  timeFormat: string;
  printNodeName?: boolean;
  numeric?: boolean;
  color: string;
  inputFile?: string;
  printRawFilters?: boolean;
  allowlist: string[];
  denylist: string[];
}

const collect = (v: string, prev: string[]) => [...prev, v];

function wrap<T>(flag: string, fn: (v: string) => T): (v: string) => T {
  return (v) => {
    try {
      return fn(v);
    } catch (e) {
      if (e instanceof CliError) throw e;
      throw new CliError('usage', `invalid argument "${v}" for "${flag}" flag: ${(e as Error).message}`);
    }
  };
}

export function registerObserveCommand(program: Command, io: Io, globals: () => GlobalOptions): void {
  const builder = new FlowFilterBuilder();
  const cmd = program
    .command('observe')
    .description('Observe flows of a flowctl (or Hubble) server, or of a JSON file')
    .option('--last <N>', "get the last N flows stored in the server's buffer (default 20)", (v) => parseUint64('last', v))
    .option('--first <N>', "get the first N flows stored in the server's buffer", (v) => parseUint64('first', v))
    .option('--all', "get all flows stored in the server's buffer")
    .option('-f, --follow', 'follow flows output')
    .option('--since <time>', 'flows since a time: relative (3s, 4m, 1h43m) or RFC3339 and the other hubble layouts')
    .option('--until <time>', 'flows until a time (same formats as --since)')
    .addOption(new Option('-o, --output <format>', 'compact, dict, table, json or jsonpb').default('compact'))
    .addOption(new Option('--time-format <layout>', `one of ${TIME_FORMATS.join(', ')}`).default('StampMilli'))
    .option('--print-node-name', 'print the node name in the output')
    .option('--numeric', 'print IP addresses instead of pod, service and DNS names')
    .addOption(new Option('--color <when>', 'colorize compact and dict output: auto, always or never').default('auto'))
    .option('--input-file <file>', "read GetFlowsResponse JSON lines from a file ('-' for stdin) instead of a server")
    .option('--print-raw-filters', 'print the allowlist/denylist that the flags build, as YAML, and exit')
    .option('--allowlist <json>', 'a FlowFilter in JSON to add to the allowlist (repeatable)', collect, [])
    .option('--denylist <json>', 'a FlowFilter in JSON to add to the denylist (repeatable)', collect, []);

  addFilterFlags(cmd, builder);

  cmd.action(async (opts: ObserveOptions) => {
    await runObserve(opts, builder, io, globals());
  });
}

/** Observe's filter flags on a command, each feeding `builder` (also used by `flowctl map`). */
export function addFilterFlags(cmd: Command, builder: FlowFilterBuilder): void {
  for (const f of FILTER_FLAGS) {
    const flags = `${f.short ? `-${f.short}, ` : ''}--${f.name}${f.boolean || f.name === 'not' ? '' : ' <filter>'}`;
    const opt = new Option(flags, f.help).helpGroup?.('Filters:') ?? new Option(flags, f.help);
    if (f.name === 'not') {
      cmd.addOption(opt);
      cmd.on('option:not', () => builder.not());
    } else if (f.boolean) {
      const value = f.boolean.value;
      cmd.addOption(opt);
      cmd.on(`option:${f.name}`, () => builder.set(f.name, f.setter, value));
    } else {
      cmd.addOption(opt.argParser((v: string) => builder.set(f.name, f.setter, v)));
    }
  }
}

export async function runObserve(opts: ObserveOptions, builder: FlowFilterBuilder, io: Io, g: GlobalOptions): Promise<void> {
  const built = builder.finish();
  const whitelist: FlowFilter[] = [...built.whitelist, ...opts.allowlist.map((j) => decodeFlowFilter(j, 'allowlist'))];
  const blacklist: FlowFilter[] = [...built.blacklist, ...opts.denylist.map((j) => decodeFlowFilter(j, 'denylist'))];
  if (opts.printRawFilters) {
    io.out.write(rawFiltersYaml(whitelist, blacklist));
    io.out.flush();
    return;
  }
  const output: Output = wrap('-o, --output', parseOutput)(opts.output);
  const timeFormat: TimeFormat = wrap('--time-format', parseTimeFormat)(opts.timeFormat);
  const colorMode = wrap('--color', parseColorMode)(opts.color);
  if (output === 'table' && opts.follow) throw new CliError('usage', 'table output format is not compatible with follow mode');
  const req = buildRequest(opts, whitelist, blacklist);

  // Compile locally even when a server will filter: a bad CIDR, regex or protocol then fails
  // here with the flag's value, before any connection.
  const { compileFilters } = await loadFilters();
  let match: (r: GetFlowsResponse) => boolean;
  try {
    match = compileFilters(whitelist, blacklist);
  } catch (e) {
    throw new CliError('filter', (e as Error).message);
  }
  const json = output === 'json' || opts.inputFile ? await loadJson() : undefined;
  const encoder = json && new json.JsonEncoder();
  const printer = new Printer({
    output,
    timeFormat,
    nodeName: !!opts.printNodeName,
    ipTranslation: !opts.numeric,
    debug: g.debug,
    color: configureColors(colorMode, io.isTTY),
    out: io.out,
    err: io.err,
    encodeJson: encoder && ((r) => encoder.response(r)),
  });

  const controller = new AbortController();
  const onSigint = () => controller.abort();
  process.once('SIGINT', onSigint);
  try {
    if (opts.inputFile) {
      const { observeFile, unreadableSummary } = await import('../input-file.js');
      const { verdictPrefilter } = await import('../prefilter.js');
      let firstUnreadable: string | undefined;
      const warn = (m: string) => (firstUnreadable ??= m);
      // Without filters, `-o json` of a line already in canonical form is the line itself.
      let passthrough: ((buf: Buffer, start: number, end: number) => boolean) | undefined;
      let shapes = (): string => '';
      if (output === 'json' && !whitelist.length && !blacklist.length) {
        const { CanonicalLines } = await import('../canonical.js');
        const canonical = new CanonicalLines(json!);
        passthrough = (buf, start, end) => canonical.isCanonical(buf, start, end);
        shapes = () => `, ${canonical.misses} line shapes checked with the codec`;
      }
      const stats = { lines: 0, invalid: 0, passedThrough: 0 };
      const items = observeFile(opts.inputFile, req, json!, match, warn, { stats, prefilter: verdictPrefilter(whitelist), passthrough });
      read: for await (const batch of items) {
        for (const r of batch) {
          if (controller.signal.aborted || io.closed()) break read;
          if (Buffer.isBuffer(r)) printer.writeJsonLine(r);
          else printer.write(r);
        }
      }
      if (g.debug) {
        io.err.write(`debug: ${stats.lines} lines read, ${stats.invalid} invalid, ${stats.passedThrough} printed as read${shapes()}\n`);
      }
      const unreadable = unreadableSummary(opts.inputFile, stats, firstUnreadable);
      if (unreadable instanceof CliError) throw unreadable;
      if (unreadable) io.err.write(`warning: ${unreadable}\n`);
    } else {
      const { Connection } = await import('../client.js');
      const conn = new Connection({ server: g.server, timeoutMs: g.timeoutMs, tls: g.tls });
      try {
        await conn.ready();
        // Following, flows go out once per burst the server sent (one write after the flows of a
        // socket read), not one write per flow: per-flow writes were most of the reader's cost.
        let flushing = false;
        const flushSoon = () => {
          flushing = false;
          io.out.flush();
        };
        for await (const r of conn.getFlows(req, controller.signal)) {
          printer.write(r);
          if (io.closed()) break;
          if (req.follow && !flushing) {
            flushing = true;
            setImmediate(flushSoon);
          }
        }
      } finally {
        conn.close();
      }
    }
  } finally {
    process.removeListener('SIGINT', onSigint);
    printer.close();
  }
}

export type { Sink };
