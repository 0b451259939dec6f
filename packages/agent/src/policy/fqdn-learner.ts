// The user-space half of toFQDNs learning: the answers the kernel does not learn from. TCP answers
// split over segments (it parses a segment holding a whole message only), and, as a fallback,
// patterns it matches as text (`sub*.example.com`: it gives up past GLOB_STEPS steps) are matched
// here against the DNS answers the agent parses, and stored as the kernel stores its own
// (Datapath.learnFqdn). These race the answer: the pod may connect before the map is written.
import { FQDN_MATCH_GLOB, MIN_FQDN_IDENTITY, fqdnMatches, type CompiledPolicy } from '@flowctl/policy';
import { parseIp } from '@flowctl/flow/ip';
import type { FqdnAnswer } from '../datapath/datapath.js';

export class FqdnLearner {
  private policy: CompiledPolicy | undefined;
  private userOnly: CompiledPolicy['fqdnSelectors'] = [];

  /**
   * `learn` stores an answer's addresses (returns how many were new); `identityOf` is the identity
   * of a local endpoint's address, undefined for any other address.
   */
  /** Answers whose addresses could not be stored (a map write failed). */
  failed = 0;

  constructor(
    private readonly learn: (a: FqdnAnswer) => number,
    private readonly identityOf: (ip: string) => number | undefined,
    /** told of the 1st, 2nd, 4th, 8th... failure, so a failing map cannot flood the log */
    private readonly onError: (err: unknown, failed: number) => void = () => {},
    /** a dual-stack local endpoint's address of the other family */
    private readonly peerOf: (ip: string) => string | undefined = () => undefined,
  ) {}

  setPolicy(c: CompiledPolicy): void {
    this.policy = c;
    this.userOnly = c.fqdnSelectors.filter((f) => f.kernel.kind === FQDN_MATCH_GLOB);
  }

  /** A DNS answer for `name` to `client`; returns how many addresses were new to it. */
  answer(name: string, ips: readonly string[], ttlS: number, client: string, tcp: boolean): number {
    const c = this.policy;
    // Over UDP the kernel learned what its hashes match, before the pod got the answer, and what its
    // patterns match unless a name took too many steps; over TCP too, unless the answer was split
    // over segments, which only the agent reassembles.
    const selectors = tcp ? c?.fqdnSelectors : this.userOnly;
    if (!c || !selectors?.length) return 0;
    const id = this.identityOf(client);
    if (id === undefined || !c.enforced.get(id)?.fqdn) return 0;
    let bits = 0n;
    for (const f of selectors) if (fqdnMatches(f.selector, name)) bits |= 1n << BigInt(f.identity - MIN_FQDN_IDENTITY);
    if (!bits) return 0;
    const v6 = parseIp(client)?.v6;
    if (v6 === undefined) return 0;
    // As the kernel: an address is learned for the endpoint's address of its family (the one the
    // answer went to, or the other address of a dual-stack endpoint).
    let learned = 0;
    for (const family6 of [v6, !v6]) {
      const endpoint = family6 === v6 ? client : this.peerOf(client);
      const addrs = ips.filter((ip) => parseIp(ip)?.v6 === family6);
      if (!endpoint || !addrs.length) continue;
      try {
        learned += this.learn({ family: family6 ? 6 : 4, endpoint, name: name.toLowerCase().replace(/\.$/, ''), addrs, ttlS, bits });
      } catch (err) {
        this.failed++;
        if ((this.failed & (this.failed - 1)) === 0) this.onError(err, this.failed);
      }
    }
    return learned;
  }
}
