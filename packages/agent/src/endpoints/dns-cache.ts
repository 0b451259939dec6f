// IP → FQDNs learned from observed DNS answers (Hubble's source_names/destination_names),
// bounded so a flood of answers cannot grow the agent without limit.
export class DnsCache {
  private readonly byIp = new Map<string, Map<string, number /* expiry ms */>>();

  constructor(private readonly maxIps = 65536, private readonly now: () => number = Date.now) {}

  learn(name: string, ips: string[], ttlS: number): void {
    // Hubble keeps names a little past their TTL; a floor of 60 s avoids flapping on TTL 0 answers.
    const expiry = this.now() + Math.max(60, ttlS) * 1000;
    const fqdn = name.endsWith('.') ? name.slice(0, -1) : name;
    for (const ip of ips) {
      let names = this.byIp.get(ip);
      if (!names) {
        if (this.byIp.size >= this.maxIps) {
          const oldest = this.byIp.keys().next();
          if (!oldest.done) this.byIp.delete(oldest.value);
        }
        names = new Map();
        this.byIp.set(ip, names);
      }
      names.set(fqdn, expiry);
    }
  }

  names(ip: string): string[] {
    const names = this.byIp.get(ip);
    if (!names) return EMPTY;
    const now = this.now();
    const out: string[] = [];
    for (const [n, exp] of names) {
      if (exp >= now) out.push(n);
      else names.delete(n);
    }
    if (names.size === 0) this.byIp.delete(ip);
    return out.sort();
  }
}
const EMPTY: string[] = [];
