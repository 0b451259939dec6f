#!/usr/bin/env node
// Demo workloads, plain Node so they run without a build: an HTTP server with routes that answer
// 200, 404 and 500, and a client that calls other pods (by DNS name) in a loop.
//   workload.mjs server --port 8080 --name order-service
//   workload.mjs client --name api-gateway --every 1000 URL [URL...]
//   workload.mjs resolve --every 2000 NAME [NAME...]
//   workload.mjs scan --after 8000 --every 60000 --ports 1-100 HOST   (a TCP connect scan)
//   workload.mjs tunnel --after 20000 --queries 60 DOMAIN   (once: TXT lookups shaped like a DNS tunnel)
//   workload.mjs connect --after 20000 --count 1200 --parallel 20 HOST PORT   (once: short connections)
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
} else if (mode === 'tunnel') {
  // What a DNS tunnel's client sends: distinct names, each carrying ~100 bytes of base32 data in
  // three long labels, asked for TXT records (the resolver answers NXDOMAIN: no tunnel server).
  const domain = args[0];
  const r = new dns.Resolver({ timeout: 1000, tries: 1 });
  const b32 = 'abcdefghijklmnopqrstuvwxyz234567';
  const label = () => Array.from({ length: 56 }, () => b32[Math.floor(Math.random() * 32)]).join('');
  setTimeout(async () => {
    let answered = 0;
    const n = Number(opts.queries ?? 60);
    for (let i = 0; i < n && !stopping; i++) {
      await r.resolveTxt(`${label()}.${label()}.${label()}.t.${domain}`).then(() => answered++, () => {});
    }
    log(`tunnel: ${n} TXT queries under ${domain}, ${answered} answered`);
  }, Number(opts.after ?? 0));
} else if (mode === 'connect') {
  // Connections opened and closed at once, `parallel` at a time.
  const [host, port] = [args[0], Number(args[1])];
  const probe = () => new Promise((resolve) => {
    const s = net.connect({ host, port, timeout: Number(opts.timeout) });
    const done = (ok) => { s.destroy(); resolve(ok); };
    s.on('connect', () => done(true));
    s.on('timeout', () => done(false));
    s.on('error', () => done(false));
  });
  setTimeout(async () => {
    const count = Number(opts.count ?? 1);
    const parallel = Number(opts.parallel ?? 1);
    let ok = 0;
    const started = Date.now();
    for (let i = 0; i < count && !stopping; i += parallel) {
      const batch = [];
      for (let j = i; j < Math.min(count, i + parallel); j++) batch.push(probe().then((c) => c && ok++));
      await Promise.all(batch);
    }
    log(`connect ${host}:${port}: ${count} attempts in ${Date.now() - started}ms, ${ok} connected`);
  }, Number(opts.after ?? 0));
} else {
  process.stderr.write(`workload.mjs: unknown mode "${mode}" (server|client|resolve|scan|tunnel|connect)\n`);
  process.exit(2);
}
