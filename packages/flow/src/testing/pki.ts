// Throw-away certificate authorities for TLS tests and benchmarks, made with the openssl command
// line in a directory the caller owns (and removes): CA certificates, and leaf certificates for
// servers and clients with the names to verify, optionally already expired.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface KeyPair {
  cert: string;
  key: string;
}

export interface Ca extends KeyPair {
  name: string;
}

const openssl = (dir: string, args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

/** A self-signed CA certificate valid for a day. */
export function makeCa(dir: string, name: string): Ca {
  mkdirSync(dir, { recursive: true });
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  openssl(dir, ['req', '-x509', ...EC, '-keyout', key, '-out', cert, '-days', '1', '-subj', `/CN=${name}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  return { name, cert, key };
}

/**
 * A certificate signed by `ca` for `names` (DNS names or IP addresses, all in subjectAltName),
 * usable by servers and clients; `expired` dates it in 2020. Written to `<dir>/<file>.crt|.key`.
 */
export function makeLeaf(dir: string, ca: Ca, file: string, names: string[], opts: { expired?: boolean } = {}): KeyPair {
  const cert = join(dir, `${file}.crt`);
  const key = join(dir, `${file}.key`);
  const csr = join(dir, `${file}.csr`);
  const san = names.map((n) => (/^[\d.]+$|:/.test(n) ? `IP:${n}` : `DNS:${n}`)).join(',');
  openssl(dir, ['req', ...EC, '-keyout', key, '-out', csr, '-subj', `/CN=${names[0] ?? file}`]);
  const ext = join(dir, `${file}.ext`);
  writeFileSync(ext, `[x]\nsubjectAltName=${san}\nextendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=CA:FALSE\n`);
  // `openssl ca` takes explicit start and end dates (x509 -req only takes -days from now).
  const db = join(dir, `${ca.name}.db`);
  mkdirSync(db, { recursive: true });
  const cnf = join(db, 'ca.cnf');
  writeFileSync(cnf, `[ca]\ndefault_ca=c\n[c]\ndatabase=${db}/index.txt\nnew_certs_dir=${db}\nserial=${db}/serial\ndefault_md=sha256\npolicy=p\nunique_subject=no\n[p]\ncommonName=supplied\n`);
  try {
    writeFileSync(join(db, 'index.txt'), '', { flag: 'wx' });
    writeFileSync(join(db, 'serial'), `${Date.now().toString(16).padStart(16, '0')}\n`, { flag: 'wx' });
  } catch {
    // Already made by an earlier leaf of this CA.
  }
  const dates = opts.expired ? ['-startdate', '20200101000000Z', '-enddate', '20200102000000Z'] : ['-days', '1'];
  openssl(dir, ['ca', '-batch', '-notext', '-config', cnf, '-cert', ca.cert, '-keyfile', ca.key, '-in', csr, '-out', cert,
    '-extfile', ext, '-extensions', 'x', ...dates]);
  return { cert, key };
}
