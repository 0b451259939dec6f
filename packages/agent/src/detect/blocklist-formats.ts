// Blocklist files in the formats feeds publish, recognised from their first entry:
//   hosts        "0.0.0.0 evil.example other.example"   (names; the address is ignored)
//   drop-json    Spamhaus DROP: {"cidr":"192.0.2.0/24","sblid":"SBL123",...} per line
//   urlhaus-csv  URLhaus: "id","dateadded","url",... (the url column's host: a name or an address)
//   plain        one domain ("*.x" for every name below x), IP address or CIDR per line
// Comments start with # (or ; in plain lists); a bad line is reported and skipped, never fatal.
import { CidrSet, NameSet, parseV4 } from './blocklist-index.js';

export type BlocklistFormat = 'hosts' | 'drop-json' | 'urlhaus-csv' | 'plain';

export interface ParsedList {
  format: BlocklistFormat;
  names: NameSet;
  cidrs: CidrSet;
  /** Lines that are neither comments nor entries. */
  badLines: number;
}

/** Where bad lines go: 1-based line number and why. */
export type BadLine = (line: number, why: string) => void;

const HOSTS_IGNORED = new Set(['localhost', 'localhost.localdomain', 'local', 'broadcasthost', 'ip6-localhost', 'ip6-loopback',
  'ip6-localnet', 'ip6-mcastprefix', 'ip6-allnodes', 'ip6-allrouters', 'ip6-allhosts', '0.0.0.0']);
// Letters, digits, '-' and '_' (service names), at least one dot; labels never empty.
const NAME = /^[a-z0-9_-]+(\.[a-z0-9_-]+)+$/;

/** A whole list in one string (tests, small files); files are read with ListParser a chunk at a time. */
export function parseBlocklist(text: string, bad: BadLine): ParsedList {
  const p = new ListParser(bad);
  p.write(text);
  return p.end();
}

/**
 * A list fed as text in pieces of any size (a file's chunks), parsed line by line: only the line
 * being read and the entries found are held, never the file's text. The format is recognised from
 * the first entry (or a URLhaus header comment before it).
 */
export class ListParser {
  private format: BlocklistFormat | undefined;
  private readonly out: ParsedList = { format: 'plain', names: new NameSet(), cidrs: new CidrSet(), badLines: 0 };
  /** The end of the last piece when it had no newline yet. */
  private carry = '';
  private lineNo = 0;
  // URLhaus columns, from its header comment.
  private urlCol = 2;
  private idCol = 0;

  constructor(private readonly bad: BadLine) {}

  /** Parses the complete lines of `text`; a partial last line waits for the next piece. */
  write(text: string): void {
    let start = 0;
    let nl = text.indexOf('\n');
    if (nl < 0) {
      this.carry += text;
      return;
    }
    if (this.carry !== '') {
      this.line(this.carry + text.slice(0, nl));
      this.carry = '';
      start = nl + 1;
      nl = text.indexOf('\n', start);
    }
    for (; nl >= 0; start = nl + 1, nl = text.indexOf('\n', start)) this.line(text.slice(start, nl));
    this.carry = text.slice(start);
  }

  /** The list, once the last piece was written. */
  end(): ParsedList {
    if (this.carry !== '') this.line(this.carry);
    this.carry = '';
    this.out.format = this.format ?? 'plain';
    return this.out;
  }

  private fail(why: string): void {
    this.out.badLines++;
    this.bad(this.lineNo, why);
  }

  private line(raw: string): void {
    this.lineNo++;
    if (this.format === undefined && !(this.format = detect(raw))) return;
    switch (this.format) {
      case 'hosts':
        return this.hosts(raw);
      case 'drop-json':
        return this.dropJson(raw);
      case 'urlhaus-csv':
        return this.urlhaus(raw);
      case 'plain':
        return this.plain(raw);
    }
  }

  private hosts(raw: string): void {
    const line = stripComment(raw, false);
    if (line === '') return;
    const fields = line.split(/\s+/);
    if (fields.length < 2 || !isAddress(fields[0]!)) return this.fail(`not "ADDRESS NAME...": ${clip(line)}`);
    for (let f = 1; f < fields.length; f++) {
      const name = fields[f]!;
      if (HOSTS_IGNORED.has(name.toLowerCase())) continue;
      if (!addName(this.out.names, name)) this.fail(`not a domain name: ${clip(name)}`);
    }
  }

  private plain(raw: string): void {
    const line = stripComment(raw, true);
    if (line === '') return;
    if (/\s/.test(line)) return this.fail(`one entry per line, got: ${clip(line)}`);
    const c = line.charCodeAt(0);
    const looksNumeric = (c >= 48 && c <= 57) || line.includes(':');
    if (looksNumeric && this.out.cidrs.add(line)) return;
    if (!addName(this.out.names, line)) this.fail(`not a domain, IP address or CIDR: ${clip(line)}`);
  }

  private dropJson(raw: string): void {
    const line = raw.trim();
    if (line === '' || line[0] === '#') return;
    let o: unknown;
    try {
      o = JSON.parse(line);
    } catch {
      return this.fail(`not JSON: ${clip(line)}`);
    }
    const rec = o as { cidr?: unknown; sblid?: unknown; type?: unknown };
    if (rec && typeof rec === 'object' && typeof rec.cidr === 'string') {
      if (!this.out.cidrs.add(rec.cidr, typeof rec.sblid === 'string' ? rec.sblid : undefined)) this.fail(`not a CIDR: ${clip(rec.cidr)}`);
    } else if (!(rec && typeof rec === 'object' && rec.type === 'metadata')) {
      // The feed's last line is {"type":"metadata",...}; anything else without a cidr is not an entry.
      this.fail(`no "cidr": ${clip(line)}`);
    }
  }

  private urlhaus(raw: string): void {
    const line = raw.trim();
    if (line === '') return;
    if (line[0] === '#') {
      const m = /^#\s*(.*,.*)$/.exec(line);
      const header = m ? csvFields(m[1]!).map((h) => h.trim().toLowerCase()) : [];
      if (header.includes('url')) {
        this.urlCol = header.indexOf('url');
        this.idCol = header.indexOf('id');
      }
      return;
    }
    const { urlCol, idCol } = this;
    const fields = quotedFields(line, Math.max(urlCol, idCol)) ?? csvFields(line, Math.max(urlCol, idCol));
    const url = fields[urlCol];
    const host = url === undefined ? undefined : urlHost(url);
    if (host === undefined) return this.fail(`no URL in column ${urlCol + 1}: ${clip(line)}`);
    const ref = idCol >= 0 && fields[idCol] ? own(`urlhaus:${fields[idCol]}`) : undefined;
    const ok = host.includes(':') || parseV4(host) >= 0 ? this.out.cidrs.add(host) : addName(this.out.names, host, ref);
    if (!ok) this.fail(`not a host name or address: ${clip(host)}`);
  }
}

/** The format a line says the list is in; undefined for a blank or comment line before any entry. */
function detect(raw: string): BlocklistFormat | undefined {
  const line = raw.trim();
  if (/^#\s*"?id"?,\s*"?dateadded"?,/.test(line)) return 'urlhaus-csv';
  if (line === '' || line[0] === '#' || line[0] === ';') return undefined;
  if (line[0] === '{') return 'drop-json';
  if (line[0] === '"') return 'urlhaus-csv';
  const [first, second] = line.split(/\s+/);
  if (second !== undefined && second[0] !== '#' && second[0] !== ';' && isAddress(first!)) return 'hosts';
  return 'plain';
}

function isAddress(s: string): boolean {
  return parseV4(s) >= 0 || (s.includes(':') && /^[0-9a-fA-F:.]+$/.test(s));
}

function stripComment(raw: string, alsoSemicolon: boolean): string {
  let end = raw.indexOf('#');
  if (alsoSemicolon) {
    const semi = raw.indexOf(';');
    if (semi >= 0 && (end < 0 || semi < end)) end = semi;
  }
  return (end < 0 ? raw : raw.slice(0, end)).trim();
}

/** A name as lists write it ("Evil.Example.", "*.evil.example"); false when it is not one. */
function addName(names: NameSet, raw: string, ref?: string): boolean {
  let name = raw.toLowerCase();
  if (name.endsWith('.')) name = name.slice(0, -1);
  const wildcard = name.startsWith('*.');
  if (wildcard) name = name.slice(2);
  if (name.length > 253 || !NAME.test(name)) return false;
  names.add(own(name), wildcard, ref);
  return true;
}

/** The first fields of a line where every field is quoted and holds no quote, as URLhaus writes
 * them (the fast path of a million-line file); undefined for any other line. */
function quotedFields(line: string, upTo: number): string[] | undefined {
  if (line.charCodeAt(0) !== 34) return undefined;
  const out: string[] = [];
  let start = 1;
  for (let c = 0; c <= upTo; c++) {
    const end = line.indexOf('"', start);
    if (end < 0 || (line.length > end + 1 && line.charCodeAt(end + 1) !== 44)) return undefined;
    out.push(line.slice(start, end));
    if (line.charCodeAt(end + 2) !== 34) return c === upTo ? out : undefined;
    start = end + 3;
  }
  return out;
}

/** Fields of one CSV line: quoted ("" inside quotes is a quote) or bare. */
function csvFields(line: string, upTo = Infinity): string[] {
  const out: string[] = [];
  let i = 0;
  while (i <= line.length && out.length <= upTo) {
    if (line[i] === '"') {
      let v = '';
      let j = i + 1;
      for (;;) {
        const q = line.indexOf('"', j);
        if (q < 0) {
          v += line.slice(j);
          j = line.length;
          break;
        }
        v += line.slice(j, q);
        if (line[q + 1] === '"') {
          v += '"';
          j = q + 2;
        } else {
          j = q + 1;
          break;
        }
      }
      out.push(v);
      const comma = line.indexOf(',', j);
      if (comma < 0) break;
      i = comma + 1;
    } else {
      const comma = line.indexOf(',', i);
      out.push((comma < 0 ? line.slice(i) : line.slice(i, comma)).trim());
      if (comma < 0) break;
      i = comma + 1;
    }
  }
  return out;
}

/** The host of "scheme://host[:port]/...", lower-case, IPv6 without brackets; undefined when none. */
function urlHost(url: string): string | undefined {
  const s = url.indexOf('://');
  if (s <= 0) return undefined;
  let host = url.slice(s + 3);
  const at = host.search(/[/?#]/);
  if (at >= 0) host = host.slice(0, at);
  const cred = host.lastIndexOf('@');
  if (cred >= 0) host = host.slice(cred + 1);
  if (host.startsWith('[')) {
    const close = host.indexOf(']');
    return close > 1 ? host.slice(1, close).toLowerCase() : undefined;
  }
  const colon = host.indexOf(':');
  if (colon >= 0) host = host.slice(0, colon);
  return host === '' ? undefined : host.toLowerCase();
}

/** A copy of `s` that does not hold on to the file's text: V8 makes a substring a view of its
 * parent, so a million names sliced from a 100 MB file would keep all of it. Text without quotes,
 * backslashes or control characters goes through the JSON reader, the cheapest copy V8 offers. */
function own(s: string): string {
  if (s.length < 13) return s;
  return /["\\\x00-\x1f]/.test(s) ? Buffer.from(s, 'latin1').toString('latin1') : (JSON.parse(`"${s}"`) as string);
}

function clip(s: string): string {
  return s.length > 60 ? `${JSON.stringify(s.slice(0, 60))}…` : JSON.stringify(s);
}
