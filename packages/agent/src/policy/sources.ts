// The policy directory read as text first and parsed from that text, so what the agent enforces
// and what PolicyService/List reports (the same bytes) can never differ, even when a file changes
// while it is being loaded. File selection and the duplicate rule are @flowctl/policy's, as in loadPolicyDir.
import { readFileSync } from 'node:fs';
import { noDuplicatePolicies, parsePolicies, policyError, policyFiles, type PolicyDoc } from '@flowctl/policy';

export interface PolicySource {
  file: string;
  text: string;
}

/** `*.yaml`/`*.yml` of `dir` sorted by name (not recursive, no dot files), or `dir` itself when a file. */
export function readPolicySources(dir: string): PolicySource[] {
  return policyFiles(dir).map((file) => {
    try {
      return { file, text: readFileSync(file, 'utf8') };
    } catch (e) {
      throw policyError(file, 0, `cannot read: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
    }
  });
}

/** Parses every source; two documents with the same kind, namespace and name are an error. */
export function parsePolicySources(sources: readonly PolicySource[]): PolicyDoc[] {
  return noDuplicatePolicies(sources.flatMap((s) => parsePolicies(s.text, s.file)));
}
