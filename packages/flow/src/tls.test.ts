import { mkdtempSync, rmSync, writeFileSync, chmodSync, readFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { Server } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeCa, makeLeaf, type Ca, type KeyPair } from './testing/pki.js';
import { hubbleServerName, isLoopbackHost, listenTls, loadCAs, loadIdentity, OncePerPeer, plaintextRefusal, watchFiles } from './tls.js';

const dir = mkdtempSync(join(tmpdir(), 'flow-tls-'));
let ca: Ca;
let server: KeyPair;
let expired: KeyPair;
beforeAll(() => {
  ca = makeCa(dir, 'ca');
  server = makeLeaf(dir, ca, 'server', ['server.example', '127.0.0.1']);
  expired = makeLeaf(dir, ca, 'expired', ['server.example'], { expired: true });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const ref = (flag: string, path: string) => ({ flag, path });

describe('certificate files', () => {
  it('loads a certificate and its key', () => {
    const id = loadIdentity(ref('--cert', server.cert), ref('--key', server.key));
    expect(id.cert.toString()).toContain('BEGIN CERTIFICATE');
  });

  it('names the flag and file of a missing, unreadable, expired, mismatched or garbage file', () => {
    const missing = join(dir, 'nope.crt');
    expect(() => loadIdentity(ref('--cert', missing), ref('--key', server.key))).toThrow(`--cert ${missing}: cannot read: no such file`);
    expect(() => loadIdentity(ref('--cert', expired.cert), ref('--key', expired.key))).toThrow(
      /^--cert .*expired\.crt: certificate "CN=server.example" expired on 2020-01-02T00:00:00.000Z$/,
    );
    expect(() => loadIdentity(ref('--cert', server.cert), ref('--key', expired.key))).toThrow(`--key ${expired.key}: key does not match the certificate in ${server.cert}`);
    const garbage = join(dir, 'garbage.pem');
    writeFileSync(garbage, 'hello\n');
    expect(() => loadCAs([ref('--ca', garbage)])).toThrow(`--ca ${garbage}: no PEM certificate in the file`);
    expect(() => loadIdentity(ref('--cert', server.cert), ref('--key', garbage))).toThrow(/^--key .*garbage\.pem: not a valid private key/);
    if (process.getuid?.() !== 0) {
      const locked = join(dir, 'locked.key');
      copyFileSync(server.key, locked);
      chmodSync(locked, 0);
      expect(() => loadIdentity(ref('--cert', server.cert), ref('--key', locked))).toThrow(/permission denied/);
    }
  });
});

describe('rules', () => {
  it('refuses plaintext only where other machines reach the listener', () => {
    const flags = { listen: '--listen-address', cert: '--tls-cert-file', key: '--tls-key-file', disable: '--disable-tls' };
    for (const ok of ['127.0.0.1:4244', '127.1.2.3:0', 'localhost:4244', '[::1]:4244']) expect(plaintextRefusal(ok, flags)).toBeUndefined();
    for (const bad of [':4244', '0.0.0.0:4244', '[::]:4244', '10.0.0.1:4244', 'node-1:4244']) {
      expect(plaintextRefusal(bad, flags)).toBe(`--listen-address ${bad} is reachable from other machines and would send flows in plaintext: add --tls-cert-file FILE --tls-key-file FILE to serve TLS, or --disable-tls to serve plaintext on purpose`);
    }
    expect(isLoopbackHost('::ffff:127.0.0.1')).toBe(true);
  });

  it('names agents as Hubble does', () => {
    expect(hubbleServerName('node-1', 'default')).toBe('node-1.default.hubble-grpc.cilium.io');
    expect(hubbleServerName('ip-10-0-0-1.ec2.internal', 'prod')).toBe('ip-10-0-0-1-ec2-internal.prod.hubble-grpc.cilium.io');
  });

  it('reports each peer and reason once, again after a success', () => {
    const once = new OncePerPeer();
    expect(once.first('10.0.0.1', 'no client certificate')).toBe(true);
    expect(once.first('10.0.0.1', 'no client certificate')).toBe(false);
    expect(once.first('10.0.0.2', 'no client certificate')).toBe(true);
    expect(once.first('10.0.0.1', 'unknown CA')).toBe(true);
    once.forget('10.0.0.1');
    expect(once.first('10.0.0.1', 'no client certificate')).toBe(true);
    expect(once.first('10.0.0.2', 'no client certificate')).toBe(false);
  });
});

describe('reload', () => {
  it('calls back once a change to the files has settled', async () => {
    const f = join(dir, 'watched.pem');
    writeFileSync(f, 'a');
    let calls = 0;
    const stop = watchFiles([f], () => calls++, 20);
    try {
      await new Promise((r) => setTimeout(r, 80));
      expect(calls).toBe(0);
      writeFileSync(f, 'bb');
      await new Promise((r) => setTimeout(r, 150));
      expect(calls).toBe(1);
    } finally {
      stop();
    }
  });

  it('serves TLS 1.2 and up only', async () => {
    const grpc = new Server();
    const log = { info() {}, warn() {}, error() {} };
    const l = await listenTls(grpc, '127.0.0.1', 0, { cert: ref('c', server.cert), key: ref('k', server.key), clientCAs: [] }, log);
    try {
      const version = (v: 'TLSv1.1' | 'TLSv1.2') =>
        new Promise<string>((resolve) => {
          const s = connect({ host: '127.0.0.1', port: l.port, ca: readFileSync(ca.cert), servername: 'server.example', minVersion: 'TLSv1', maxVersion: v, ALPNProtocols: ['h2'] }, () => {
            resolve(s.getProtocol() ?? '');
            s.destroy();
          });
          s.on('error', (e) => resolve(`error: ${(e as NodeJS.ErrnoException).code}`));
        });
      expect(await version('TLSv1.2')).toBe('TLSv1.2');
      expect(await version('TLSv1.1')).toMatch(/^error/);
    } finally {
      l.close();
      grpc.forceShutdown();
    }
  });
});
