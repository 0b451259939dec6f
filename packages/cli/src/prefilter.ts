// A text pre-check for --input-file: when every allowlist filter requires a verdict, a line that
// mentions none of the wanted verdicts (by name or number) cannot match, so it is skipped without
// JSON.parse. Conservative by construction: lines with \u escapes, lost events or node_status
// (which bypass filters) always go through the full decoder and filter engine.
import { Verdict, type FlowFilter } from '@flowctl/flow/gen/flow/flow';

export type LinePrefilter = (line: string) => boolean;

export function verdictPrefilter(whitelist: readonly FlowFilter[]): LinePrefilter | undefined {
  if (!whitelist.length || whitelist.some((f) => !f.verdict?.length)) return undefined;
  const verdicts = [...new Set(whitelist.flatMap((f) => f.verdict!))];
  const names = verdicts.map((v) => Verdict[v]).filter((n): n is string => !!n);
  const numeric = new RegExp(`"verdict"\\s*:\\s*(?:${verdicts.join('|')})(?![0-9])`);
  return (line) =>
    names.some((n) => line.includes(n)) ||
    line.includes('\\u') ||
    line.includes('lost_events') || line.includes('lostEvents') ||
    line.includes('node_status') || line.includes('nodeStatus') ||
    numeric.test(line);
}
