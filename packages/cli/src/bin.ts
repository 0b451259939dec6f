#!/usr/bin/env node
// The only place that exits. Errors become one line on stderr and a non-zero status; a stack
// trace only with --debug.
import { buildProgram, CommanderError, type Io } from './program.js';
import { isCliError } from './errors.js';
import { BufferedSink } from './printer/terminal.js';

const out = new BufferedSink(process.stdout);
const err = new BufferedSink(process.stderr, 0);
const io: Io = { out, err, isTTY: !!process.stdout.isTTY, closed: () => out.closed, exitCode: 0 };
const debug = process.argv.includes('--debug') || process.argv.includes('-D');

function fail(e: unknown): never {
  if (e instanceof CommanderError) {
    // commander already printed its message (or the help text).
    process.exit(e.exitCode);
  }
  const msg = isCliError(e) ? e.message : e instanceof Error ? e.message : String(e);
  process.stderr.write(debug && e instanceof Error && !isCliError(e) ? `${e.stack}\n` : `error: ${msg}\n`);
  process.exit(isCliError(e) ? e.exitCode : 1);
}

process.on('uncaughtException', fail);
try {
  await buildProgram(io).parseAsync(process.argv);
  out.flush();
  process.exitCode = io.exitCode;
} catch (e) {
  out.flush();
  fail(e);
}
