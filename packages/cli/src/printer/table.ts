// flowctl's own tables (status, list, policy list): cli-table3 without borders, columns three
// spaces apart, no trailing blanks, so they read like kubectl's and split on whitespace.
// `observe -o table` keeps Hubble's tabwriter layout instead (printer.ts).
import Table from 'cli-table3';

const NO_BORDER = {
  top: '', 'top-mid': '', 'top-left': '', 'top-right': '',
  bottom: '', 'bottom-mid': '', 'bottom-left': '', 'bottom-right': '',
  left: '', 'left-mid': '', mid: '', 'mid-mid': '', right: '', 'right-mid': '',
  middle: '   ',
};

/** `head` and `rows` as aligned columns, one line each, ending in a newline. */
export function renderTable(head: string[], rows: string[][]): string {
  const t = new Table({ head, chars: NO_BORDER, style: { head: [], border: [], 'padding-left': 0, 'padding-right': 0 } });
  t.push(...rows);
  return t.toString().split('\n').map((l) => l.trimEnd()).join('\n') + '\n';
}
