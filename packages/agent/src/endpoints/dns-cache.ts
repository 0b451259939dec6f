// IP → FQDNs learned from observed DNS answers (Hubble's source_names/destination_names),
// bounded so a flood of answers cannot grow the agent without limit.
interface Entry {
  names: Map<string, number /* expiry ms */>;
  /** Shared, frozen answer for names(): every flow to this IP points at the same array. */
  cached: readonly string[] | undefined;
  cachedUntil: number;
}

export class DnsCache {
  private readonly byIp = new Map<string, Entry>();

  constructor(private readonly maxIps = 65536, private readonly now: () => number = Date.now) {}

  learn(name: string, ips: string[], ttlS: number): void {
    // Hubble keeps names a little past their TTL; a floor of 60 s avoids flapping on TTL 0 answers.
    const expiry = this.now() + Math.max(60, ttlS) * 1000;
    const fqdn = name.endsWith('.') ? name.slice(0, -1) : name;
    for (const ip of ips) {
      let e = this.byIp.get(ip);
      if (!e) {
        if (this.byIp.size >= this.maxIps) {
          const oldest = this.byIp.keys().next();
          if (!oldest.done) this.byIp.delete(oldest.value);
        }
        e = { names: new Map(), cached: undefined, cachedUntil: 0 };
        this.byIp.set(ip, e);
      }
      const prev = e.names.get(fqdn);
      e.names.set(fqdn, expiry);
      if (prev === undefined) e.cached = undefined;
    }
  }

  names(ip: string): string[] {
    const e = this.byIp.get(ip);
    if (!e) return EMPTY;
    const now = this.now();
    if (e.cached && now < e.cachedUntil) return e.cached as string[];
    let until = Infinity;
    const out: string[] = [];
    for (const [n, exp] of e.names) {
      if (exp >= now) {
        out.push(n);
        until = Math.min(until, exp);
      } else e.names.delete(n);
    }
    if (e.names.size === 0) {
      this.byIp.delete(ip);
      return EMPTY;
    }
    e.cached = Object.freeze(out.sort());
    e.cachedUntil = until;
    return e.cached as string[];
  }
}
const EMPTY: string[] = Object.freeze([]) as unknown as string[];
