// `flowctl block add|list|remove`: the XDP drop list of an agent, or of every node through a relay
// (flowctl.blocks.v1.Blocks). A bad CIDR or TTL is refused here, before any connection.
import { Command, Option } from 'commander';
import type { Metadata, ServiceError } from '@grpc/grpc-js';
import type { BlockEntry, NodeBlockStatus } from '@flowctl/flow/gen/flowctl/blocks';
import { CliError } from '../errors.js';
import type { GlobalOptions, Io } from '../program.js';
import { renderTable } from '../printer/table.js';
import { parseGoDuration } from '../options/time.js';
import { formatGoDuration, thousands } from './numbers.js';

const ONE_YEAR_NS = 365n * 24n * 3600n * 1_000_000_000n;

/** The --ttl value in nanoseconds; a clear one-line error for anything but a positive Go duration up to a year. */
export function parseTtl(v: string): bigint {
  const ns = parseGoDuration(v);
  if (ns === undefined) throw new CliError('usage', `invalid argument "${v}" for "--ttl" flag: want a duration like 90s, 10m or 1h30m`);
  if (ns < 1_000_000_000n || ns > ONE_YEAR_NS) throw new CliError('usage', `invalid argument "${v}" for "--ttl" flag: want at least 1s and at most a year (8760h)`);
  return ns;
}

/** The CIDR argument, canonical (or, with `pod`, an isolated pod's "namespace/name"); throws a one-line usage error. */
async function cidrArg(v: string, pod = false): Promise<string> {
  const { parseBlockCidr } = await import('@flowctl/flow/block');
  try {
    return parseBlockCidr(v).cidr;
  } catch (e) {
    if (pod && /^[a-z0-9]([a-z0-9.-]*[a-z0-9])?\/[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/.test(v)) return v;
    throw new CliError('usage', (e as Error).message);
  }
}

type Method = 'add' | 'remove' | 'list';

async function call<Res>(g: GlobalOptions, method: Method, req: object): Promise<Res> {
  const [{ BlocksClient }, { channelFor }, grpc] = await Promise.all([
    import('@flowctl/flow/gen/flowctl/blocks.grpc'),
    import('../client.js'),
    import('@grpc/grpc-js'),
  ]);
  const grpcStatus = grpc.status;
  const ch = channelFor(g.server, g.tls);
  const client = new BlocksClient(ch.address, ch.creds, ch.options);
  return new Promise<Res>((resolve, reject) => {
    const done = (err: ServiceError | null, r: Res) => {
      client.close();
      if (!err) return resolve(r);
      if (err.code === grpcStatus.UNIMPLEMENTED) {
        reject(new CliError('server', `${g.server} does not serve flowctl's drop list (flowctl.blocks.v1.Blocks): is it a flowctl agent or relay?`));
      } else if (err.code === grpcStatus.UNAVAILABLE || err.code === grpcStatus.DEADLINE_EXCEEDED) {
        reject(new CliError('server', `cannot reach the server at ${g.server}: ${err.details || err.message} (is flowctl-relay or flowctl-agent running?)`));
      } else if (err.code === grpcStatus.INVALID_ARGUMENT || err.code === grpcStatus.NOT_FOUND) {
        reject(new CliError('server', err.details || err.message));
      } else {
        reject(new CliError('server', `${g.server}: ${grpcStatus[err.code] ?? err.code}: ${err.details || err.message}`));
      }
    };
    const opts = { deadline: Date.now() + Math.max(g.timeoutMs, 10_000) };
    (client[method] as (r: object, m: Metadata, o: object, cb: typeof done) => void)(req, new grpc.Metadata(), opts, done);
  });
}

const tsMs = (t: { seconds?: bigint; nanos?: number } | undefined) => (t ? Number(t.seconds ?? 0n) * 1000 + Math.floor((t.nanos ?? 0) / 1e6) : undefined);

/** "in 9m59s", "never". */
function expiresIn(e: BlockEntry, nowMs: number): string {
  const at = tsMs(e.expires);
  if (at === undefined) return 'never';
  const left = Math.max(0, at - nowMs);
  return `in ${formatGoDuration(BigInt(Math.round(left / 1000)) * 1_000_000_000n)}`;
}

/** One line per node that could not apply the call or enforces nothing (no --xdp-interface). */
function nodeWarnings(nodes: NodeBlockStatus[] | undefined): string {
  let out = '';
  for (const n of nodes ?? []) {
    if (n.error) out += `warning: node ${n.node_name}: ${n.error}\n`;
    else if (!n.xdp_interfaces?.length) out += `warning: node ${n.node_name} has no --xdp-interface: it lists the entry but drops nothing\n`;
  }
  return out;
}

/** drop, or isolate POD; "(pod gone)" when no node has the pod any more (the isolation holds nothing). */
function action(e: BlockEntry): string {
  if (!e.isolated_pod) return 'drop';
  return `isolate ${e.isolated_pod}${e.isolated_addresses?.length ? '' : ' (pod gone)'}`;
}

export function blockListTable(entries: BlockEntry[], nowMs = Date.now()): string {
  if (!entries.length) return 'No entries in the drop list.\n';
  return renderTable(
    ['CIDR', 'ACTION', 'EXPIRES', 'DROPPED PACKETS', 'DROPPED BYTES', 'ORIGIN', 'NODES', 'REASON'],
    entries.map((e) => [
      e.cidr ?? '', action(e), expiresIn(e, nowMs), thousands(e.dropped_packets ?? 0n), thousands(e.dropped_bytes ?? 0n), e.origin ?? '', (e.nodes ?? []).join(','), e.reason ?? '',
    ]),
  );
}

export function blockEntryJson(e: BlockEntry): Record<string, unknown> {
  const iso = (t: { seconds?: bigint; nanos?: number } | undefined) => (t ? new Date(tsMs(t)!).toISOString() : undefined);
  return {
    cidr: e.cidr ?? '',
    reason: e.reason ?? '',
    origin: e.origin ?? '',
    created: iso(e.created),
    ...(e.expires && { expires: iso(e.expires) }),
    dropped_packets: Number(e.dropped_packets ?? 0n),
    dropped_bytes: Number(e.dropped_bytes ?? 0n),
    nodes: e.nodes ?? [],
    ...(e.isolated_pod && { isolated_pod: e.isolated_pod, isolated_addresses: e.isolated_addresses ?? [] }),
  };
}

export function registerBlockCommand(program: Command, io: Io, globals: () => GlobalOptions): void {
  const block = program.command('block').description('Drop traffic from or to CIDRs at XDP on the nodes (--xdp-interface), and list what was dropped');
  const write = (s: string, err = false) => {
    const sink = err ? io.err : io.out;
    sink.write(s);
    sink.flush();
  };

  block
    .command('add <cidr>')
    .description('Drop packets from or to CIDR on every node (an address alone is a /32 or /128)')
    .option('--ttl <duration>', 'remove the entry after this long (e.g. 10m, 1h); default: until removed')
    .option('--reason <text>', 'why, shown by block list and in the DROPPED flows', '')
    .action(async (cidrText: string, opts: { ttl?: string; reason: string }) => {
      const cidr = await cidrArg(cidrText);
      const ttlNs = opts.ttl !== undefined ? parseTtl(opts.ttl) : undefined;
      const req = {
        cidr,
        reason: opts.reason,
        origin: 'cli',
        ...(ttlNs !== undefined && { ttl: { seconds: ttlNs / 1_000_000_000n, nanos: Number(ttlNs % 1_000_000_000n) } }),
      };
      const r = await call<{ entry?: BlockEntry; nodes?: NodeBlockStatus[] }>(globals(), 'add', req);
      const nodes = r.entry?.nodes ?? [];
      const ttl = ttlNs !== undefined ? ` for ${formatGoDuration(ttlNs)}` : '';
      write(`blocked ${r.entry?.cidr ?? cidr}${ttl} on ${nodes.length} node${nodes.length === 1 ? '' : 's'} (${nodes.join(', ')})\n`);
      write(nodeWarnings(r.nodes), true);
    });

  block
    .command('remove <cidr-or-pod>')
    .alias('rm')
    .description('Stop dropping CIDR on every node, or end the isolation of a pod (namespace/name or its address)')
    .action(async (cidrText: string) => {
      const cidr = await cidrArg(cidrText, true);
      const r = await call<{ entry?: BlockEntry; nodes?: NodeBlockStatus[] }>(globals(), 'remove', { cidr });
      const e = r.entry;
      if (e?.isolated_pod) {
        write(`ended the isolation of ${e.isolated_pod} (${e.cidr}) on ${(e.nodes ?? []).join(', ')}\n`);
        return write(nodeWarnings(r.nodes?.filter((n) => n.error)), true);
      }
      write(`unblocked ${e?.cidr ?? cidr} on ${(e?.nodes ?? []).join(', ')} (${thousands(e?.dropped_packets ?? 0n)} packets dropped)\n`);
      write(nodeWarnings(r.nodes?.filter((n) => n.error)), true);
    });

  block
    .command('list')
    .alias('ls')
    .description('The drop list: every entry of every node (addresses dropped at XDP, pods isolated at TC), with what it dropped')
    .addOption(new Option('-o, --output <format>', 'table or json').default('table'))
    .action(async (opts: { output: string }) => {
      if (opts.output !== 'table' && opts.output !== 'json') throw new CliError('usage', `invalid argument "${opts.output}" for "-o, --output" flag: want table or json`);
      const r = await call<{ entries?: BlockEntry[]; nodes?: NodeBlockStatus[] }>(globals(), 'list', {});
      const entries = r.entries ?? [];
      if (opts.output === 'json') {
        for (const e of entries) write(JSON.stringify(blockEntryJson(e)) + '\n');
      } else {
        write(blockListTable(entries));
      }
      write(nodeWarnings(r.nodes), true);
    });
}
