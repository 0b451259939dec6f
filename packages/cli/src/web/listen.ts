// --listen of `flowctl ui`, apart from the server so that parsing it loads nothing else.
import { CliError } from '../errors.js';

/** `host:port` or `[v6]:port` → parts; a bad value is a one-line usage error. */
export function parseListen(v: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s]+)):(\d{1,5})$/.exec(v);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new CliError('usage', `invalid argument "${v}" for "--listen" flag: expected host:port, e.g. 127.0.0.1:12000`);
  return { host: m[1] ?? m[2]!, port };
}
