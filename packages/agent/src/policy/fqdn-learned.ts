// PolicyService/ListLearnedFqdns for one node: the addresses its endpoints learned from DNS answers
// for toFQDNs (the per-endpoint map the kernel and the agent fill, bpf/fqdn.bpf.h), so a user can
// see which addresses a name allowed. The map keeps a hash of the question name only: the name
// comes from the DNS answers the agent parsed (its DNS cache), or from the name asked for.
import { wireNameHash, type CompiledPolicy } from '@flowctl/policy';
import { formatIp, parseIp } from '@flowctl/flow/ip';
import type { LearnedFqdn, ListLearnedFqdnsRequest } from '@flowctl/flow/policy-service';
import { FlowctlError } from '../errors.js';
import type { LearnedAddress } from '../datapath/fqdn-maps.js';

export interface LearnedSources {
  learned(): LearnedAddress[];
  policy(): CompiledPolicy | undefined;
  /** "namespace/name" of a local endpoint's address. */
  endpointOf(ip: string): string | undefined;
  /** Names the agent saw answered with this address. */
  namesOf(ip: string): readonly string[];
  /** The kernel's clock (CLOCK_MONOTONIC), which expiries are on. */
  nowNs?: () => bigint;
}

/** What was learned, filtered by `req`; INVALID_ARGUMENT (one line) for a bad name or address. */
export function listLearned(req: ListLearnedFqdnsRequest, src: LearnedSources): LearnedFqdn[] {
  const asked = req.name?.trim().toLowerCase().replace(/\.$/, '');
  if (req.name !== undefined && req.name !== '' && !/^[a-z0-9_*-]+(\.[a-z0-9_*-]+)*$/.test(asked ?? '')) {
    throw new FlowctlError('INVALID_ARGUMENT', `name ${JSON.stringify(req.name)} is not a DNS name`);
  }
  const hash = asked ? wireNameHash(asked) : undefined;
  let endpoint: string | undefined;
  if (req.endpoint_ip) {
    const ip = parseIp(req.endpoint_ip.trim());
    if (!ip) throw new FlowctlError('INVALID_ARGUMENT', `endpoint_ip ${JSON.stringify(req.endpoint_ip)} is not an IP address`);
    endpoint = formatIp(ip.v6, ip.value);
  }
  const selectors = new Map((src.policy()?.fqdnSelectors ?? []).map((f) => [f.identity, f.selector.matchName ?? f.selector.matchPattern ?? '']));
  const now = (src.nowNs ?? process.hrtime.bigint)();
  const out: LearnedFqdn[] = [];
  for (const l of src.learned()) {
    if (l.expiresNs <= now || (hash !== undefined && l.nameHash !== hash) || (endpoint !== undefined && l.endpoint !== endpoint)) continue;
    const name = asked ?? src.namesOf(l.addr).find((n) => wireNameHash(n.toLowerCase()) === l.nameHash) ?? '';
    out.push({
      endpoint_ip: l.endpoint,
      endpoint: src.endpointOf(l.endpoint) ?? '',
      name,
      address: l.addr,
      expires_in_s: Math.ceil(Number(l.expiresNs - now) / 1e9),
      selectors: l.selectors.map((id) => selectors.get(id) ?? `selector ${id}`),
    });
  }
  return out.sort((a, b) => a.endpoint_ip.localeCompare(b.endpoint_ip) || a.name.localeCompare(b.name) || a.address.localeCompare(b.address));
}
