// `flowctl policy ...` as its own process with real argv, for the CLI tests: the same commander
// wiring program.ts does (registerPolicyCommand), without the rest of the CLI. Run with
// `node --conditions=@flowctl/source --import tsx`.
import { createRequire } from 'node:module';
import { registerPolicyCommand } from '../../packages/cli/src/commands/policy.js';

// commander is a dependency of the CLI package, not of the repository root.
const requireFromCli = createRequire(new URL('../../packages/cli/package.json', import.meta.url));
const { Command } = (await import(requireFromCli.resolve('commander'))) as typeof import('commander');

const program = new Command('flowctl');
const status = { exitCode: 0 };
registerPolicyCommand(program, status);
await program.parseAsync(process.argv);
process.exitCode = status.exitCode;
