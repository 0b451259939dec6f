// Policy reload time, issue 8 (goal: compile + map update of 1,000 policies under 1 s), step by
// step: parsing the YAML, compiling to map rows, writing the rows into the verdict program's maps.
// Baseline in the same run: parsing with the reference reader alone (the `yaml` document API with
// source positions, which is what parsePolicies did before the fast path), so every step reads as
// "N× reading the files the old way".
// Two policy sets of 1,000 CiliumNetworkPolicies over 10,000 endpoints:
//   A: ingress from a neighbour and from a whole tier (~34 identities) on 5 ports, egress, DNS, a
//      CIDR, every tenth an ingressDeny: 369,600 rows;
//   B: the set of bench/bpf-cost.ts (one neighbour, 6 ports, world on 443): 17,000 rows.
// Map writes go through the real maps (bpf/.output/flowctl.bpf.o loaded with the addon, written
// with packages/agent/src/datapath/policy-maps.ts) when running as root; otherwise they are
// reported as not measured, with the reason.
// Run: pnpm exec tsx --conditions=@flowctl/source bench/policy-compile.ts
import { existsSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { compilePolicies, diffCompiled, parseEndpoints, parseEndpointsReference, parsePolicies, parsePoliciesReference, resolveEndpoints, type CompiledPolicy, type EndpointSet, type EndpointSpec } from '../packages/policy/src/index.js';
import { median, progress, writeSection } from './lib/report.js';
import { neighbourWorkload } from './lib/neighbour-workload.js';

const RUNS = 5;
const MAP_RUNS = 5;
const OBJECT = fileURLToPath(new URL('../bpf/.output/flowctl.bpf.o', import.meta.url));

interface PolicySet {
  name: string;
  what: string;
  eps: EndpointSet;
  yaml: string;
  /** The endpoints as an endpoints file. */
  epsYaml: string;
}

function endpointsFile(specs: EndpointSpec[]): string {
  const lines = specs.map((e) => `  - { name: ${e.name}, namespace: ${e.namespace}, node: ${e.node}, labels: { ${Object.entries(e.labels).map(([k, v]) => `${k}: ${v}`).join(', ')} }, ips: [${e.ips.join(', ')}] }`);
  return `endpoints:\n${lines.join('\n')}\n`;
}

function setA(): PolicySet {
  const NAMESPACES = 20;
  const APPS = 50;
  const specs: EndpointSpec[] = [];
  let n = 0;
  for (let ns = 0; ns < NAMESPACES; ns++)
    for (let app = 0; app < APPS; app++)
      for (let p = 0; p < 10; p++, n++) {
        // Two versions per app: 2,000 distinct label sets, as with a rolling update.
        specs.push({ name: `app${app}-${p}`, namespace: `ns${ns}`, node: `node-${n % 8}`, labels: { app: `app${app}`, version: `v${p % 2}`, tier: `t${app % 3}` }, ips: [`10.${100 + (n >> 16)}.${(n >> 8) & 255}.${n & 255}`] });
      }
  specs.push({ name: 'coredns-5d78c', namespace: 'kube-system', node: 'node-0', labels: { 'k8s-app': 'kube-dns' }, ips: ['10.99.0.53'] });
  const docs: string[] = [];
  for (let ns = 0; ns < NAMESPACES; ns++)
    for (let app = 0; app < APPS; app++) {
      const up = (app + 1) % APPS;
      const down = (app + APPS - 1) % APPS;
      const deny = app % 10 === 0 ? `\n  ingressDeny:\n    - fromEndpoints: [ { matchLabels: { app: app${down}, version: v1 } } ]\n      toPorts: [ { ports: [ { port: "9090", protocol: TCP } ] } ]` : '';
      docs.push(`apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: { name: app${app}-policy, namespace: ns${ns} }
spec:
  endpointSelector: { matchLabels: { app: app${app} } }
  ingress:
    - fromEndpoints: [ { matchLabels: { app: app${down} } }, { matchExpressions: [ { key: tier, operator: In, values: [t${app % 3}] } ] } ]
      toPorts: [ { ports: [ { port: "8080", protocol: TCP }, { port: "9090", endPort: 9093, protocol: TCP } ] } ]
  egress:
    - toEndpoints: [ { matchLabels: { app: app${up} } } ]
      toPorts: [ { ports: [ { port: "8080" } ] } ]
    - toEndpoints: [ { matchLabels: { "k8s:io.kubernetes.pod.namespace": kube-system, k8s-app: kube-dns } } ]
      toPorts: [ { ports: [ { port: "53", protocol: UDP } ] } ]
    - toCIDR: [ 192.0.${app}.0/24 ]${deny}`);
    }
  return { name: 'A', what: 'tier-wide ingress, DNS, CIDR, denies', eps: resolveEndpoints(specs), yaml: docs.join('\n---\n') + '\n', epsYaml: endpointsFile(specs) };
}

function setB(): PolicySet {
  const { specs, yaml } = neighbourWorkload({
    namespaces: 10, apps: 100, podsPerApp: 10, ip: (n) => `10.${100 + (n >> 16)}.${(n >> 8) & 255}.${n & 255}`,
  });
  return { name: 'B', what: 'neighbour ingress/egress, world on 443 (bench/bpf-cost.ts)', eps: resolveEndpoints(specs), yaml, epsYaml: endpointsFile(specs) };
}

interface Times {
  reference: number;
  parse: number;
  compile: number;
  rows: number;
  identities: number;
  /** diffCompiled against the previous compile: the same policies, then one policy changed. */
  diffSame: number;
  diffSameRows: number;
  diffOne: number;
  diffOneRows: number;
  firstWrite?: number;
  /** Incremental writes after the first: one policy's port changed; recompiled, nothing changed. */
  oneWrite?: number;
  oneWriteRows?: number;
  rewrite?: number;
  /** A full write with no record of the maps (reused maps, or after a failed write): read back. */
  resync?: number;
  /** The endpoints file (for scale: read when it changes, not on a policy reload). */
  epsReference?: number;
  epsParse?: number;
}

interface WriteTimes {
  first: number;
  one: number;
  oneRows: number;
  again: number;
  resync: number;
}
/** Writes `base`, then `changed()`, then `same()` (changed, recompiled), then `base` again from no record. */
type Writer = (base: CompiledPolicy, changed: () => CompiledPolicy, same: () => CompiledPolicy) => WriteTimes;

/** The real maps, or why they cannot be used here (printed loudly, and in the report). */
async function kernelWriter(): Promise<Writer | string> {
  if (process.getuid?.() !== 0) return 'not running as root';
  if (!existsSync(OBJECT)) return `${OBJECT} is missing (make -C bpf)`;
  try {
    const { BpfObject } = await import('../addon/lib/index.js');
    const { PolicyMapWriter } = await import('../packages/agent/src/datapath/policy-maps.js');
    const load = () => {
      const obj = BpfObject.open(OBJECT, { name: 'flowctl' });
      obj.setMaxEntries('events', 1 << 16);
      obj.load();
      return obj;
    };
    load().close(); // fail here, before any timing, if the kernel refuses the object
    return (base, changed, same) => {
      // A fresh object each time: the first write finds empty maps, as an agent start does.
      const obj = load();
      try {
        const writer = new PolicyMapWriter({ ipcache: obj.map('ipcache'), policyEnforce: obj.map('policy_enforce'), policy: obj.map('policy'), config: obj.map('config') });
        const timed = (c: CompiledPolicy) => {
          const t = performance.now();
          const stats = writer.writePolicy(c);
          return { ms: performance.now() - t, rows: stats.written + stats.deleted };
        };
        const first = timed(base);
        const one = timed(changed());
        const again = timed(same());
        if (again.rows !== 0) throw new Error(`rewriting the same policies wrote ${again.rows} rows`);
        // What a restart with pinned maps, or the write after a failed one, does: no record, so the
        // maps (holding the changed policy) are read back and compared row by row.
        writer.forget();
        const resync = timed(base);
        if (resync.rows !== one.rows) throw new Error(`read-back write changed ${resync.rows} rows, the incremental one ${one.rows}`);
        return { first: first.ms, one: one.ms, oneRows: one.rows, again: again.ms, resync: resync.ms };
      } finally {
        obj.close();
      }
    };
  } catch (e) {
    return `the kernel or the addon refused: ${(e as Error).message.split('\n')[0]}`;
  }
}

function measure(set: PolicySet, writer: Writer | string): Times {
  const ref: number[] = [];
  const parse: number[] = [];
  const compile: number[] = [];
  let compiled: CompiledPolicy | undefined;
  for (let i = 0; i < RUNS + 1; i++) {
    let t = performance.now();
    const refDocs = parsePoliciesReference(set.yaml, 'policies.yaml');
    const r = performance.now() - t;
    t = performance.now();
    const docs = parsePolicies(set.yaml, 'policies.yaml');
    const p = performance.now() - t;
    if (docs.length !== refDocs.length) throw new Error(`set ${set.name}: fast path read ${docs.length} documents, reference ${refDocs.length}`);
    t = performance.now();
    compiled = compilePolicies(docs, set.eps);
    const c = performance.now() - t;
    if (i === 0) continue; // warm-up
    ref.push(r);
    parse.push(p);
    compile.push(c);
    progress(`set ${set.name} run ${i}: reference parse ${r.toFixed(0)} ms, parse ${p.toFixed(0)} ms, compile ${c.toFixed(0)} ms, ${compiled.entries.length} rows`);
  }
  // A reload that changes one policy (its first port) against one that changes nothing: what a
  // writer that applies only the difference would have to write.
  const docs = parsePolicies(set.yaml, 'policies.yaml');
  const changed = parsePolicies(set.yaml.replace('port: "8080"', 'port: "8443"'), 'policies.yaml');
  const same: number[] = [];
  const one: number[] = [];
  let sameRows = 0;
  let oneRows = 0;
  for (let i = 0; i < 3; i++) {
    const next = compilePolicies(docs, set.eps);
    let t = performance.now();
    const d = diffCompiled(compiled, next);
    same.push(performance.now() - t);
    sameRows = d.upserts.length + d.deletes.length;
    const alt = compilePolicies(changed, set.eps);
    t = performance.now();
    const d1 = diffCompiled(next, alt);
    one.push(performance.now() - t);
    oneRows = d1.upserts.length + d1.deletes.length;
    compiled = next;
  }
  if (sameRows !== 0 || oneRows === 0) throw new Error(`set ${set.name}: diff of the same policies has ${sameRows} rows, of one change ${oneRows}`);
  const epsRef: number[] = [];
  const epsFast: number[] = [];
  // Both sets have 10,000 endpoints: the file is read for set A only, to keep the run short.
  for (let i = 0; i < (set.name === 'A' ? 3 : 0); i++) {
    let t = performance.now();
    const a = parseEndpointsReference(set.epsYaml, 'endpoints.yaml');
    epsRef.push(performance.now() - t);
    t = performance.now();
    const b = parseEndpoints(set.epsYaml, 'endpoints.yaml');
    epsFast.push(performance.now() - t);
    if (a.endpoints.length !== set.eps.endpoints.length || b.endpoints.some((e, j) => e.identity !== set.eps.endpoints[j]!.identity)) {
      throw new Error(`set ${set.name}: the endpoints file does not read back as the endpoints`);
    }
  }
  const times: Times = {
    epsReference: epsRef.length ? median(epsRef) : undefined,
    epsParse: epsFast.length ? median(epsFast) : undefined,
    reference: median(ref),
    parse: median(parse),
    compile: median(compile),
    rows: compiled!.entries.length,
    identities: new Set(set.eps.endpoints.map((e) => e.identity)).size,
    diffSame: median(same),
    diffSameRows: sameRows,
    diffOne: median(one),
    diffOneRows: oneRows,
  };
  if (typeof writer !== 'string') {
    const runs: WriteTimes[] = [];
    for (let i = 0; i < MAP_RUNS; i++) {
      const w = writer(compilePolicies(docs, set.eps), () => compilePolicies(changed, set.eps), () => compilePolicies(changed, set.eps));
      if (w.oneRows !== oneRows) throw new Error(`set ${set.name}: the one-policy write changed ${w.oneRows} rows, diffCompiled says ${oneRows}`);
      runs.push(w);
      progress(`set ${set.name} map run ${i + 1}: first write ${w.first.toFixed(0)} ms, one policy ${w.one.toFixed(1)} ms, unchanged ${w.again.toFixed(1)} ms, read-back ${w.resync.toFixed(0)} ms`);
    }
    times.firstWrite = median(runs.map((w) => w.first));
    times.oneWrite = median(runs.map((w) => w.one));
    times.oneWriteRows = oneRows;
    times.rewrite = median(runs.map((w) => w.again));
    times.resync = median(runs.map((w) => w.resync));
  }
  return times;
}

async function main(): Promise<void> {
  const writer = await kernelWriter();
  if (typeof writer === 'string') progress(`!!! map writes NOT measured: ${writer}`);
  const sets = [setA(), setB()];
  const results = sets.map((s) => measure(s, writer));
  const ms = (x: number | undefined) => (x === undefined ? 'not measured' : `${x < 10 ? x.toFixed(1) : x.toFixed(0)} ms`);
  const ratio = (x: number | undefined, base: number) => (x === undefined ? '' : ` (${(x / base).toFixed(2)}×)`);
  const col = (f: (t: Times) => string) => results.map(f).join(' | ');
  const total = (t: Times) => (t.firstWrite === undefined ? undefined : t.parse + t.compile + t.firstWrite);
  const goal = (t: Times) => {
    const v = total(t) ?? t.parse + t.compile;
    const first = `first load ${v < 1000 ? 'met' : 'not met'} (${v.toFixed(0)} ms${total(t) === undefined ? ', without the map write' : ''})`;
    if (t.oneWrite === undefined) return first;
    const one = t.parse + t.compile + t.oneWrite;
    return `${first}, reload with one policy changed ${one < 1000 ? 'met' : 'not met'} (${one.toFixed(0)} ms)`;
  };
  const md = `## Policy reload: parse, compile, map write (issue 8)

1,000 CiliumNetworkPolicies over 10,000 endpoints, two shapes:
${sets.map((s, i) => `set ${s.name}: ${s.what}; ${results[i]!.identities.toLocaleString('en')} identities → ${results[i]!.rows.toLocaleString('en')} policy-map rows`).join(';\n')}.
Parse and compile: median of ${RUNS} runs after one warm-up; diffs: median of 3; map writes: median of ${MAP_RUNS}, each into a freshly
loaded \`flowctl.bpf.o\` with \`PolicyMapWriter.writePolicy\` (packages/agent/src/datapath/policy-maps.ts).
Baseline, same run: reading the same YAML with the reference reader only (the \`yaml\` document API,
what \`parsePolicies\` did before its js-yaml fast path; it is still what reports errors).

| step | set ${sets.map((s) => s.name).join(' | set ')} |
|---|---|---|
| parse, reference reader (baseline) | ${col((t) => `${ms(t.reference)} (1.00×)`)} |
| parse (\`parsePolicies\`) | ${col((t) => ms(t.parse) + ratio(t.parse, t.reference))} |
| compile to map rows | ${col((t) => ms(t.compile) + ratio(t.compile, t.reference))} |
| write the policy maps, first time (empty maps, batches) | ${col((t) => ms(t.firstWrite) + ratio(t.firstWrite, t.reference))} |
| parse + compile + first write | ${col((t) => ms(total(t)) + ratio(total(t), t.reference))} |
| write after one policy's port changed (incremental) | ${col((t) => `${ms(t.oneWrite)}${ratio(t.oneWrite, t.reference)}, ${t.oneWriteRows ?? '–'} rows`)} |
| parse + compile + incremental write, one policy changed | ${col((t) => (t.oneWrite === undefined ? 'not measured' : ms(t.parse + t.compile + t.oneWrite) + ratio(t.parse + t.compile + t.oneWrite, t.reference)))} |
| write again at a new revision, rows unchanged | ${col((t) => ms(t.rewrite) + ratio(t.rewrite, t.reference))} |
| full write with no record of the maps (reused maps, after a failed write): read back | ${col((t) => ms(t.resync) + ratio(t.resync, t.reference))} |
| \`diffCompiled\` after a recompile, nothing changed | ${col((t) => `${ms(t.diffSame)}${ratio(t.diffSame, t.reference)}, ${t.diffSameRows} rows to write`)} |
| \`diffCompiled\` after one policy's port changed | ${col((t) => `${ms(t.diffOne)}${ratio(t.diffOne, t.reference)}, ${t.diffOneRows} rows to write`)} |
| for scale: the 10,001-endpoint file, reference reader (median of 3) | ${col((t) => (t.epsReference === undefined ? '–' : ms(t.epsReference) + ratio(t.epsReference, t.reference)))} |
| for scale: the same file, \`parseEndpoints\` | ${col((t) => (t.epsParse === undefined ? '–' : ms(t.epsParse) + ratio(t.epsParse, t.reference)))} |

Goal, 1,000 policies compiled and in the maps under 1 s: set A ${goal(results[0]!)}; set B ${goal(results[1]!)}.
${typeof writer === 'string' ? `\n**Map writes not measured: ${writer}.**\n` : `
\`PolicyMapWriter\` remembers the compiled policy it last wrote into its map set and writes only
\`diffCompiled\`'s rows, packed into one \`BPF_MAP_UPDATE_BATCH\` / \`BPF_MAP_DELETE_BATCH\` call per
65,536 rows (\`BpfMap.updateBatch\`/\`deleteBatch\` in the addon). Without a record (the first write,
maps it did not fill, or after a failed write) it reads the maps back with \`BPF_MAP_LOOKUP_BATCH\`
(\`BpfMap.lookupBatch\`, 8,192 rows per call; one call for empty maps) and compares packed keys in a
typed-array hash index, then writes the difference in batches. Before this, every
write was one \`lookup\` and one \`update\` syscall per row (about 9 s for set A, first write or reload).
Set A's first write is the kernel inserting 369,600 elements into the \`BPF_F_NO_PREALLOC\` hash
(an allocation each); an incremental write is mostly \`diffCompiled\` comparing the two compiles.
The machine is shared (2 cores, other builds and tests running): single runs vary by 2×.
`}
Reproduce: \`pnpm exec tsx --conditions=@flowctl/source bench/policy-compile.ts\` (as root for the map writes, after \`make -C bpf\`)`;
  writeSection('policy-compile', md);
  process.stdout.write(md + '\n');
}

await main();
