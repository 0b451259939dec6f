// `flowctl ui`: the service map and live flows in a browser, served by this process from one
// gRPC connection to an agent or a relay (the same --server as `flowctl observe`).
import { Command, Option } from 'commander';
import type { GlobalOptions, Io } from '../program.js';
import { loadJson } from '../flow-deps.js';
import { parseListen } from '../web/server.js';

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
  const [{ Connection }, { UiServer }, { queryMap }, json] = await Promise.all([
    import('../client.js'),
    import('../web/server.js'),
    import('../web/map-from-flows.js'),
    loadJson(),
  ]);
  const conn = new Connection({ server: g.server, timeoutMs: g.timeoutMs });
  const backend = {
    ready: () => conn.ready(),
    getFlows: (req: Parameters<typeof conn.getFlows>[0], signal?: AbortSignal) => conn.getFlows(req, signal),
    map: (q: Parameters<typeof queryMap>[1], signal?: AbortSignal) => queryMap(conn, q, signal),
  };
  const server = new UiServer({ listen, backend, encodeResponse: json.encodeResponse });
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
