// nginx in a pod namespace for HTTP ground truth: its access log has one line per request,
// "METHOD URI STATUS", whatever the clients or the agent saw.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const conf = (d: string, ip: string) => `user root;
master_process off; # one process: a test that kills it leaves no orphaned worker
worker_processes 1;
daemon off;
pid ${d}/nginx.pid;
error_log ${d}/nginx-error.log;
events {}
http {
  log_format truth '$request_method $request_uri $status';
  access_log ${d}/access.log truth;
  client_body_temp_path ${d}/tmp; proxy_temp_path ${d}/tmp; fastcgi_temp_path ${d}/tmp; uwsgi_temp_path ${d}/tmp; scgi_temp_path ${d}/tmp;
  keepalive_requests 1000000;
  default_type text/plain;
  server {
    listen ${ip}:80;
    root ${d}/www;
    location = /500 { return 500; }
    location = /upload { return 201 "stored\\n"; }
    location /gz/ { gzip on; gzip_types text/plain; gzip_min_length 0; }
  }
}
`;

export interface Nginx {
  proc: ChildProcess;
  /** Lines of the access log so far. */
  log(): string[];
}

/** Serves `files` (path under the root -> content) on ip:80 from namespace `ns`; state in `dir`. */
export function startNginx(ns: string, ip: string, dir: string, files: Record<string, string | Buffer>): Nginx {
  mkdirSync(join(dir, 'tmp'), { recursive: true });
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(join(dir, 'www', path, '..'), { recursive: true });
    writeFileSync(join(dir, 'www', path), content);
  }
  writeFileSync(join(dir, 'access.log'), '');
  writeFileSync(join(dir, 'nginx.conf'), conf(dir, ip));
  const proc = spawn('ip', ['netns', 'exec', ns, 'nginx', '-c', join(dir, 'nginx.conf'), '-p', dir], { stdio: 'ignore' });
  return { proc, log: () => readFileSync(join(dir, 'access.log'), 'utf8').split('\n').filter(Boolean) };
}
