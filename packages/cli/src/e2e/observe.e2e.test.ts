// flowctl as a process against a real gRPC Observer server in this process.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeCorpus } from '@flowctl/flow/testing';
import { encodeResponse } from '@flowctl/flow/json';
import { NodeState } from '@flowctl/flow/gen/relay/relay';
import { Verdict } from '@flowctl/flow/gen/flow/flow';
import type { GetFlowsResponse } from '@flowctl/flow/gen/observer/observer';
import { flowctl, startTestObserver, type TestServer } from './helpers.js';

const corpus = makeCorpus(50, 7, {});
let srv: TestServer;

beforeAll(async () => {
  srv = await startTestObserver(corpus, {
    status: {
      num_flows: 2771n, max_flows: 8190n, seen_flows: 2771n, uptime_ns: 301_515_181_665n, num_connected_nodes: 2,
      num_unavailable_nodes: 1, unavailable_nodes: ['node-3'], version: 'flowctl-relay v0.1.0', flows_rate: 23.456,
    },
    nodes: {
      nodes: [
        { name: 'node-2', state: NodeState.NODE_UNAVAILABLE, address: '10.0.0.2:4244' },
        { name: 'node-1', state: NodeState.NODE_CONNECTED, address: '10.0.0.1:4244', version: 'v0.1.0', uptime_ns: 61_000_000_000n, num_flows: 100n, max_flows: 4095n, seen_flows: 610n },
      ],
    },
    namespaces: { namespaces: [{ namespace: 'kube-system' }, { namespace: 'shop' }] },
  });
});
afterAll(async () => {
  await srv?.stop();
});

describe('flowctl observe against a gRPC server', () => {
  it('sends hubble\'s request and prints Hubble JSON, one response per line', async () => {
    const r = await flowctl(['observe', '--server', srv.address, '-o', 'json', '--last', '5', '--verdict', 'DROPPED', '-n', 'shop']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(corpus.slice(-5).map((x) => encodeResponse(x) + '\n').join(''));
    const req = srv.requests.at(-1)!;
    expect(req.number).toBe(5n);
    // protobuf decoding fills every repeated field; compare the populated ones.
    const populated = (f: object) => Object.fromEntries(Object.entries(f).filter(([, v]) => !(Array.isArray(v) && v.length === 0) && v !== undefined));
    expect(req.whitelist!.map(populated)).toEqual([
      { source_pod: ['shop/'], verdict: [2] },
      { destination_pod: ['shop/'], verdict: [2] },
    ]);
  });

  it('asks a flowctl server for the batched stream and prints the same; a Hubble server is asked again plainly', async () => {
    const batched = await startTestObserver(corpus, { batched: true });
    try {
      const plain0 = srv.requests.length;
      const a = await flowctl(['observe', '--server', srv.address, '--last', '30', '-o', 'json']);
      const b = await flowctl(['observe', '--server', batched.address, '--last', '30', '-o', 'json']);
      expect([a.code, b.code, a.stderr, b.stderr]).toEqual([0, 0, '', '']);
      expect(srv.requests.length - plain0).toBe(1); // after the UNIMPLEMENTED of the batched call
      expect(batched.batchedRequests).toHaveLength(1);
      expect(batched.requests).toHaveLength(0);
      expect(b.stdout.trim().split('\n')).toHaveLength(30);
      expect(b.stdout).toBe(a.stdout);
    } finally {
      await batched.stop();
    }
  });

  it('defaults to --last 20 and --all sends 2^64-1', async () => {
    const r = await flowctl(['observe', '--server', srv.address]);
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split('\n')).toHaveLength(20);
    expect(srv.requests.at(-1)!.number).toBe(20n);
    await flowctl(['observe', '--server', srv.address, '--all', '-o', 'json']);
    expect(srv.requests.at(-1)!.number).toBe(2n ** 64n - 1n);
  });

  it('--server comes from FLOWCTL_SERVER', async () => {
    const r = await flowctl(['observe', '--last', '1', '-o', 'json'], { env: { FLOWCTL_SERVER: srv.address } });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(encodeResponse(corpus.at(-1)!) + '\n');
  });

  it('follow streams until Ctrl-C and exits cleanly', async () => {
    const live: GetFlowsResponse = corpus[0]!;
    let pushed = false;
    const p = flowctl(['observe', '--server', srv.address, '-f', '-o', 'json'], {
      onStdout: (_c, kill) => kill('SIGINT'),
    });
    // Push until the client is attached and has printed something.
    const t = setInterval(() => {
      srv.push(live);
      pushed = true;
    }, 100);
    const r = await p;
    clearInterval(t);
    expect(pushed).toBe(true);
    expect(r.stdout.startsWith(encodeResponse(live) + '\n')).toBe(true);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(srv.requests.at(-1)).toMatchObject({ follow: true, number: 0n });
  });

  it('node_status goes to stderr, flows to stdout', async () => {
    const only = await startTestObserver([
      { node_status: { state_change: NodeState.NODE_UNAVAILABLE, node_names: ['node-3'] }, node_name: 'relay', time: { seconds: 0n, nanos: 0 } },
      corpus[0]!,
    ]);
    try {
      const r = await flowctl(['observe', '--server', only.address, '-o', 'json']);
      expect(r.stdout).toBe(encodeResponse(corpus[0]!) + '\n');
      expect(r.stderr).toContain('"NODE_UNAVAILABLE"');
    } finally {
      await only.stop();
    }
  });

  it('a refused connection is reported at once, not after the dial timeout', async () => {
    // An hour to dial: waiting for the deadline would outlast this test's own timeout.
    const r = await flowctl(['observe', '--server', '127.0.0.1:1', '--timeout', '1h']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: cannot reach the server at 127\.0\.0\.1:1: .*ECONNREFUSED/);
  });

  it("--timeout's help shows its default as a duration", async () => {
    const r = await flowctl(['--help']);
    expect(r.stdout).toMatch(/--timeout <duration>\s+dial timeout .*\(default: 5s\)/);
  });

  it('an unreachable server is one line on stderr and exit 1', async () => {
    const r = await flowctl(['observe', '--server', '127.0.0.1:1', '--timeout', '1s']);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^error: cannot reach the server at 127\.0\.0\.1:1/);
  });

  it('a closed pipe (| head) ends quietly', async () => {
    const r = await flowctl(['observe', '--server', srv.address, '--all'], {
      onStdout: (_c, kill) => kill('SIGPIPE'),
    });
    expect(r.stderr).toBe('');
  });
});

describe('status, list, version', () => {
  it('status prints hubble\'s text and json', async () => {
    const r = await flowctl(['status', '--server', srv.address]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(
      `Healthcheck (via ${srv.address}): Ok\nCurrent/Max Flows: 2,771/8,190 (33.83%)\nFlows/s: 23.46\nConnected Nodes: 2/3\nUnavailable Nodes: 1\n  - node-3\n`,
    );
    const j = await flowctl(['status', '--server', srv.address, '-o', 'json']);
    expect(j.stdout).toBe(
      '{"num_flows":"2771","max_flows":"8190","seen_flows":"2771","uptime_ns":"301515181665","num_connected_nodes":2,"num_unavailable_nodes":1,"unavailable_nodes":["node-3"],"version":"flowctl-relay v0.1.0","flows_rate":23.456}\n',
    );
  });

  it('list nodes: table sorted by name, json', async () => {
    const r = await flowctl(['list', 'nodes', '--server', srv.address]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(
      'NAME     STATUS        AGE    FLOWS/S   CURRENT/MAX-FLOWS\n' +
        'node-1   Connected     1m1s   10.00     100/4,095 (2.44%)\n' +
        'node-2   Unavailable   N/A    N/A       N/A\n',
    );
    const j = await flowctl(['list', 'nodes', '--server', srv.address, '-o', 'json']);
    expect(JSON.parse(j.stdout)[0]).toEqual({ name: 'node-2', address: '10.0.0.2:4244', state: 'NODE_UNAVAILABLE' });
  });

  it('list namespaces', async () => {
    const r = await flowctl(['list', 'namespaces', '--server', srv.address]);
    expect(r.stdout).toBe('CLUSTER   NAMESPACE\n          kube-system\n          shop\n');
  });

  it('version needs no server', async () => {
    const r = await flowctl(['version']);
    expect(r.stdout).toMatch(/^flowctl v\d+\.\d+\.\d+/);
  });
});

describe('flowctl observe --input-file is offline', () => {
  // A --require hook in the CLI process that says on exit whether @grpc/grpc-js was loaded (a CJS
  // package: imported from ESM it still goes through require's cache).
  const dir = mkdtempSync(join(tmpdir(), 'flowctl-offline-'));
  const hook = join(dir, 'grpc-probe.cjs');
  writeFileSync(hook, `process.on('exit', () => process.stderr.write('grpc-js loaded: ' + Object.keys(require.cache).some((k) => k.includes('@grpc/grpc-js')) + '\\n'));`);
  const file = join(dir, 'flows.json');
  writeFileSync(file, corpus.slice(0, 10).map((x) => encodeResponse(x) + '\n').join(''));
  const env = { NODE_OPTIONS: `--require ${hook}` };
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('decodes and prints a file without loading gRPC (the messages live apart from the services)', async () => {
    const r = await flowctl(['observe', '--input-file', file, '-o', 'json'], { env });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(corpus.slice(0, 10).map((x) => encodeResponse(x) + '\n').join(''));
    expect(r.stderr).toBe('grpc-js loaded: false\n');
  });

  it('a file with unreadable lines: one summary line, exit 0; a file of which no line reads: an error, exit 1', async () => {
    const good = corpus.filter((x) => x.flow).slice(0, 2).map((x) => encodeResponse(x));
    const partly = join(dir, 'partly.json');
    writeFileSync(partly, ['garbage', good[0], '', '{"flow":', good[1], 'more garbage'].join('\n') + '\n');
    const p = await flowctl(['observe', '--input-file', partly, '-o', 'json']);
    expect(p.code).toBe(0);
    expect(p.stdout).toBe(`${good[0]}\n${good[1]}\n`);
    expect(p.stderr).toBe(`warning: ${partly}: 3 of 5 lines could not be read; first at line 1: invalid JSON: Unexpected token 'g', "garbage" is not valid JSON\n`);

    const garbage = join(dir, 'garbage.json');
    writeFileSync(garbage, 'this is\nnot a flow file\n');
    const g = await flowctl(['observe', '--input-file', garbage]);
    expect(g.code).toBe(1);
    expect(g.stdout).toBe('');
    expect(g.stderr).toMatch(new RegExp(`^error: ${garbage}: 2 of 2 lines could not be read; first at line 1: invalid JSON: .*\n$`));
  });

  it('a file of which no line reads is an error whatever the filters; a filter skips no unreadable line unseen', async () => {
    // The verdict filter's byte prefilter skips lines that name no wanted verdict without decoding them.
    const garbage = join(dir, 'garbage-filtered.json');
    writeFileSync(garbage, 'this is\nnot a flow file\n{"neither": is this}\n');
    const g = await flowctl(['observe', '--input-file', garbage, '--verdict', 'DROPPED']);
    expect(g.code).toBe(1);
    expect(g.stdout).toBe('');
    expect(g.stderr).toMatch(new RegExp(`^error: ${garbage}: 3 of 3 lines could not be read; first at line 1: invalid JSON: .*\n$`));

    const flows = corpus.filter((x) => x.flow);
    const dropped = flows.find((x) => x.flow!.verdict === Verdict.DROPPED)!;
    const forwarded = flows.find((x) => x.flow!.verdict === Verdict.FORWARDED)!;
    const partly = join(dir, 'partly-filtered.json');
    writeFileSync(partly, [encodeResponse(forwarded), 'garbage', encodeResponse(dropped), '{"flow":', '{"flow": {"verdict": "FORWARDED"'].join('\n') + '\n');
    const p = await flowctl(['observe', '--input-file', partly, '--verdict', 'DROPPED', '-o', 'json']);
    expect(p.code).toBe(0);
    expect(p.stdout).toBe(`${encodeResponse(dropped)}\n`);
    expect(p.stderr).toMatch(new RegExp(`^warning: ${partly}: 3 of 5 lines could not be read; first at line 2: invalid JSON: .*\n$`));
  });

  it('the probe sees gRPC when a command uses it', async () => {
    const r = await flowctl(['observe', '--server', srv.address, '-o', 'json', '--last', '1'], { env });
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('grpc-js loaded: true\n');
  });
});
