// The TLS flags of `hubble observe` ("Server Flags"), on the program so every command that dials
// a server takes them (flowctl --tls observe, flowctl observe --tls).
import type { Command } from 'commander';
import type { TlsOptions } from '../client.js';

/** The TLS flags as `hubble observe` takes them (its "Server Flags"). */
export function addTlsOptions(cmd: Command): Command {
  return cmd
    .option('--tls', "use TLS to reach the server (also implied by a tls:// address or a client certificate)")
    .option('--tls-allow-insecure', "skip verifying the server's certificate chain and name (NOT recommended: open to machine-in-the-middle attacks)")
    .option('--tls-ca-cert-files <files>', 'CA certificates (PEM) to verify the server with; repeatable, comma-separated', (v: string, prev: string[] = []) => [...prev, v])
    .option('--tls-client-cert-file <file>', 'client certificate (PEM) for mutual TLS (implies TLS)')
    .option('--tls-client-key-file <file>', 'private key of the client certificate (PEM) (implies TLS)')
    .option('--tls-server-name <name>', "name to verify on the server's certificate (e.g. instance.hubble-relay.cilium.io)");
}

/** The TLS flags given to `cmd` or its parents. */
export function tlsOptionsOf(cmd: Command): TlsOptions {
  const o = cmd.optsWithGlobals<TlsOptions>();
  return {
    ...(o.tls && { tls: true }),
    ...(o.tlsAllowInsecure && { tlsAllowInsecure: true }),
    ...(o.tlsCaCertFiles && { tlsCaCertFiles: o.tlsCaCertFiles }),
    ...(o.tlsClientCertFile && { tlsClientCertFile: o.tlsClientCertFile }),
    ...(o.tlsClientKeyFile && { tlsClientKeyFile: o.tlsClientKeyFile }),
    ...(o.tlsServerName && { tlsServerName: o.tlsServerName }),
  };
}
