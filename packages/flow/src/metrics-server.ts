// A Prometheus /metrics endpoint for the agent and the relay. It takes anything with
// prom-client's Registry shape, so this package does not depend on prom-client.
import { createServer, type Server } from 'node:http';
import { FlowctlError } from './errors.js';

export interface MetricsSource {
  metrics(): Promise<string>;
  readonly contentType: string;
}


/** Parses `:9965`, `127.0.0.1:9965` or `[::1]:9965` into host and port ('' host = all addresses). */
export function parseListenAddress(addr: string, flag: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(addr);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new FlowctlError('CONFIG', `${flag}: "${addr}" is not [host]:port`);
  return { host: m[1] ?? m[2] ?? '', port };
}

/** Serves GET /metrics; resolves once listening. */
export async function serveMetrics(address: string, source: MetricsSource, flag = '--metrics-address'): Promise<Server> {
  const { host, port } = parseListenAddress(address, flag);
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found: metrics are at /metrics\n');
      return;
    }
    source.metrics().then(
      (text) => {
        res.writeHead(200, { 'content-type': source.contentType });
        res.end(text);
      },
      (err: unknown) => {
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(`collecting metrics failed: ${err instanceof Error ? err.message : String(err)}\n`);
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host || undefined, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server;
}
