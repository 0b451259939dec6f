// `flowctl ui` as a process against a real gRPC Observer server in this process: the endpoints,
// their errors and the static files.
import { spawn, type ChildProcess } from 'node:child_process';
import { request } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeCorpus } from '@flowctl/flow/testing/corpus';
import { encodeResponse } from '@flowctl/flow/json';
import type { GetFlowsResponse } from '@flowctl/flow/gen/observer/observer';
import { Verdict } from '@flowctl/flow/gen/flow/flow';
import type { GetServiceMapResponse, MapEdge, MapNode } from '@flowctl/flow/gen/flowctl/servicemap';
import { classify } from '@flowctl/flow/servicemap/classify';
import { flowctl, ROOT, startTestObserver, type TestServer } from '../e2e/helpers.js';
import type { ServiceMap } from '../map/model.js';

const corpus = makeCorpus(300, 11, {});

/** A ServiceMap answer for the corpus: flows and drops per classified edge. */
function corpusServiceMap(): GetServiceMapResponse {
  const nodes = new Map<string, MapNode>();
  const edges = new Map<string, MapEdge>();
  for (const { flow } of corpus) {
    const c = flow && classify(flow);
    if (!c) continue;
    for (const side of [c.client, c.server]) {
      const n = nodes.get(side.node) ?? { id: side.node, kind: side.kind, namespace: side.namespace, workload: side.workload, pods: [] };
      if (side.pod && !n.pods!.includes(side.pod)) n.pods!.push(side.pod);
      nodes.set(side.node, n);
    }
    const key = `${c.client.node} ${c.server.node} ${c.port} ${c.protocol}`;
    const e = edges.get(key) ?? { source: c.client.node, destination: c.server.node, port: c.port, protocol: c.protocol, flows: 0n, drops: 0n };
    e.flows! += 1n;
    if (flow.verdict === Verdict.DROPPED) e.drops! += 1n;
    edges.set(key, e);
  }
  return { nodes: [...nodes.values()], edges: [...edges.values()] };
}
let srv: TestServer;
let ui: ChildProcess;
let base = '';

function startUi(args: string[]): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, ['--conditions=@flowctl/source', '--import', 'tsx', join(ROOT, 'packages/cli/src/bin.ts'), 'ui', ...args], {
    cwd: ROOT, env: { ...process.env, FLOWCTL_SERVER: '' }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stdout!.setEncoding('utf8').on('data', (c: string) => {
      out += c;
      const m = /serving (http:\/\/\S+)/.exec(out);
      if (m) resolve({ child, url: m[1]! });
    });
    child.stderr!.setEncoding('utf8').on('data', (c: string) => (err += c));
    child.on('close', (code) => reject(new Error(`flowctl ui exited ${code}: ${err}`)));
  });
}

beforeAll(async () => {
  srv = await startTestObserver(corpus, { serviceMap: corpusServiceMap() });
  const started = await startUi(['--server', srv.address, '--listen', '127.0.0.1:0']);
  ui = started.child;
  base = started.url;
});
afterAll(async () => {
  ui?.kill('SIGINT');
  await srv?.stop();
});

async function get(path: string): Promise<{ status: number; type: string; body: string }> {
  const r = await fetch(new URL(path, base));
  return { status: r.status, type: r.headers.get('content-type') ?? '', body: await r.text() };
}

describe('flowctl ui endpoints', () => {
  it('serves the page and the graph libraries from node_modules', async () => {
    const page = await get('/');
    expect(page.status).toBe(200);
    expect(page.type).toMatch(/^text\/html/);
    expect(page.body).toContain('<script src="/lib/cytoscape.min.js">');
    for (const lib of ['/lib/cytoscape.min.js', '/lib/layout-base.js', '/lib/cose-base.js', '/lib/cytoscape-fcose.js', '/app.js']) {
      const r = await get(lib);
      expect(r.status, lib).toBe(200);
      expect(r.type).toMatch(/^text\/javascript/);
      expect(r.body.length).toBeGreaterThan(1000);
    }
    expect((await get('/nope')).status).toBe(404);
  });

  it('/api/map answers what `flowctl map -o json` prints, from the ServiceMap service', async () => {
    const r = await get('/api/map?since=5m&namespace=shop');
    expect(r.status).toBe(200);
    expect(r.type).toMatch(/^application\/json/);
    const m = JSON.parse(r.body) as ServiceMap;
    const req = srv.mapRequests.at(-1)!;
    const cli = await flowctl(['map', '--server', srv.address, '-o', 'json', '--since', '5m', '--namespace', 'shop']);
    expect(cli.code).toBe(0);
    const cliReq = srv.mapRequests.at(-1)!;
    expect(req.whitelist).toEqual(cliReq.whitelist);
    expect(req.whitelist!.length).toBe(2);
    const cliMap = JSON.parse(cli.stdout) as ServiceMap;
    expect(m.nodes).toEqual(cliMap.nodes);
    expect(m.edges).toEqual(cliMap.edges);
    expect(m.nodes.map((n) => n.id)).toContain('shop/frontend');
    expect(m.edges.reduce((a, e) => a + e.flows, 0)).toBe(corpus.filter((x) => x.flow && classify(x.flow)).length);
    expect(Date.parse(m.window.until) - Date.parse(m.window.since)).toBe(300_000);
  });

  it('/api/flows prints what `flowctl observe -o json` prints, with the filters sent to the server', async () => {
    const r = await get('/api/flows?last=40&namespace=shop&verdict=DROPPED');
    expect(r.status).toBe(200);
    expect(r.type).toMatch(/^application\/x-ndjson/);
    const req = srv.requests.at(-1)!;
    const observe = await flowctl(['observe', '--server', srv.address, '-o', 'json', '--last', '40', '--namespace', 'shop', '--verdict', 'DROPPED']);
    const observeReq = srv.requests.at(-1)!;
    expect(req).toEqual(observeReq);
    expect(r.body).toBe(observe.stdout);
    expect(r.body).toBe(corpus.slice(-40).map((x) => encodeResponse(x) + '\n').join(''));
  });

  it('node, from and to narrow the flows to a map node or edge', async () => {
    const all = corpus.filter((x) => x.flow && classify(x.flow));
    const ends = (x: GetFlowsResponse) => classify(x.flow!)!;
    const e = ends(all[0]!);
    const byNode = await get(`/api/flows?all=true&node=${encodeURIComponent(e.server.node)}`);
    const wantNode = all.filter((x) => ends(x).client.node === e.server.node || ends(x).server.node === e.server.node);
    expect(wantNode.length).toBeGreaterThan(0);
    expect(wantNode.length).toBeLessThan(all.length);
    expect(byNode.body).toBe(wantNode.map((x) => encodeResponse(x) + '\n').join(''));
    const byEdge = await get(`/api/flows?all&from=${encodeURIComponent(e.client.node)}&to=${encodeURIComponent(e.server.node)}`);
    const wantEdge = all.filter((x) => ends(x).client.node === e.client.node && ends(x).server.node === e.server.node);
    expect(wantEdge.length).toBeGreaterThan(0);
    expect(byEdge.body).toBe(wantEdge.map((x) => encodeResponse(x) + '\n').join(''));
  });

  it('follow streams flows as the server sends them', async () => {
    const live: GetFlowsResponse = corpus.find((x) => x.flow)!;
    const line = encodeResponse(live) + '\n';
    const ctl = new AbortController();
    const r = await fetch(new URL('/api/flows?follow=true', base), { signal: ctl.signal });
    expect(r.status).toBe(200);
    const reader = r.body!.pipeThrough(new TextDecoderStream()).getReader();
    const t = setInterval(() => srv.push(live), 50);
    try {
      let got = '';
      while (!got.includes('\n')) got += (await reader.read()).value ?? '';
      expect(got.slice(0, got.indexOf('\n') + 1)).toBe(line);
    } finally {
      clearInterval(t);
      ctl.abort();
    }
  });

  it('refuses bad parameters with 400 and one line', async () => {
    const cases: [string, RegExp][] = [
      ['/api/flows?verdict=NOPE', /^invalid argument "NOPE" for "--verdict" flag: invalid --verdict value: NOPE\n$/],
      ['/api/flows?bogus=1', /^unknown parameter "bogus"\n$/],
      ['/api/flows?last=-3', /^invalid argument "-3" for "--last" flag/],
      ['/api/flows?last=3&first=2', /^cannot set both --first and --last\n$/],
      ['/api/flows?since=yesterday', /^failed to parse the since time/],
      ['/api/flows?from=shop/a', /^"from" and "to" go together/],
      ['/api/flows?node=a&from=b&to=c', /^"node" cannot be combined/],
      ['/api/flows?follow=maybe', /^invalid value "maybe" for "follow"/],
      ['/api/flows?http-status=999', /^invalid argument "999" for "--http-status" flag/],
      ['/api/map?since=soon', /^invalid value "soon" for "since"/],
      ['/api/map?since=1m&since=2m', /^parameter "since" given twice\n$/],
      ['/api/map?follow=true', /^unknown parameter "follow"\n$/],
    ];
    for (const [path, re] of cases) {
      const r = await get(path);
      expect(r.status, path).toBe(400);
      expect(r.body, path).toMatch(re);
      expect(r.body.trim().split('\n'), path).toHaveLength(1);
    }
  });

  it('answers only to its own host names (no DNS rebinding)', async () => {
    const u = new URL(base);
    const status = await new Promise<number>((resolve, reject) => {
      request({ host: u.hostname, port: u.port, path: '/api/map', headers: { host: `evil.example:${u.port}` } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      }).on('error', reject).end();
    });
    expect(status).toBe(403);
  });

  it('reports an unreachable server with 502 and the reason', async () => {
    const other = await startUi(['--server', '127.0.0.1:1', '--timeout', '500ms', '--listen', '127.0.0.1:0']);
    try {
      for (const path of ['/api/map', '/api/flows']) {
        const r = await fetch(new URL(path, other.url));
        expect(r.status, path).toBe(502);
        expect(await r.text(), path).toMatch(/^cannot reach the server at 127\.0\.0\.1:1.*\n$/);
      }
    } finally {
      other.child.kill('SIGINT');
    }
  });

  it('refuses a bad --listen before serving', async () => {
    const r = await flowctl(['ui', '--listen', 'nowhere']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('error: invalid argument "nowhere" for "--listen" flag: expected host:port, e.g. 127.0.0.1:12000\n');
  });
});
