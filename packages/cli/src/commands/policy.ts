// `flowctl policy validate|check|list`: offline against policy files and an endpoints file, or
// against the policies in force on running agents (flowctl.policy.v1.PolicyService), through the
// same compiler and lookup the agent uses (@flowctl/policy), so a what-if answer here is the
// verdict the datapath would give.
import type { Command } from 'commander';
import type { LearnedFqdn, NodeLearnedFqdns, NodePolicies, PolicyClient } from '@flowctl/flow/policy-service';
import type { ServiceError } from '@grpc/grpc-js';
import { isFlowctlError } from '@flowctl/flow/errors';
import { CliError } from '../errors.js';
import type { TlsOptions } from '../client.js';
import { tlsOptionsOf } from '../options/tls.js';
import { renderTable } from '../printer/table.js';
import {
  canonicalIp,
  RESERVED_IDENTITIES,
  noDuplicatePolicies,
  checkConnection,
  endpointIdentities,
  compilePolicies,
  formatSelector,
  identityForIp,
  labelListFor,
  loadEndpointsFile,
  loadPolicyDir,
  loadPolicyFile,
  policyFiles,
  parseEndpoints,
  parsePolicies,
  resolveEndpoints,
  type CompiledPolicy,
  type DirectionVerdict,
  type EndpointSet,
  type PolicyDoc,
  type PolicyRef,
} from '@flowctl/policy';

/** Exit status of `policy check`: scripts can test the verdict. */
export const EXIT_ALLOWED = 0;
export const EXIT_DENIED = 1;
export const EXIT_INVALID = 2;

interface Out {
  out: (s: string) => void;
  err: (s: string) => void;
}
const stdio: Out = { out: (s) => process.stdout.write(s + '\n'), err: (s) => process.stderr.write(s + '\n') };

const collect = (v: string, prev: string[]): string[] => [...prev, v];

function fail(io: Out, status: ExitStatus, e: unknown, code: number): void {
  if (isFlowctlError(e, 'POLICY') || isFlowctlError(e, 'CONFIG') || e instanceof RangeError || e instanceof CliError) {
    io.err(`error: ${e.message}`);
    status.exitCode = code;
    return;
  }
  throw e;
}

function loadPolicies(paths: string[]): PolicyDoc[] {
  return noDuplicatePolicies(paths.flatMap((p) => loadPolicyDir(p)));
}

function refName(p: { namespace: string; name: string }): string {
  return p.namespace ? `${p.namespace}/${p.name}` : p.name;
}

function refText(p: PolicyRef): string {
  return `${p.kind} ${refName(p)}`;
}

/** `app=a`, `k8s:app=a`, `app=a,tier=b` → labels; keys keep no source prefix. */
function parseLabels(args: string[], flag: string): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const a of args.flatMap((x) => x.split(','))) {
    const s = a.trim();
    if (!s) continue;
    const body = s.startsWith('k8s:') ? s.slice(4) : s.startsWith('any:') ? s.slice(4) : s;
    const eq = body.indexOf('=');
    if (eq <= 0) throw new CliError('usage', `${flag} ${JSON.stringify(s)}: expected key=value`);
    labels[body.slice(0, eq)] = body.slice(eq + 1);
  }
  return labels;
}

function parsePort(s: string): { port: number; proto: string } {
  const m = /^(\d{1,5})(?:\/(tcp|udp|sctp))?$/i.exec(s.trim());
  const port = m ? Number(m[1]) : NaN;
  if (!m || port > 65535) throw new CliError('usage', `--port ${JSON.stringify(s)}: expected PORT[/TCP|UDP|SCTP], e.g. 8080/TCP`);
  return { port, proto: (m[2] ?? 'TCP').toUpperCase() };
}

const DEFAULT_SERVER = 'localhost:4245';

/** --server of the subcommand, else of the program (flowctl --server ... policy ...), else the environment. */
function serverOf(cmd: Command): { server: string; timeoutMs: number; tls: TlsOptions } {
  const own = cmd.opts<{ server?: string }>().server;
  const g = cmd.optsWithGlobals<{ server?: string; timeout?: number }>();
  return { server: own ?? g.server ?? (process.env.FLOWCTL_SERVER || DEFAULT_SERVER), timeoutMs: typeof g.timeout === 'number' ? g.timeout : 5000, tls: tlsOptionsOf(cmd) };
}

/** One PolicyService call to `server`; `unimplemented` says what a server without it lacks. */
async function policyCall<T>(
  server: string, timeoutMs: number, tls: TlsOptions, unimplemented: string,
  call: (c: PolicyClient, cb: (e: ServiceError | null, r: T) => void) => void,
): Promise<T> {
  const [{ status }, { PolicyClient }, { channelFor }] = await Promise.all([
    import('@grpc/grpc-js'),
    import('@flowctl/flow/policy-service'),
    import('../client.js'),
  ]);
  const ch = channelFor(server, tls);
  const client = new PolicyClient(ch.address, ch.creds, ch.options);
  try {
    return await new Promise<T>((resolve, reject) => {
      client.waitForReady(Date.now() + timeoutMs, (err) => {
        if (err) return reject(new CliError('server', `cannot reach the server at ${server}: ${err.message} (is flowctl-agent or flowctl-relay running?)`));
        call(client, (e, r) => {
          if (!e) return resolve(r);
          if (e.code === status.UNIMPLEMENTED) reject(new CliError('server', `${server} ${unimplemented}`));
          else if (e.code === status.INVALID_ARGUMENT) reject(new CliError('usage', e.details || e.message));
          else reject(new CliError('server', `${server}: ${status[e.code] ?? e.code}: ${e.details || e.message}`));
        });
      });
    });
  } finally {
    client.close();
  }
}

/** The policies in force on each node behind `server` (an agent: one node; a relay: every node). */
function fetchInForce(server: string, timeoutMs: number, tls: TlsOptions): Promise<NodePolicies[]> {
  return policyCall(server, timeoutMs, tls, 'does not serve the policies in force (flowctl.policy.v1.PolicyService): use --policy-dir, or ask an agent directly',
    (c, cb) => c.list({}, (e, r) => cb(e, r?.nodes)));
}

/** What the endpoints behind `server` learned for `name` (toFQDNs), with the node of each. */
async function fetchLearned(server: string, timeoutMs: number, tls: TlsOptions, name: string, endpointIp?: string): Promise<NodeLearnedFqdns[]> {
  return policyCall(server, timeoutMs, tls, 'does not say what its endpoints learned from DNS (flowctl.policy.v1.PolicyService/ListLearnedFqdns)',
    (c, cb) => c.listLearnedFqdns({ name, ...(endpointIp && { endpoint_ip: endpointIp }) }, (e, r) => cb(e, r?.nodes)));
}

/** One line per address learned: who resolved the name to what, through which selector, for how long. */
export function learnedLines(name: string, nodes: NodeLearnedFqdns[], from?: string): string[] {
  const rows = nodes.flatMap((n) => n.learned.map((l) => ({ node: n.node, l })));
  const who = (l: LearnedFqdn) => (l.endpoint ? `${l.endpoint} (${l.endpoint_ip})` : l.endpoint_ip);
  if (!rows.length) {
    const asked = nodes.filter((n) => !n.error).map((n) => n.node);
    return [`  learned on ${asked.join(', ') || 'no node'}: ${from ?? 'no endpoint'} has not resolved ${name} through a toFQDNs selector (or it expired)`];
  }
  return rows.map(({ node, l }) => `  learned on ${node}: ${who(l)} resolved ${l.name || name} to ${l.address} (toFQDNs ${l.selectors.join(', ')}; expires in ${l.expires_in_s}s)`);
}

/** The inputs of one node's policy, parsed exactly as the agent parsed them. */
function nodeInputs(n: NodePolicies): { docs: PolicyDoc[]; endpoints: EndpointSet } {
  const docs = noDuplicatePolicies(n.files.flatMap((f) => parsePolicies(f.text, f.file)));
  const endpoints = n.endpoints_yaml ? parseEndpoints(n.endpoints_yaml, n.endpoints_file || `${n.node}:endpoints`) : { endpoints: [], byIp: new Map() };
  return { docs, endpoints };
}

function reportNodeProblems(io: Out, nodes: NodePolicies[]): NodePolicies[] {
  for (const n of nodes) {
    if (n.error !== undefined) io.err(`Warning: node ${n.node}: ${n.error}`);
    else if (n.rejected !== undefined) io.err(`Warning: node ${n.node}: newest policy rejected, the previous one stays in force: ${n.rejected}`);
  }
  const ok = nodes.filter((n) => n.error === undefined);
  if (ok.length === 0) throw new CliError('server', nodes.length ? 'no node answered with its policies' : 'the server knows no nodes');
  return ok;
}

interface Party {
  describe: string;
  identity: number;
}

function describeVerdict(v: DirectionVerdict, who: string): string {
  const where = `${v.direction} of ${who}`;
  if (!v.enforced) return `${where}: allowed (no policy selects it for ${v.direction})`;
  const names = v.policies.map(refText).join(', ');
  if (v.allowed) return `${where}: allowed by ${names}${v.fqdn ? ` (toFQDNs ${v.fqdn})` : ''}`;
  if (v.defaultDeny) return `${where}: denied by default (no rule allows it; selected by ${names})`;
  return `${where}: denied by ${names} (deny rule)`;
}

function policySummary(d: PolicyDoc): { selects: string; ingress: string; egress: string } {
  const dir = (which: 'ingress' | 'egress'): string => {
    const secs = d.rules.flatMap((r) => (r[which] === null ? [] : [r[which]!]));
    if (secs.length === 0) return '-';
    const all = secs.flat();
    const allow = all.filter((s) => !s.deny).length;
    const deny = all.length - allow;
    return `${allow} allow${deny ? `, ${deny} deny` : ''}`;
  };
  return { selects: d.rules.map((r) => formatSelector(r.subject)).join(' | '), ingress: dir('ingress'), egress: dir('egress') };
}

interface CheckOptions {
  from: string[]; fromNamespace: string; fromIp?: string; to: string[]; toNamespace: string; toIp?: string; toFqdn: string[];
  port: string; policyDir: string[]; endpoints?: string; server?: string; node?: string; output: string;
}

interface CheckQuery extends Omit<CheckOptions, 'port'> {
  port: number;
  proto: string;
  fromLabels: Record<string, string> | undefined;
  toLabels: Record<string, string> | undefined;
}

interface CheckResult {
  v: ReturnType<typeof checkConnection>;
  from: Party;
  to: Party;
  port: number;
  proto: string;
}

/** One what-if answer from policy documents and an endpoint set, compiled as the agent compiles them. */
function evaluate(q: CheckQuery, docs: PolicyDoc[], fileEps: EndpointSet, hostIps: readonly string[]): CheckResult {
  // Pods named by labels join the endpoint set, so they get the identity the agent would
  // give a pod with exactly these labels (shared with any real pod that has them).
  const extra = [
    ...(q.fromLabels ? [{ name: '\u0000check-from', namespace: q.fromNamespace, node: '', labels: q.fromLabels, ips: [] }] : []),
    ...(q.toLabels ? [{ name: '\u0000check-to', namespace: q.toNamespace, node: '', labels: q.toLabels, ips: [] }] : []),
  ];
  const eps = resolveEndpoints(
    [...fileEps.endpoints.map((e) => ({ name: e.name, namespace: e.namespace, node: e.node, labels: e.labels, ips: e.ips, workloads: e.workloads, ...(e.ports && { ports: e.ports }) })), ...extra],
    fileEps.namespaces,
  );
  const compiled: CompiledPolicy = compilePolicies(docs, eps);
  const party = (labels: Record<string, string> | undefined, ns: string, ip: string | undefined, synth: string): Party => {
    if (ip !== undefined) {
      const identity = identityForIp(compiled, eps, ip, hostIps);
      const canon = canonicalIp(ip);
      const ep = canon === undefined ? undefined : eps.byIp.get(canon);
      return { identity, describe: ep ? `${ep.namespace}/${ep.name} (${ip})` : `${ip}` };
    }
    const ep = eps.endpoints.find((e) => e.name === synth)!;
    return { identity: ep.identity, describe: `${ns}/{${labelListFor(ns, labels!).filter((l) => !l.startsWith('k8s:io.kubernetes.pod.namespace=')).map((l) => l.slice(4)).join(',')}}` };
  };
  const from = party(q.fromLabels, q.fromNamespace, q.fromIp, '\u0000check-from');
  // --to-fqdn without --to-ip: an address outside the cluster, learned through the names.
  const to = q.toFqdn.length && !q.toIp ? { identity: RESERVED_IDENTITIES.world, describe: '' } : party(q.toLabels, q.toNamespace, q.toIp, '\u0000check-to');
  if (q.toFqdn.length) to.describe = `${q.toFqdn.join(', ')}${q.toIp ? ` (${to.describe})` : ''}`;
  return { v: checkConnection(compiled, from.identity, to.identity, q.port, q.proto, q.toFqdn), from, to, port: q.port, proto: q.proto };
}

/**
 * A label selector that matches no endpoint of its namespace (`default` unless given) is most
 * often a missing --from-namespace/--to-namespace: say so, naming the namespaces where it matches.
 */
function selectorWarnings(q: CheckQuery, eps: EndpointSet): string[] {
  if (!eps.endpoints.length) return [];
  const out: string[] = [];
  for (const [flag, labels, ns] of [['--from', q.fromLabels, q.fromNamespace], ['--to', q.toLabels, q.toNamespace]] as const) {
    if (!labels) continue;
    const matching = eps.endpoints.filter((e) => Object.entries(labels).every(([k, v]) => e.labels[k] === v));
    if (matching.some((e) => e.namespace === ns)) continue;
    const text = Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(',');
    const elsewhere = [...new Set(matching.map((e) => e.namespace))].sort();
    out.push(`Warning: ${flag} ${text} matches no endpoint in namespace ${ns}` +
      (elsewhere.length ? `; it matches in ${elsewhere.join(', ')} (${flag}-namespace ${elsewhere[0]})` : ', nor in any other namespace'));
  }
  return out;
}

/** What the endpoints learned for each --to-fqdn name (server mode), by name. */
type Learned = { name: string; nodes: NodeLearnedFqdns[] }[];

function printCheck(io: Out, output: string, r: CheckResult, where?: { nodes: string[]; revision: number; audit: boolean }, learned?: Learned): void {
  const { v, from, to, port, proto } = r;
  if (output === 'json') {
    const dir = (d: DirectionVerdict) => ({
      enforced: d.enforced,
      allowed: d.allowed,
      default_deny: d.defaultDeny,
      ...(d.fqdn && { fqdn: d.fqdn }),
      policies: d.policies.map((p) => ({ name: p.name, namespace: p.namespace, kind: p.kind })),
    });
    io.out(JSON.stringify({
      verdict: v.allowed ? 'ALLOWED' : 'DENIED',
      from: { identity: from.identity, endpoint: from.describe },
      to: { identity: to.identity, endpoint: to.describe },
      port,
      protocol: proto,
      egress: dir(v.egress),
      ingress: dir(v.ingress),
      ...(where && { nodes: where.nodes, revision: where.revision, audit: where.audit }),
      ...(learned && { learned: learned.map((l) => ({ name: l.name, addresses: l.nodes.flatMap((n) => n.learned.map((x) => ({ node: n.node, ...x }))) })) }),
    }));
    return;
  }
  io.out(`${v.allowed ? 'ALLOWED' : 'DENIED'}  ${from.describe} -> ${to.describe} ${port}/${proto}`);
  io.out(`  ${describeVerdict(v.egress, from.describe)}`);
  io.out(`  ${describeVerdict(v.ingress, to.describe)}`);
  if (where) {
    const audit = where.audit && !v.allowed ? ' (audit mode: reported as AUDIT, not dropped)' : '';
    io.out(`  policies in force on ${where.nodes.join(', ')} (revision ${where.revision})${audit}`);
  }
  for (const l of learned ?? []) for (const line of learnedLines(l.name, l.nodes, r.from.describe)) io.out(line);
}

/** The exit status a command asks for without failing (check: allowed or denied); the bin exits with it. */
export interface ExitStatus {
  exitCode: number;
}

export function registerPolicyCommand(program: Command, status: ExitStatus, io: Out = stdio): void {
  const policy = program.command('policy').description('validate, list and check network policies (CiliumNetworkPolicy, NetworkPolicy)');

  policy
    .command('validate')
    .description('check policy files offline; exit 0 when every file is valid, 1 otherwise')
    .requiredOption('-f, --file <path>', 'policy file or directory of *.yaml (repeatable)', collect, [])
    .option('--endpoints <file>', 'also compile against this endpoints file')
    .action((opts: { file: string[]; endpoints?: string }) => {
      let ok = true;
      const docs: PolicyDoc[] = [];
      for (const f of opts.file) {
        // Every file of a directory is read, so one run reports every bad file.
        let fileOk = true;
        const d: PolicyDoc[] = [];
        try {
          for (const file of policyFiles(f)) {
            try {
              d.push(...loadPolicyFile(file));
            } catch (e) {
              fileOk = false;
              fail(io, status, e, 1);
            }
          }
        } catch (e) {
          fileOk = false;
          fail(io, status, e, 1);
        }
        ok &&= fileOk;
        docs.push(...d);
        if (fileOk) io.out(`${f}: valid (${d.length} ${d.length === 1 ? 'policy' : 'policies'}${d.length ? ': ' + d.map((p) => `${p.kind} ${refName(p)}`).join(', ') : ''})`);
      }
      const dns = docs.filter((d) => d.dnsRules);
      if (dns.length) io.err(`Warning: toPorts rules.dns (${dns.map((d) => `${d.kind} ${refName(d)}`).join(', ')}) accepted but not enforced: every DNS query name is allowed; toFQDNs learns from all answers`);
      if (ok) {
        try {
          noDuplicatePolicies(docs);
        } catch (e) {
          ok = false;
          fail(io, status, e, 1);
        }
      }
      if (ok && opts.endpoints) {
        try {
          const c = compilePolicies(docs, loadEndpointsFile(opts.endpoints));
          io.out(`compiled against ${opts.endpoints}: ${c.entries.length} map entries, ${c.enforced.size} identities enforced`);
        } catch (e) {
          ok = false;
          fail(io, status, e, 1);
        }
      }
      if (!ok) status.exitCode = 1;
    });

  policy
    .command('check')
    .description(`what-if: would a connection be allowed? prints ALLOWED or DENIED and the policies responsible (exit ${EXIT_ALLOWED} allowed, ${EXIT_DENIED} denied, ${EXIT_INVALID} bad input); without --policy-dir, against the policies in force on the agents behind --server`)
    .option('--from <key=value>', 'source pod label (repeatable, or comma-separated)', collect, [])
    .option('--from-namespace <ns>', 'source namespace', 'default')
    .option('--from-ip <ip>', 'source address instead of labels (an endpoint from --endpoints, a CIDR peer, or world)')
    .option('--to <key=value>', 'destination pod label (repeatable, or comma-separated)', collect, [])
    .option('--to-namespace <ns>', 'destination namespace', 'default')
    .option('--to-ip <ip>', 'destination address instead of labels')
    .option('--to-fqdn <name>', 'the source resolved this DNS name to the destination (toFQDNs); with --to-ip, to that address, else to one outside the cluster (repeatable)', collect, [])
    .requiredOption('--port <port[/proto]>', 'destination port and protocol, e.g. 8080/TCP (default TCP)')
    .option('--policy-dir <dir>', 'policy directory or file (repeatable); without it, ask the server', collect, [])
    .option('--endpoints <file>', 'endpoints file (identities of the pods named by --from-ip/--to-ip and of peers)')
    .option('--server <address>', 'agent or relay whose policies in force are checked (default: flowctl --server, $FLOWCTL_SERVER, localhost:4245)')
    .option('--node <name>', 'with --server: only this node')
    .option('-o, --output <format>', 'text or json', 'text')
    .action(async (opts: CheckOptions, cmd: Command) => {
      try {
        if (opts.output !== 'text' && opts.output !== 'json') throw new CliError('usage', `--output ${JSON.stringify(opts.output)}: expected text or json`);
        if (opts.fromIp && opts.from.length) throw new CliError('usage', '--from and --from-ip are exclusive');
        if (opts.toIp && opts.to.length) throw new CliError('usage', '--to and --to-ip are exclusive');
        if (!opts.fromIp && !opts.from.length) throw new CliError('usage', 'policy check needs --from LABEL or --from-ip IP');
        if (opts.toFqdn.length && opts.to.length) throw new CliError('usage', '--to and --to-fqdn are exclusive (toFQDNs never selects pods)');
        if (!opts.toIp && !opts.to.length && !opts.toFqdn.length) throw new CliError('usage', 'policy check needs --to LABEL, --to-ip IP or --to-fqdn NAME');
        const { port, proto } = parsePort(opts.port);
        const fromLabels = opts.fromIp ? undefined : parseLabels(opts.from, '--from');
        const toLabels = opts.toIp || opts.toFqdn.length ? undefined : parseLabels(opts.to, '--to');
        const q: CheckQuery = { ...opts, port, proto, fromLabels, toLabels };
        const fileEps = opts.endpoints ? loadEndpointsFile(opts.endpoints) : undefined;

        if (opts.policyDir.length) {
          if (opts.node) throw new CliError('usage', '--node needs a server: drop --policy-dir');
          const eps = fileEps ?? { endpoints: [], byIp: new Map() };
          for (const w of selectorWarnings(q, eps)) io.err(w);
          const r = evaluate(q, loadPolicies(opts.policyDir), eps, []);
          printCheck(io, opts.output, r);
          status.exitCode = r.v.allowed ? EXIT_ALLOWED : EXIT_DENIED;
          return;
        }

        const { server, timeoutMs, tls } = serverOf(cmd);
        let nodes = reportNodeProblems(io, await fetchInForce(server, timeoutMs, tls));
        if (opts.node) {
          nodes = nodes.filter((n) => n.node === opts.node);
          if (!nodes.length) throw new CliError('usage', `--node ${opts.node}: no such node behind ${server}`);
        }
        // What the source (or any endpoint) really learned for each name; a server without the call is said once.
        let learned: Learned | undefined;
        if (opts.toFqdn.length) {
          try {
            learned = [];
            for (const name of opts.toFqdn) learned.push({ name, nodes: await fetchLearned(server, timeoutMs, tls, name, opts.fromIp) });
          } catch (e) {
            if (!(e instanceof CliError) || e.code !== 'server') throw e;
            io.err(`Warning: ${e.message}`);
            learned = undefined;
          }
        }
        // Nodes with the same policy inputs give the same answer: evaluate (and print) each group once.
        const groups = new Map<string, NodePolicies[]>();
        for (const n of nodes) {
          const key = JSON.stringify([n.files, n.endpoints_yaml, n.audit]);
          groups.set(key, [...(groups.get(key) ?? []), n]);
        }
        let allowed = true;
        const warned = new Set<string>();
        for (const group of groups.values()) {
          const n = group[0]!;
          const inputs = nodeInputs(n);
          for (const w of selectorWarnings(q, fileEps ?? inputs.endpoints)) if (!warned.has(w)) io.err(w), warned.add(w);
          const r = evaluate(q, inputs.docs, fileEps ?? inputs.endpoints, n.host_ips);
          const where = { nodes: group.map((g) => g.node), revision: n.revision, audit: n.audit };
          const names = new Set(where.nodes);
          printCheck(io, opts.output, r, where, learned?.map((l) => ({ name: l.name, nodes: l.nodes.filter((x) => names.has(x.node)) })));
          allowed &&= r.v.allowed;
        }
        status.exitCode = allowed ? EXIT_ALLOWED : EXIT_DENIED;
      } catch (e) {
        fail(io, status, e, EXIT_INVALID);
      }
    });

  policy
    .command('list')
    .description('list the policies in force on each node behind --server (an agent or a relay), or offline from --policy-dir')
    .option('--policy-dir <dir>', 'policy directory or file (repeatable); without it, ask the server', collect, [])
    .option('--endpoints <file>', 'also show how many endpoints each policy selects')
    .option('--server <address>', 'agent or relay to ask (default: flowctl --server, $FLOWCTL_SERVER, localhost:4245)')
    .option('-o, --output <format>', 'table or json', 'table')
    .action(async (opts: { policyDir: string[]; endpoints?: string; server?: string; output: string }, cmd: Command) => {
      try {
        if (opts.output !== 'table' && opts.output !== 'json') throw new CliError('usage', `--output ${JSON.stringify(opts.output)}: expected table or json`);
        interface Row { node?: NodePolicies; docs: PolicyDoc[]; selected: number[] | undefined }
        const rows: Row[] = [];
        const selectedBy = (docs: PolicyDoc[], eps: EndpointSet): number[] => {
          const c = compilePolicies(docs, eps);
          return docs.map((_, i) => {
            const ids = new Set<number>();
            for (const [id, sb] of c.selectedBy) if (sb.ingress.includes(i + 1) || sb.egress.includes(i + 1)) ids.add(id);
            return eps.endpoints.filter((e) => endpointIdentities(c, e).some((id) => ids.has(id))).length;
          });
        };
        if (opts.policyDir.length) {
          const docs = loadPolicies(opts.policyDir);
          rows.push({ docs, selected: opts.endpoints ? selectedBy(docs, loadEndpointsFile(opts.endpoints)) : undefined });
        } else {
          const { server, timeoutMs, tls } = serverOf(cmd);
          const fileEps = opts.endpoints ? loadEndpointsFile(opts.endpoints) : undefined;
          for (const n of reportNodeProblems(io, await fetchInForce(server, timeoutMs, tls))) {
            const inputs = nodeInputs(n);
            rows.push({ node: n, docs: inputs.docs, selected: selectedBy(inputs.docs, fileEps ?? inputs.endpoints) });
          }
        }
        const withNode = rows.some((r) => r.node);
        const withEps = rows.some((r) => r.selected);
        if (opts.output === 'json') {
          for (const r of rows) {
            for (const [i, d] of r.docs.entries()) {
              const s = policySummary(d);
              io.out(JSON.stringify({
                ...(r.node && { node: r.node.node, revision: r.node.revision, audit: r.node.audit }),
                name: d.name, namespace: d.namespace, kind: d.kind, labels: d.labels, selects: s.selects, ingress: s.ingress, egress: s.egress,
                ...(r.selected ? { endpoints: r.selected[i] } : {}), file: d.file, document: d.document,
              }));
            }
          }
          return;
        }
        const head = [...(withNode ? ['NODE', 'REVISION'] : []), 'NAMESPACE', 'NAME', 'KIND', 'SELECTS', ...(withEps ? ['ENDPOINTS'] : []), 'INGRESS', 'EGRESS', 'SOURCE'];
        const table_: string[][] = [];
        for (const r of rows) {
          const node = r.node ? [r.node.node + (r.node.audit ? ' (audit)' : ''), String(r.node.revision)] : [];
          if (r.node && r.docs.length === 0) table_.push([...node, '-', '(no policies in force)', ...Array<string>(head.length - node.length - 2).fill('')]);
          for (const [i, d] of r.docs.entries()) {
            const s = policySummary(d);
            table_.push([...node, d.namespace || '-', d.name, d.kind, s.selects, ...(withEps ? [String(r.selected?.[i] ?? '-')] : []), s.ingress, s.egress, `${d.file}#${d.document}`]);
          }
        }
        io.out(renderTable(head, table_).trimEnd());
      } catch (e) {
        fail(io, status, e, 1);
      }
    });
}
