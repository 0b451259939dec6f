// The policy directory read as text first and parsed from that text, so what the agent enforces
// and what PolicyService/List reports (the same bytes) can never differ, even when a file changes
// while it is being loaded. File selection is @flowctl/policy's policyFiles; the duplicate rule follows loadPolicyDir.
import { readFileSync } from 'node:fs';
import { parsePolicies, policyError, policyFiles, type PolicyDoc } from '@flowctl/policy';

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
  const docs = sources.flatMap((s) => parsePolicies(s.text, s.file));
  const seen = new Map<string, PolicyDoc>();
  for (const d of docs) {
    const key = `${d.kind}/${d.namespace}/${d.name}`;
    const prev = seen.get(key);
    if (prev) throw policyError(d.file, d.document, `duplicate ${d.kind} ${d.namespace ? d.namespace + '/' : ''}${d.name} (also ${prev.file}: document ${prev.document})`);
    seen.set(key, d);
  }
  return docs;
}
