// Builds the commander program without exiting, so tests can run real argv arrays through it.
import { Command, CommanderError, Option } from 'commander';
import { registerPolicyCommand } from './commands/policy.js';
import { registerObserveCommand } from './commands/observe.js';
import { registerStatusCommand } from './commands/status.js';
import { registerListCommand } from './commands/list.js';
import { registerMapCommand } from './commands/map.js';
import { registerAlertsCommand } from './commands/alerts.js';
import { registerBlockCommand } from './commands/block.js';
import { registerVersionCommand } from './commands/version.js';
import { registerUiCommand } from './commands/ui.js';
import { parseGoDuration } from './options/time.js';
import { CliError } from './errors.js';
import type { Sink } from './printer/terminal.js';
import type { TlsOptions } from './client.js';
import { addTlsOptions, tlsOptionsOf } from './options/tls.js';

export interface Io {
  out: Sink;
  err: Sink;
  isTTY: boolean;
  /** True once stdout is gone (EPIPE): stop producing output. */
  closed(): boolean;
  /** The exit status of a command that did not fail (policy check: allowed or denied); bin.ts exits with it. */
  exitCode: number;
}

export interface GlobalOptions {
  server: string;
  timeoutMs: number;
  debug: boolean;
  tls: TlsOptions;
}

export const DEFAULT_SERVER = 'localhost:4245';

function parseTimeout(v: string): number {
  const ns = parseGoDuration(v);
  if (ns === undefined || ns <= 0n) throw new CliError('usage', `invalid argument "${v}" for "--timeout" flag: expected a duration like 5s or 500ms`);
  return Number(ns / 1_000_000n);
}

export function buildProgram(io: Io, env: NodeJS.ProcessEnv = process.env): Command {
  const program = new Command('flowctl')
    .description('Observe network flows: a Hubble-compatible CLI for flowctl agents and relays')
    .addOption(new Option('--server <address>', 'address of the server: host:port, tls://host:port or unix:///path').default(env.FLOWCTL_SERVER || DEFAULT_SERVER))
    .addOption(new Option('--timeout <duration>', 'dial timeout').argParser(parseTimeout).default(5000, '5s'))
    .option('-D, --debug', 'print debug output and stack traces');
  addTlsOptions(program)
    .exitOverride()
    .configureOutput({
      writeOut: (s) => {
        io.out.write(s);
        io.out.flush();
      },
      writeErr: (s) => {
        io.err.write(s);
        io.err.flush();
      },
    })
    .showSuggestionAfterError(true);

  const globals = (): GlobalOptions => {
    const o = program.opts<{ server: string; timeout: number; debug?: boolean }>();
    return { server: o.server, timeoutMs: o.timeout, debug: !!o.debug, tls: tlsOptionsOf(program) };
  };
  registerObserveCommand(program, io, globals);
  registerStatusCommand(program, io, globals);
  registerListCommand(program, io, globals);
  registerMapCommand(program, io, globals);
  registerAlertsCommand(program, io, globals);
  registerBlockCommand(program, io, globals);
  registerUiCommand(program, io, globals);
  registerVersionCommand(program, io);
  registerPolicyCommand(program, io);
  for (const c of program.commands) {
    c.exitOverride();
    for (const sub of c.commands) sub.exitOverride();
  }
  return program;
}

export { CommanderError };
