// What mutual TLS on every hop costs the relay fan-in (issue 27): the relay-fanin setup (fake agents
// → flowctl-relay → follow client, batched), plaintext against mTLS agent ↔ relay ↔ client, in
// alternating pairs in the same run so the machine's load hits both alike. Certificates come
// from a throw-away openssl CA in a temp dir, removed afterwards.
//   pnpm exec tsx --conditions=@flowctl/source bench/relay-fanin-tls.ts
//   (env AGENTS, RATE per agent, SECONDS per run, PAIRS to override)
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeCa, makeLeaf } from '../packages/flow/src/testing/pki.js';
import type { Result } from '../packages/relay/src/testing/follow-client.js';
import { viaRelay, type FaninOptions, type FaninTls } from './lib/fanin.js';
import { median, progress, writeSection } from './lib/report.js';

const AGENTS = Number(process.env.AGENTS ?? 10);
const RATE = Number(process.env.RATE ?? 30_000);
const SECONDS = Number(process.env.SECONDS ?? 6);
const PAIRS = Number(process.env.PAIRS ?? 5);
const compiled = existsSync(new URL('../packages/relay/dist/main.js', import.meta.url));
const RELAY_NAME = 'relay.hubble-relay.cilium.io';

function makeTls(dir: string): FaninTls {
  const ca = makeCa(dir, 'ca');
  const nodes = Array.from({ length: AGENTS }, (_, i) => `bench-node-${i + 1}.default.hubble-grpc.cilium.io`);
  return {
    dir,
    ca,
    agent: makeLeaf(dir, ca, 'agent', nodes),
    relayServer: makeLeaf(dir, ca, 'relay-server', [RELAY_NAME]),
    relayClient: makeLeaf(dir, ca, 'relay-client', ['relay-client.hubble-relay.cilium.io']),
    client: makeLeaf(dir, ca, 'client', ['client.example']),
    relayServerName: RELAY_NAME,
  };
}

const fmt = (x: number) => Math.round(x).toLocaleString('en-US');
const load = () => loadavg().map((x) => x.toFixed(1)).join(' / ');
const usPerFlow = (r: Result, k: string) => ((r.cpuSeconds?.[k] ?? NaN) * 1e6) / (r.delivered || 1);

async function main(): Promise<void> {
  const started = Date.now();
  const dir = mkdtempSync(join(tmpdir(), 'fc-bench-tls-'));
  try {
    const tls = makeTls(dir);
    const base: FaninOptions = { tickMs: 20, warmupS: 3, compiled };
    const plain: Result[] = [];
    const secure: Result[] = [];
    const loadBefore = load();
    for (let i = 0; i < PAIRS; i++) {
      // Alternate which goes first, so a load change during a pair does not favour one side.
      const order = i % 2 === 0 ? ['plain', 'mtls'] : ['mtls', 'plain'];
      for (const kind of order) {
        progress(`pair ${i + 1}/${PAIRS}: ${kind}, ${AGENTS} agents × ${fmt(RATE)} flows/s, ${SECONDS}s`);
        const r = await viaRelay(AGENTS, RATE, SECONDS, true, kind === 'mtls' ? { ...base, tls } : base);
        (kind === 'mtls' ? secure : plain).push(r);
        progress(`  ${fmt(median(r.perSecond))} flows/s`);
      }
    }
    const loadAfter = load();
    const rate = (rs: Result[]) => median(rs.flatMap((r) => r.perSecond));
    const ratios = plain.map((p, i) => median(secure[i]!.perSecond) / Math.max(1, median(p.perSecond)));
    const ratio = median(ratios);
    const cpu = (rs: Result[], k: string) => median(rs.map((r) => usPerFlow(r, k))).toFixed(2);
    const row = (rs: Result[]) => `${fmt(rate(rs))} | ${cpu(rs, 'relay')} / ${cpu(rs, 'client')} / ${cpu(rs, 'agents')}`;
    const md = `## Relay fan-in with mutual TLS (\`bench/relay-fanin-tls.ts\`)

The relay fan-in setup (${AGENTS} fake agents × ${fmt(RATE)} flows/s → \`flowctl-relay\` → one follow client,
batched GetFlows) in plaintext, against mutual TLS on every hop: agents serve TLS and require the
relay's client certificate, the relay verifies each agent as \`bench-node-N.default.hubble-grpc.cilium.io\`
and serves TLS requiring the client's certificate (ECDSA P-256 certificates from a throw-away
openssl CA; Node's default TLS settings, TLS 1.3). ${PAIRS} pairs of ${SECONDS} s runs after a 3 s warm-up each, alternating which goes
first. **Load average ${loadBefore} before, ${loadAfter} after** (other engineers' jobs share the 2 cores:
above 2, each process gets what the others leave, and throughput follows that share, not the code).

| run | flows/s delivered (median of all 1 s samples) | CPU µs per delivered flow: relay / client / agents (median of runs) |
|---|---|---|
| plaintext | ${row(plain)} |
| mutual TLS on every hop | ${row(secure)} |

- mTLS / plaintext throughput, median of the per-pair ratios: **${ratio.toFixed(2)}×** (pairs: ${ratios.map((r) => r.toFixed(2)).join(', ')}).
  Goal ≥ 0.8×: ${ratio >= 0.8 ? 'met' : '**missed**'}.
- Relay ${compiled ? 'from \`packages/relay/dist\` (as \`bin/flowctl-relay\`)' : 'from TypeScript sources through tsx (not built)'}.

Command: \`pnpm exec tsx --conditions=@flowctl/source bench/relay-fanin-tls.ts\` (${Math.round((Date.now() - started) / 1000)} s).`;
    writeSection('relay-fanin-tls', md);
    process.stdout.write(`${md}\n`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
