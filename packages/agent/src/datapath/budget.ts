// The knobs of bpf/budget.bpf.h (per-source budgets of new flows, --syn-flood-protect), which every
// BPF object includes.
import type { BpfObject } from '@flowctl/bpf-loader';
import type { ConnBudget } from './datapath.js';

/** Maps of budget.bpf.h an object does not use keep this many entries (LRU maps: a few per CPU). */
const UNUSED_ENTRIES = 64;

export interface BudgetKnobs {
  /** DNS's rate against the others' (1: the same). */
  dnsFactor?: number;
  /** --syn-flood-protect's half-open threshold; 0: off (its map is then kept small). */
  synProtect?: number;
  /** The object uses the budgets only for --syn-flood-protect (XDP): off, no budgets at all. */
  onlyForSynProtect?: boolean;
}

/** Sets the budgets before `obj` is loaded. */
export function setBudget(obj: BpfObject, budget: ConnBudget | null, k: BudgetKnobs = {}): void {
  const protect = k.synProtect ?? 0;
  const used = budget !== null && (protect > 0 || !k.onlyForSynProtect);
  const interval = (perSecond: number) => BigInt(Math.max(1, Math.round(1e9 / perSecond)));
  obj.setRodata('syn_protect_halfopen', protect);
  if (!protect) obj.setMaxEntries('syn_dests', UNUSED_ENTRIES);
  obj.setRodata('budget_interval_ns', used ? interval(budget.perSecond) : 0n);
  if (!used) {
    obj.setMaxEntries('budgets', UNUSED_ENTRIES);
    return;
  }
  obj.setRodata('budget_burst', budget.burst);
  obj.setRodata('budget_dns_interval_ns', interval(budget.perSecond * (k.dnsFactor ?? 1)));
}
