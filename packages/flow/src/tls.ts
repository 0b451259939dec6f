// Transport security shared by agent, relay and CLI: certificate files checked and loaded with one
// clear error naming the flag and file, TLS servers for grpc-js whose certificates are reloaded
// when their files change (new handshakes only: running streams keep their connection), client
// credentials, and handshake failures logged once per peer and reason.
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { chmodSync, readFileSync, statSync } from 'node:fs';
import { isIP } from 'node:net';
import * as tls from 'node:tls';
import { FlowctlError } from './errors.js';
import { credentials, Metadata, ServerCredentials, status, type ChannelCredentials, type Client, type Server } from '@grpc/grpc-js';

/** A certificate, key or CA file as the user named it: the flag is part of every error. */
export interface FileRef {
  flag: string;
  path: string;
}

export const MIN_TLS_VERSION = 'TLSv1.2';

export interface Logger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

function read(ref: FileRef): Buffer {
  try {
    return readFileSync(ref.path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (e as Error).message;
    throw new FlowctlError('CONFIG', `${ref.flag} ${ref.path}: cannot read: ${why}`, { file: ref.path });
  }
}

/** Every certificate in a PEM file, each checked for its validity period. */
function certificates(ref: FileRef, pem: Buffer, now: Date): X509Certificate[] {
  const blocks = pem.toString('latin1').match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g);
  if (!blocks) throw new FlowctlError('CONFIG', `${ref.flag} ${ref.path}: no PEM certificate in the file`, { file: ref.path });
  return blocks.map((b) => {
    let c: X509Certificate;
    try {
      c = new X509Certificate(b);
    } catch (e) {
      throw new FlowctlError('CONFIG', `${ref.flag} ${ref.path}: not a valid certificate: ${(e as Error).message}`, { file: ref.path });
    }
    if (new Date(c.validTo) < now) throw new FlowctlError('CONFIG', `${ref.flag} ${ref.path}: certificate "${c.subject.replace(/\n/g, ', ')}" expired on ${new Date(c.validTo).toISOString()}`, { file: ref.path });
    if (new Date(c.validFrom) > now) throw new FlowctlError('CONFIG', `${ref.flag} ${ref.path}: certificate "${c.subject.replace(/\n/g, ', ')}" is not valid before ${new Date(c.validFrom).toISOString()}`, { file: ref.path });
    return c;
  });
}

export interface Identity {
  cert: Buffer;
  key: Buffer;
}

/** A certificate chain and its private key; throws FlowctlError('CONFIG') naming the file at fault. */
export function loadIdentity(cert: FileRef, key: FileRef, now = new Date()): Identity {
  const certPem = read(cert);
  const keyPem = read(key);
  const [leaf] = certificates(cert, certPem, now);
  let k;
  try {
    k = createPrivateKey(keyPem);
  } catch (e) {
    throw new FlowctlError('CONFIG', `${key.flag} ${key.path}: not a valid private key: ${(e as Error).message}`, { file: key.path });
  }
  if (!leaf!.checkPrivateKey(k)) throw new FlowctlError('CONFIG', `${key.flag} ${key.path}: key does not match the certificate in ${cert.path}`, { file: key.path });
  return { cert: certPem, key: keyPem };
}

/** CA bundles, concatenated; each file must hold at least one valid certificate. */
export function loadCAs(refs: FileRef[], now = new Date()): Buffer {
  return Buffer.concat(
    refs.map((r) => {
      const pem = read(r);
      certificates(r, pem, now);
      return Buffer.concat([pem, Buffer.from('\n')]);
    }),
  );
}

/**
 * Polls files' identity (inode, mtime, size) and calls `reload` once a change has settled (the same
 * identity on two polls in a row), so a rotation that writes the certificate, then the key, is
 * loaded once, not half-way. Not fs.watch: editors and kubelet replace files through renames.
 */
export function watchFiles(paths: string[], reload: () => void, intervalMs = 500): () => void {
  const identity = () =>
    paths
      .map((p) => {
        try {
          const st = statSync(p);
          return `${st.ino}:${st.mtimeMs}:${st.size}`;
        } catch {
          return 'missing';
        }
      })
      .join('|');
  let loaded = identity();
  let seen = loaded;
  const timer = setInterval(() => {
    const now = identity();
    if (now === loaded) {
      seen = now;
      return;
    }
    if (now !== seen) {
      seen = now;
      return;
    }
    loaded = now;
    reload();
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}

/** Logs each (peer, reason) once: a client retrying with backoff must not flood the log. */
export class OncePerPeer {
  private readonly seen = new Set<string>();
  constructor(private readonly max = 4096) {}

  first(peer: string, reason: string): boolean {
    const k = `${peer}\u0000${reason}`;
    if (this.seen.has(k)) return false;
    if (this.seen.size >= this.max) this.seen.clear();
    this.seen.add(k);
    return true;
  }

  /** After a success the next failure of this peer is news again. */
  forget(peer: string): void {
    for (const k of this.seen) if (k.startsWith(`${peer}\u0000`)) this.seen.delete(k);
  }
}

/** OpenSSL's handshake errors in words an operator acts on. */
export function handshakeReason(e: Error & { code?: string; reason?: string }): string {
  const code = e.code ?? '';
  const known: Record<string, string> = {
    ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE: 'no client certificate',
    ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED: 'the server requires a client certificate',
    ERR_SSL_TLSV1_ALERT_UNKNOWN_CA: 'the peer does not trust our certificate (unknown CA)',
    ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE: 'the peer rejected our certificate (bad certificate: wrong server name?)',
    ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED: 'the peer says our certificate has expired',
    ERR_SSL_WRONG_VERSION_NUMBER: 'not TLS (plaintext to a TLS port?)',
    ERR_SSL_HTTP_REQUEST: 'not TLS (plaintext to a TLS port?)',
    ERR_SSL_UNSUPPORTED_PROTOCOL: `the peer offers a TLS version below ${MIN_TLS_VERSION}`,
    ERR_SSL_NO_PROTOCOLS_AVAILABLE: `the peer offers a TLS version below ${MIN_TLS_VERSION}`,
    CERT_HAS_EXPIRED: 'certificate has expired',
    DEPTH_ZERO_SELF_SIGNED_CERT: 'self-signed certificate not trusted',
    UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'certificate not signed by a trusted CA',
    UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'certificate not signed by a trusted CA',
    SELF_SIGNED_CERT_IN_CHAIN: 'certificate not signed by a trusted CA',
    ERR_TLS_CERT_ALTNAME_INVALID: 'certificate does not match the server name',
  };
  if (known[code]) return known[code]!;
  if (code === 'ECONNRESET') return 'connection closed during the handshake';
  return (e.reason ?? e.message).replace(/^.*routines:/, '').replace(/:.*$/, '') || code || 'handshake failed';
}

export interface ServerTlsFiles {
  cert: FileRef;
  key: FileRef;
  /** Client CAs: non-empty turns on mutual TLS (a client certificate is required and verified). */
  clientCAs: FileRef[];
}

function secureContextOptions(files: ServerTlsFiles): tls.SecureContextOptions {
  const id = loadIdentity(files.cert, files.key);
  return {
    ...id,
    ...(files.clientCAs.length > 0 && { ca: loadCAs(files.clientCAs) }),
    minVersion: MIN_TLS_VERSION,
  };
}

/** Checks every file now (the start-up error), without serving. */
export function checkServerTls(files: ServerTlsFiles): void {
  secureContextOptions(files);
}

export interface TlsListener {
  port: number;
  close(): void;
}

/**
 * Serves `server`'s services over TLS on host:port. Our own tls.Server does the handshakes, so that
 * failures can be logged per peer and the certificate swapped (setSecureContext) when its files
 * change; established connections go to grpc-js through its connection injector, and are never
 * touched by a reload. Throws FlowctlError('CONFIG') at start when a file is missing, unreadable or expired.
 */
export async function listenTls(server: Server, host: string, port: number, files: ServerTlsFiles, log: Logger): Promise<TlsListener> {
  const context = secureContextOptions(files);
  const injector = server.createConnectionInjector(ServerCredentials.createInsecure());
  const once = new OncePerPeer();
  // Client certificates are verified here rather than by rejectUnauthorized, which closes the
  // socket without saying why (ECONNRESET); an unverified connection is closed before grpc-js sees it.
  const mutual = files.clientCAs.length > 0;
  const tlsServer = tls.createServer({ ...context, requestCert: mutual, rejectUnauthorized: false, ALPNProtocols: ['h2'] });
  const refuse = (socket: tls.TLSSocket, reason: string) => {
    const peer = socket.remoteAddress ?? 'unknown';
    if (once.first(peer, reason)) log.warn({ peer, reason }, 'TLS handshake failed');
    socket.destroy();
  };
  tlsServer.on('secureConnection', (socket) => {
    if (mutual && !socket.authorized) {
      const cert = socket.getPeerCertificate();
      const reason = !cert || Object.keys(cert).length === 0 ? 'no client certificate' : `client certificate refused: ${handshakeReason(Object.assign(new Error(String(socket.authorizationError)), { code: String(socket.authorizationError) }))}`;
      refuse(socket, reason);
      return;
    }
    once.forget(socket.remoteAddress ?? '');
    injector.injectConnection(socket);
  });
  tlsServer.on('tlsClientError', (err, socket) => refuse(socket, handshakeReason(err)));
  const refs = [files.cert, files.key, ...files.clientCAs];
  const stopWatch = watchFiles(refs.map((r) => r.path), () => {
    try {
      tlsServer.setSecureContext(secureContextOptions(files));
      log.info({ cert: files.cert.path }, 'TLS certificate reloaded');
    } catch (e) {
      log.error({ cert: files.cert.path }, `${(e as Error).message}; keeping the last good certificate`);
    }
  });
  await new Promise<void>((resolve, reject) => {
    tlsServer.once('error', reject);
    tlsServer.listen(port, host === '' ? undefined : host, () => {
      tlsServer.off('error', reject);
      resolve();
    });
  }).catch((e: Error) => {
    stopWatch();
    injector.destroy();
    throw e;
  });
  const addr = tlsServer.address();
  return {
    port: typeof addr === 'object' && addr ? addr.port : port,
    // Stops accepting; the connections already handed over belong to `server` and end with its shutdown.
    close: () => {
      stopWatch();
      tlsServer.close();
    },
  };
}

export interface ClientTlsFiles {
  /** CAs to verify the server with; empty = the system's roots. */
  ca: FileRef[];
  cert?: FileRef;
  key?: FileRef;
  /** Skip verifying the server's chain and name (hubble --tls-allow-insecure). */
  allowInsecure?: boolean;
}

/**
 * Channel credentials from certificate files, read now (a missing or expired file is a
 * FlowctlError('CONFIG')). `serverName` is checked against the server's certificate; grpc-js also sends
 * it as SNI when given as the channel option 'grpc.ssl_target_name_override'.
 */
export function clientCredentials(files: ClientTlsFiles): ChannelCredentials {
  quietIpServername();
  if (!!files.cert !== !!files.key) {
    const missing = files.cert ? 'key' : 'certificate';
    throw new FlowctlError('CONFIG', `a client ${missing} file is needed too: ${files.cert ? files.cert.flag.replace(/cert-file$/, 'key-file') : files.key!.flag.replace(/key-file$/, 'cert-file')}`);
  }
  const id = files.cert && files.key ? loadIdentity(files.cert, files.key) : undefined;
  const ca = files.ca.length > 0 ? loadCAs(files.ca) : undefined;
  const ctx = tls.createSecureContext({ ...(ca && { ca }), ...id, minVersion: MIN_TLS_VERSION });
  return credentials.createFromSecureContext(ctx, files.allowInsecure ? { rejectUnauthorized: false, checkServerIdentity: () => undefined } : {});
}

let quieted = false;
/**
 * Dialling an IP address without a server name, grpc-js sends the IP as SNI and Node warns that
 * RFC 6066 forbids it (DEP0123) on stderr, in the middle of the CLI's output. The certificate is
 * still verified against the IP; only that one warning is dropped.
 */
function quietIpServername(): void {
  if (quieted) return;
  quieted = true;
  const emit = process.emitWarning.bind(process) as (...a: unknown[]) => void;
  process.emitWarning = ((w: string | Error, ...rest: unknown[]) => {
    const code = typeof rest[0] === 'object' && rest[0] ? (rest[0] as { code?: string }).code : rest[1];
    if (code === 'DEP0123') return;
    emit(w, ...rest);
  }) as typeof process.emitWarning;
}

/** Channel options naming the server to verify (also the SNI sent). */
export function serverNameOptions(serverName: string | undefined): Record<string, string> {
  return serverName ? { 'grpc.ssl_target_name_override': serverName } : {};
}

/** True for addresses only this machine can reach: 127.0.0.0/8, ::1, localhost. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '');
  if (h === 'localhost') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1' || /^::ffff:127\./i.test(h);
  return false;
}

/** Unix sockets of the Observer API are group-readable only: mode 0660, as Cilium's. */
export function restrictSocket(path: string): void {
  chmodSync(path, 0o660);
}

/** The name Hubble verifies an agent by: `<node>.<cluster>.hubble-grpc.cilium.io` (dots in the
 * node name become dashes, so the name stays one DNS label). */
export function hubbleServerName(node: string, cluster: string): string {
  return `${node.replace(/\./g, '-')}.${cluster}.hubble-grpc.cilium.io`;
}

/** The host of `[host]:port`, `:port` ('' = every address) or `[v6]:port`. */
export function listenHost(listen: string): string {
  const i = listen.lastIndexOf(':');
  return (i < 0 ? listen : listen.slice(0, i)).replace(/^\[|\]$/g, '');
}

/**
 * The one line refusing a plaintext TCP listener that other machines can reach, naming the flags
 * that fix it; undefined when the listener is loopback only.
 */
export function plaintextRefusal(listen: string, flags: { listen: string; cert: string; key: string; disable: string }): string | undefined {
  if (isLoopbackHost(listenHost(listen))) return undefined;
  return `${flags.listen} ${listen} is reachable from other machines and would send flows in plaintext: add ${flags.cert} FILE ${flags.key} FILE to serve TLS, or ${flags.disable} to serve plaintext on purpose`;
}

/**
 * Client credentials from files, reloaded when they change: each new connection takes current(),
 * established ones keep theirs. A reload that fails is logged and the last good files stay.
 */
export function watchClientCredentials(files: ClientTlsFiles, log: Logger): { current(): ChannelCredentials; stop(): void } {
  let creds = clientCredentials(files);
  const paths = [...files.ca, ...(files.cert ? [files.cert] : []), ...(files.key ? [files.key] : [])].map((r) => r.path);
  const stop = watchFiles(paths, () => {
    try {
      creds = clientCredentials(files);
      log.info({ cert: files.cert?.path }, 'TLS client certificates reloaded');
    } catch (e) {
      log.error({ cert: files.cert?.path }, `${(e as Error).message}; keeping the last good certificate`);
    }
  });
  return { current: () => creds, stop };
}

/**
 * Why a channel that did not become ready failed, in grpc-js's words (its "Last error", e.g. a TLS
 * handshake failure or ECONNREFUSED): a call that does not wait for readiness fails at once with it.
 * Undefined when the channel does not say within a second.
 */
export function connectFailureReason(client: Client): Promise<string | undefined> {
  return new Promise((resolve) => {
    client.makeUnaryRequest(
      '/grpc.health.v1.Health/Check',
      () => Buffer.alloc(0),
      (b: Buffer) => b,
      {},
      new Metadata(),
      { deadline: Date.now() + 1000 },
      (e) => {
        if (!e || e.code !== status.UNAVAILABLE) return resolve(undefined);
        const m = /Last error: (.*?)(?: \(\d{4}-\d\d-\d\dT[^)]*\))?\. Resolution note/.exec(e.details);
        resolve((m?.[1] ?? e.details).replace(/^Error: /, ''));
      },
    );
  });
}
