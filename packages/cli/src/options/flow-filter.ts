// Turns filter flags, in the order they were typed, into Hubble's whitelist/blacklist. This is the
// logic of hubble's `cmd/observe/flows_filter.go` (v0.12): two FlowFilters `left` and `right` that
// the server ORs, "either side" flags writing the source field left and the destination field
// right, `--not` sending the next flag to the blacklist, and conflict groups checked per list.
import type { FlowFilter } from '@flowctl/flow/gen/flow/flow';
import { CliError } from '../errors.js';

export type Side = (f: FlowFilter) => void;

export class FilterTracker {
  left: FlowFilter | undefined;
  right: FlowFilter | undefined;
  readonly changed: string[] = [];

  /** Records first use of a flag; returns true the first time (hubble "wipes defaults" then). */
  add(name: string): boolean {
    if (this.changed.includes(name)) return false;
    this.changed.push(name);
    return true;
  }
  apply(update: Side): void {
    this.applyLeft(update);
    this.applyRight(update);
  }
  applyLeft(update: Side): void {
    this.left ??= {};
    update(this.left);
  }
  applyRight(update: Side): void {
    this.right ??= {};
    update(this.right);
  }

  flowFilters(): FlowFilter[] {
    if (!this.left && !this.right) return [];
    const left = this.left ?? {};
    const right = this.right ?? {};
    return filtersEqual(left, right) ? [left] : [left, right];
  }
}

// hubble v0.12 conflict groups; the order inside a group decides the wording of the error, so it
// is kept as hubble has it (checked against the real CLI by the equivalence test).
export const CONFLICT_GROUPS: readonly (readonly string[])[] = [
  ['from-fqdn', 'from-ip', 'from-namespace', 'from-pod', 'fqdn', 'ip', 'namespace', 'pod'],
  ['to-fqdn', 'to-ip', 'to-namespace', 'to-pod', 'fqdn', 'ip', 'namespace', 'pod'],
  ['label', 'from-label'],
  ['label', 'to-label'],
  ['service', 'from-service'],
  ['service', 'to-service'],
  ['port', 'from-port'],
  ['port', 'to-port'],
  ['identity', 'from-identity'],
  ['identity', 'to-identity'],
  ['workload', 'from-workload'],
  ['workload', 'to-workload'],
];

export function checkConflicts(changed: readonly string[]): string | undefined {
  for (const group of CONFLICT_GROUPS) {
    for (const flag of group) {
      if (!changed.includes(flag)) continue;
      for (const other of group) {
        if (other !== flag && changed.includes(other)) return `filters --${flag} and --${other} cannot be combined`;
      }
    }
  }
  return undefined;
}

/** proto.Equal for the FlowFilters the CLI builds (plain data: arrays of scalars and small objects). */
export function filtersEqual(a: FlowFilter, b: FlowFilter): boolean {
  return JSON.stringify(normalise(a)) === JSON.stringify(normalise(b));
}

function normalise(f: FlowFilter): unknown {
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(f).sort()) {
    const v = (f as Record<string, unknown>)[k];
    if (v === undefined || (Array.isArray(v) && v.length === 0)) continue;
    out[k] = v;
  }
  return JSON.stringify(out, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
}

export interface FilterSetter {
  /** Flag name as typed in the error message, e.g. `-n, --namespace`. */
  display: string;
  apply: (t: FilterTracker, value: string, firstUse: boolean) => void;
}

/**
 * Collects filter flags in argv order. `set` throws a CliError worded like hubble's pflag errors:
 * `invalid argument "b" for "--from-pod" flag: filters --from-pod and --pod cannot be combined`.
 */
export class FlowFilterBuilder {
  whitelist = new FilterTracker();
  blacklist: FilterTracker | undefined;
  private blacklisting = false;

  not(): void {
    if (this.blacklisting) throw new CliError('filter', 'invalid argument "true" for "--not" flag: consecutive --not statements');
    this.blacklisting = true;
  }

  set(name: string, setter: FilterSetter, value: string): void {
    let t = this.whitelist;
    if (this.blacklisting) {
      this.blacklisting = false;
      t = this.blacklist ??= new FilterTracker();
    }
    const first = t.add(name);
    const fail = (msg: string): never => {
      throw new CliError('filter', `invalid argument "${value}" for "${setter.display}" flag: ${msg}`);
    };
    const conflict = checkConflicts(t.changed);
    if (conflict) fail(conflict);
    try {
      setter.apply(t, value, first);
    } catch (e) {
      if (e instanceof CliError && e.code === 'filter') fail(e.message);
      throw e;
    }
  }

  finish(): { whitelist: FlowFilter[]; blacklist: FlowFilter[] } {
    if (this.blacklisting) throw new CliError('filter', 'trailing --not found in the arguments');
    return { whitelist: this.whitelist.flowFilters(), blacklist: this.blacklist?.flowFilters() ?? [] };
  }
}
