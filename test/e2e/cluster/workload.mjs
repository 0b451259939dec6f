#!/usr/bin/env node
// Demo workloads, plain Node so they run without a build: an HTTP server with routes that answer
// 200, 404 and 500, and a client that calls other pods (by DNS name) in a loop.
//   workload.mjs server --port 8080 --name order-service
//   workload.mjs client --name api-gateway --every 1000 URL [URL...]
//   workload.mjs resolve --every 2000 NAME [NAME...]
//   workload.mjs scan --after 8000 --every 60000 --ports 1-100 HOST   (a TCP connect scan)
import http from 'node:http';
import dns from 'node:dns/promises';
import net from 'node:net';

const [mode, ...rest] = process.argv.slice(2);
const opts = { port: 8080, name: 'workload', every: 1000, timeout: 2000 };
const args = [];
for (let i = 0; i < rest.length; i++) {
  const a = rest[i];
  if (a.startsWith('--')) opts[a.slice(2)] = rest[++i];
  else args.push(a);
}
const every = Number(opts.every);
const log = (msg) => process.stdout.write(`${new Date().toISOString()} ${opts.name} ${msg}\n`);
let stopping = false;
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => { stopping = true; process.exit(0); });

if (mode === 'server') {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    let code = 200;
    if (path.startsWith('/fail') || path.startsWith('/error')) code = 500;
    else if (!['/', '/healthz', '/orders', '/pay', '/checkout', '/api/orders', '/api/pay'].includes(path)) code = 404;
    res.writeHead(code, { 'content-type': 'application/json', 'x-served-by': opts.name });
    res.end(JSON.stringify({ service: opts.name, path, code }) + '\n');
  });
  server.keepAliveTimeout = 0;
  server.listen(Number(opts.port), '0.0.0.0', () => log(`listening on :${opts.port}`));
} else if (mode === 'client') {
  const agent = new http.Agent({ keepAlive: false });
  let i = 0;
  const tick = async () => {
    if (stopping) return;
    const url = args[i++ % args.length];
    const started = Date.now();
    try {
      const code = await new Promise((resolve, reject) => {
        const req = http.get(url, { agent, timeout: Number(opts.timeout) }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode));
        });
        req.on('timeout', () => req.destroy(new Error('timeout')));
        req.on('error', reject);
      });
      log(`GET ${url} -> ${code} in ${Date.now() - started}ms`);
    } catch (err) {
      log(`GET ${url} failed: ${err.code ?? err.message}`);
    }
    setTimeout(tick, every);
  };
  tick();
} else if (mode === 'scan') {
  const [lo, hi] = String(opts.ports ?? '1-100').split('-').map(Number);
  const host = args[0];
  const probe = (port) => new Promise((resolve) => {
    const s = net.connect({ host, port, timeout: 500 });
    const done = (open) => { s.destroy(); resolve(open); };
    s.on('connect', () => done(true));
    s.on('timeout', () => done(false));
    s.on('error', () => done(false));
  });
  const tick = async () => {
    if (stopping) return;
    const open = [];
    // 20 at a time, as nmap -sT does in parallel.
    for (let p = lo; p <= hi; p += 20) {
      const batch = [];
      for (let q = p; q < p + 20 && q <= hi; q++) batch.push(probe(q).then((ok) => ok && open.push(q)));
      await Promise.all(batch);
    }
    log(`scanned ${host} ports ${lo}-${hi}: open ${open.sort((a, b) => a - b).join(',') || 'none'}`);
    setTimeout(tick, every);
  };
  setTimeout(tick, Number(opts.after ?? 0));
} else if (mode === 'resolve') {
  let i = 0;
  const tick = async () => {
    if (stopping) return;
    const name = args[i++ % args.length];
    try {
      const addrs = await dns.resolve4(name);
      log(`resolve ${name} -> ${addrs.join(',')}`);
    } catch (err) {
      log(`resolve ${name} failed: ${err.code ?? err.message}`);
    }
    setTimeout(tick, every);
  };
  tick();
} else {
  process.stderr.write(`workload.mjs: unknown mode "${mode}" (server|client|resolve)\n`);
  process.exit(2);
}
