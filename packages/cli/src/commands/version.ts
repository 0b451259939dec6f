import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { Io } from '../program.js';

// src/ and dist/ are both one level below the package root.
export function cliVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

export function registerVersionCommand(program: Command, io: Io): void {
  program
    .command('version')
    .description('Print the flowctl version')
    .action(() => {
      io.out.write(`flowctl v${cliVersion()} compiled with node ${process.version} on ${process.platform}/${process.arch}\n`);
      io.out.flush();
    });
}
