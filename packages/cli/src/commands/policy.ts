// Placeholder owned by the policy work: `flowctl policy validate|list|check` is registered here.
import type { Command } from 'commander';

export function registerPolicyCommand(program: Command): void {
  program.command('policy').description('validate, list and check network policies (not built yet)');
}
