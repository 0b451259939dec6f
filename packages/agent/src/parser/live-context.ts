// The agent's ParserContext: endpoints directory, DNS cache, clock, interface names and policy refs.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import type { Endpoint, Policy, Timestamp } from '@flowctl/flow';
import type { PolicyRef } from '@flowctl/policy';
import { DnsCache } from '../endpoints/dns-cache.js';
import type { EndpointDirectory } from '../endpoints/directory.js';
import { MonotonicClock } from './clock.js';
import { UuidSource } from './strings.js';
import type { ParserContext, ParserCounters } from './context.js';

export class LiveContext implements ParserContext {
  readonly counters: ParserCounters = { malformedEvents: 0, malformedL7: 0, l7StreamLost: 0, l7LostHttpRequests: 0, l7LostHttpResponses: 0, l7LostDns: 0 };
  readonly clock = new MonotonicClock();
  readonly dns = new DnsCache();
  private ifNames = new Map<number, string>();
  private ifNamesReadMs = 0;
  private policies: Policy[] = [];
  private readonly uuids = new UuidSource();
  private blocks: { byEntryId(id: number): { cidr: string; reason: string; isolate?: string } | undefined } | undefined;
  readonly nodeNetnsIno = ownNetnsInode();
  /** Also told every DNS answer with addresses (toFQDNs answers the kernel may have missed). */
  onDnsAnswer: ((name: string, ips: string[], ttlS: number, client: string, tcp: boolean) => void) | undefined;

  constructor(readonly directory: EndpointDirectory) {}

  get nodeName(): string {
    return this.directory.nodeName;
  }

  setPolicyRefs(refs: PolicyRef[]): void {
    this.policies = refs.map((r) =>
      Object.freeze({ name: r.name, namespace: r.namespace, labels: r.labels, revision: r.revision, kind: r.kind }),
    );
  }

  toWallTime(monotonicNs: bigint): Timestamp {
    return this.clock.toWall(monotonicNs);
  }

  endpointForIp(ip: string): Endpoint {
    return this.directory.forIp(ip);
  }

  endpointForNetns(netnsIno: number): Endpoint | undefined {
    return this.directory.forNetns(netnsIno);
  }

  isLocalEndpointIp(ip: string): boolean {
    return this.directory.isLocal(ip);
  }

  policyForRef(ref: number): Policy | undefined {
    return this.policies[ref - 1];
  }

  ifName(ifindex: number): string {
    const n = this.ifNames.get(ifindex);
    if (n !== undefined) return n;
    // Interfaces come and go with pods; re-read at most once a second on a miss.
    const now = Date.now();
    if (now - this.ifNamesReadMs > 1000) {
      this.ifNamesReadMs = now;
      this.ifNames = readInterfaces();
      return this.ifNames.get(ifindex) ?? '';
    }
    return '';
  }

  namesForIp(ip: string): string[] {
    return this.dns.names(ip);
  }

  learnNames(name: string, ips: string[], ttlS: number, client: string, tcp: boolean): void {
    this.dns.learn(name, ips, ttlS);
    this.onDnsAnswer?.(name, ips, ttlS, client, tcp);
  }

  newUuid(): string {
    return this.uuids.next();
  }

  setBlockList(list: { byEntryId(id: number): { cidr: string; reason: string; isolate?: string } | undefined }): void {
    this.blocks = list;
  }

  blockEntry(id: number): { cidr: string; reason: string; isolate?: string } | undefined {
    return this.blocks?.byEntryId(id);
  }
}

function ownNetnsInode(): number {
  try {
    return statSync('/proc/self/ns/net').ino;
  } catch {
    return 0;
  }
}

/** ifindex → name of the interfaces in this process's network namespace. */
export function readInterfaces(): Map<number, string> {
  const m = new Map<number, string>();
  try {
    for (const name of readdirSync('/sys/class/net')) {
      try {
        const idx = Number(readFileSync(`/sys/class/net/${name}/ifindex`, 'utf8').trim());
        if (Number.isInteger(idx)) m.set(idx, name);
      } catch {
        // the interface vanished between readdir and read
      }
    }
  } catch {
    // no sysfs (unusual container): names stay empty, flows keep the index
  }
  return m;
}
