// `flowctl ui`: the service map and live flows in a browser, served by this process from the agent
// or relay of --server (flows over the Observer API, the map over flowctl's ServiceMap service).
import { Command, Option } from 'commander';
import type { GlobalOptions, Io } from '../program.js';
import { loadJson } from '../flow-deps.js';
import { parseListen } from '../web/listen.js';
import type { UiMapQuery } from '../web/server.js';

export const DEFAULT_LISTEN = '127.0.0.1:12000';

export function registerUiCommand(program: Command, io: Io, globals: () => GlobalOptions): void {
  program
    .command('ui')
    .description('Serve a web page with the service map of all namespaces and live flows')
    .addOption(new Option('--listen <address>', 'host:port the page is served on (port 0: any free port)').default(DEFAULT_LISTEN))
    .action(async (opts: { listen: string }) => {
      parseListen(opts.listen);
      await runUi(opts.listen, io, globals());
    });
}

async function runUi(listen: string, io: Io, g: GlobalOptions): Promise<void> {
  const [{ Connection }, { UiServer }, { queryServiceMap }, json] = await Promise.all([
    import('../client.js'),
    import('../web/server.js'),
    import('../map/query.js'),
    loadJson(),
  ]);
  const conn = new Connection({ server: g.server, timeoutMs: g.timeoutMs, tls: g.tls });
  const backend = {
    ready: () => conn.ready(),
    getFlows: (req: Parameters<typeof conn.getFlows>[0], signal?: AbortSignal) => conn.getFlows(req, signal),
    map: (q: UiMapQuery) => queryServiceMap({ server: g.server, timeoutMs: g.timeoutMs, tls: g.tls, ...q }),
  };
  const encoder = new json.JsonEncoder();
  const server = new UiServer({ listen, backend, encodeResponse: (r) => encoder.response(r) });
  const url = await server.start();
  io.out.write(`flowctl ui: serving ${url} (flows from ${g.server}); Ctrl-C to stop\n`);
  io.out.flush();
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await server.close();
  conn.close();
}
