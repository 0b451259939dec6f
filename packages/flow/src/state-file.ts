// A small JSON file that outlives a restart of the process keeping it (the agent's and the relay's
// drop lists). It is replaced whole, so that a reader never sees half of one.
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/** The file's content; undefined when there is none. Throws when it cannot be read or parsed. */
export function readStateFile<T>(file: string): T | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  return JSON.parse(text) as T;
}

/** Writes `value` (readable by root only); undefined removes the file. */
export function writeStateFile(file: string, value: unknown): void {
  if (value === undefined) {
    rmSync(file, { force: true });
    return;
  }
  mkdirSync(dirname(file), { recursive: true, mode: 0o755 });
  writeFileSync(`${file}.tmp`, `${JSON.stringify(value)}\n`, { mode: 0o600 });
  renameSync(`${file}.tmp`, file);
}
