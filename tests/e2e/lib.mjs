// Helpers of the end-to-end tests of examples/progress-broadcast: start and
// stop the real server, plain and TLS HTTP requests, a small WebSocket
// client written against RFC 6455 (so that these tests need nothing from
// npm), a self-signed certificate, and bounded waits. Node's standard
// library only.
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { after } from 'node:test';

export const SERVER = process.env.PROGRESS_BROADCAST;
export const OUT_DIR = process.env.E2E_OUT_DIR || process.cwd();

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Exit 77 (meson's "skipped") with the reason, before any test has run.
// Under CI, where .ci/install-deps has installed everything, a missing tool
// is a broken setup: fail instead.
export function skip(reason) {
  if (process.env.CI === 'true') {
    console.error(`FAIL (CI=true, so not skipped): ${reason}`);
    process.exit(1);
  }
  console.log(`SKIP: ${reason}`);
  process.exit(77);
}

// Polls fn until it returns a truthy value, which it returns; throws after
// ms with what.
export async function waitFor(what, fn, ms = 10000, every = 50) {
  const end = Date.now() + ms;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end)
      throw new Error(`timed out after ${ms} ms waiting for ${what}` +
                      (last instanceof Error ? ` (${last.message})` : ''));
    await sleep(every);
  }
}

export function tempDir(tag) {
  const dir = mkdtempSync(join(tmpdir(), `wsm-e2e-${tag}-`));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

// Everything started here is stopped when the process ends, however it ends.
const cleanups = [];
const servers = new Set();
export function atExit(fn) { cleanups.push(fn); }
function cleanUp() {
  for (const s of servers) s.proc.kill('SIGKILL');
  servers.clear();
  while (cleanups.length) {
    try { cleanups.pop()(); } catch { /* best effort */ }
  }
}
// After the last test: a server a failed test left running would keep
// node waiting for ever.
after(cleanUp);
process.on('exit', cleanUp);
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => { cleanUp(); process.exit(1); });
}

// ---- the server ------------------------------------------------------

// Starts progress-broadcast with args (add '--port', '0' for a free port)
// and waits for its "listening on" line. Resolves to
// { proc, port, scheme, output(), exited: Promise<{code, signal}> }.
export async function startServer(args, { env = {}, timeoutMs = 10000, nofile } = {}) {
  // nofile: the server's open-file limit, set by a shell before it execs.
  const [cmd, argv] = nofile
    ? ['/bin/sh', ['-c', `ulimit -n ${nofile} && exec "$0" "$@"`, SERVER, ...args]]
    : [SERVER, args];
  const proc = spawn(cmd, argv, {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout.on('data', (d) => { out += d; });
  proc.stderr.on('data', (d) => { out += d; });
  const exited = new Promise((resolve) => {
    proc.on('exit', (code, signal) => {
      servers.delete(server);
      resolve({ code, signal });
    });
  });
  const server = { proc, exited, output: () => out, port: 0, scheme: 'http' };
  servers.add(server);
  const m = await Promise.race([
    waitFor('the server to listen', () =>
      /listening on (https?):\/\/127\.0\.0\.1:(\d+)\//.exec(out), timeoutMs),
    exited.then(({ code }) => {
      throw new Error(`server exited (${code}) before listening:\n${out}`);
    }),
  ]);
  server.scheme = m[1];
  server.port = Number(m[2]);
  return server;
}

// Signals the server and waits, at most ms, for it to exit; returns
// { code, signal, ms }.
export async function stopServer(server, signal = 'SIGTERM', ms = 10000) {
  const t0 = Date.now();
  server.proc.kill(signal);
  const timer = sleep(ms).then(() => null);
  const res = await Promise.race([server.exited, timer]);
  if (!res) {
    server.proc.kill('SIGKILL');
    throw new Error(`server still running ${ms} ms after ${signal}:\n` +
                    server.output());
  }
  return { ...res, ms: Date.now() - t0 };
}

// Runs the server to completion (for --help and bad options).
export function runServer(args, env = {}) {
  const r = spawnSync(SERVER, args, {
    env: { ...process.env, ...env }, encoding: 'utf8', timeout: 10000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

// ---- HTTP ------------------------------------------------------------

// One request on its own connection. opts: headers, body (string),
// chunked (send the body without a Content-Length), ca (TLS: trust this
// certificate). Resolves to { status, headers, body, json() }.
export function request(server, method, path, opts = {}) {
  const tlsOn = server.scheme === 'https';
  const lib = tlsOn ? https : http;
  const headers = { ...(opts.headers || {}) };
  if (opts.body !== undefined && !opts.chunked)
    headers['Content-Length'] = Buffer.byteLength(opts.body);
  return new Promise((resolve, reject) => {
    const req = lib.request({
      host: '127.0.0.1', port: server.port, method, path, headers,
      agent: false, timeout: 5000,
      ...(tlsOn ? { ca: opts.ca, servername: 'localhost' } : {}),
    }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({
        status: res.statusCode, headers: res.headers, body,
        json: () => JSON.parse(body),
      }));
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: timeout`)));
    req.on('error', reject);
    if (opts.chunked) req.setHeader('Transfer-Encoding', 'chunked');
    if (opts.body !== undefined) req.write(opts.body);
    req.end();
  });
}

// ---- WebSocket ---------------------------------------------------------

// A minimal client: connects, upgrades, answers pings, collects text
// messages. wsConnect resolves once the server has answered the upgrade:
// { status, ws } where ws is null unless the status is 101.
export function wsConnect(server, path, { ca, timeoutMs = 5000, origin, protocol } = {}) {
  return new Promise((resolve, reject) => {
    const key = randomBytes(16).toString('base64');
    const sock = server.scheme === 'https'
      ? tls.connect({ host: '127.0.0.1', port: server.port, ca, servername: 'localhost' })
      : net.connect({ host: '127.0.0.1', port: server.port });
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`upgrade of ${path}: timeout`));
    }, timeoutMs);
    let buf = Buffer.alloc(0);
    const onData = (d) => {
      buf = Buffer.concat([buf, d]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      clearTimeout(timer);
      sock.off('data', onData);
      const head = buf.subarray(0, end).toString('latin1');
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] || 0);
      if (status !== 101) {
        sock.destroy();
        resolve({ status, ws: null, head, body: buf.subarray(end + 4).toString() });
        return;
      }
      const accept = createHash('sha1')
        .update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
      if (!head.toLowerCase().includes(`sec-websocket-accept: ${accept.toLowerCase()}`)) {
        sock.destroy();
        reject(new Error('bad Sec-WebSocket-Accept'));
        return;
      }
      resolve({ status, ws: new WsClient(sock, buf.subarray(end + 4)), head });
    };
    sock.on('data', onData);
    sock.on('error', (err) => { clearTimeout(timer); reject(err); });
    sock.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\n` +
      'Upgrade: websocket\r\nConnection: Upgrade\r\n' +
      (origin ? `Origin: ${origin}\r\n` : '') +
      (protocol ? `Sec-WebSocket-Protocol: ${protocol}\r\n` : '') +
      `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
  });
}

class WsClient {
  constructor(sock, rest) {
    this.sock = sock;
    this.buf = Buffer.alloc(0);
    this.messages = [];   // parsed JSON messages not yet taken
    this.waiters = [];
    this.close = null;    // { code, reason } once the server closed
    this.closed = new Promise((r) => { this.onClosed = r; });
    sock.on('data', (d) => this.feed(d));
    sock.on('close', () => this.finish(1006, ''));
    sock.on('error', () => {});
    if (rest.length) this.feed(rest);
  }

  finish(code, reason) {
    if (!this.close) this.close = { code, reason };
    this.onClosed(this.close);
    this.wake();
  }

  wake() {
    const w = this.waiters;
    this.waiters = [];
    w.forEach((f) => f());
  }

  feed(d) {
    this.buf = Buffer.concat([this.buf, d]);
    for (;;) {
      if (this.buf.length < 2) return;
      const op = this.buf[0] & 0x0f;
      let len = this.buf[1] & 0x7f, off = 2;
      if (len === 126) {
        if (this.buf.length < 4) return;
        len = this.buf.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (this.buf.length < 10) return;
        len = Number(this.buf.readBigUInt64BE(2));
        off = 10;
      }
      if (this.buf.length < off + len) return;
      const payload = this.buf.subarray(off, off + len);
      this.buf = this.buf.subarray(off + len);
      if (op === 0x1) {
        this.messages.push(JSON.parse(payload.toString('utf8')));
        this.wake();
      } else if (op === 0x9) {
        this.send(0xa, payload);
      } else if (op === 0x8) {
        const code = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
        const reason = payload.subarray(2).toString('utf8');
        if (!this.close) this.send(0x8, payload.subarray(0, 2));
        this.finish(code, reason);
        this.sock.end();
      }
    }
  }

  // A masked frame, as a client must send.
  send(op, payload = Buffer.alloc(0)) {
    if (this.sock.destroyed) return;
    const mask = randomBytes(4);
    const head = payload.length < 126
      ? Buffer.from([0x80 | op, 0x80 | payload.length])
      : Buffer.from([0x80 | op, 0x80 | 126, payload.length >> 8, payload.length & 255]);
    const body = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]));
    this.sock.write(Buffer.concat([head, mask, body]));
  }

  // The next message, or null after ms or once closed with none left.
  async next(ms = 5000) {
    const end = Date.now() + ms;
    while (!this.messages.length && !this.close && Date.now() < end) {
      await Promise.race([
        new Promise((r) => this.waiters.push(r)),
        sleep(Math.max(0, end - Date.now())),
      ]);
    }
    return this.messages.shift() ?? null;
  }

  // Messages until one of type `type` (included); throws after ms.
  async until(type, ms = 10000) {
    const got = [];
    const end = Date.now() + ms;
    for (;;) {
      const m = await this.next(Math.max(0, end - Date.now()));
      if (!m) throw new Error(`no "${type}" message within ${ms} ms ` +
        `(got ${got.map((g) => g.type).join(',') || 'nothing'}, close ${JSON.stringify(this.close)})`);
      got.push(m);
      if (m.type === type) return got;
    }
  }

  async waitClose(ms = 5000) {
    const r = await Promise.race([this.closed, sleep(ms).then(() => null)]);
    if (!r) throw new Error(`no close within ${ms} ms`);
    return r;
  }

  end(code = 1000) {
    if (!this.close) {
      const p = Buffer.alloc(2);
      p.writeUInt16BE(code);
      this.send(0x8, p);
      this.finish(code, '');
    }
    this.sock.destroy();
  }
}

// ---- TLS ---------------------------------------------------------------

// A self-signed certificate for localhost and 127.0.0.1, made with the one
// command the README shows. Returns { cert, key } paths, or null without
// openssl.
export function makeCertificate(dir) {
  const cert = join(dir, 'cert.pem'), key = join(dir, 'key.pem');
  const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048',
    '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'],
  { encoding: 'utf8', timeout: 30000 });
  if (r.error?.code === 'ENOENT') return null;
  if (r.status !== 0) throw new Error(`openssl req failed: ${r.stderr}`);
  return { cert, key };
}

// ---- Redis -------------------------------------------------------------
// A redis-server of the test's own, on a unix socket in a fresh directory,
// without persistence: never the system's. Skips the test file without one.
export async function startRedis() {
  if (spawnSync('redis-server', ['--version']).status !== 0)
    skip('redis-server is not installed (.ci/install-deps installs it)');
  const dir = tempDir('redis');
  const sock = join(dir, 'redis.sock');
  const proc = spawn('redis-server', ['--port', '0', '--unixsocket', sock,
    '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
  atExit(() => proc.kill('SIGKILL'));
  await waitFor('redis-server to listen', () => {
    if (proc.exitCode !== null) throw new Error('redis-server exited');
    return existsSync(sock);
  }, 10000);
  return { proc, url: `unix:${sock}` };
}

// ---- Redis Sentinel ----------------------------------------------------
// A loopback port nobody listens on now.
async function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// One command on a fresh TLS connection (AUTH first): its reply's first line.
function redisTls(port, ca, password, words, ms = 3000) {
  return new Promise((resolve, reject) => {
    const enc = (w) => `*${w.length}\r\n${w.map((x) => `$${Buffer.byteLength(x)}\r\n${x}\r\n`).join('')}`;
    const s = tls.connect({ host: '127.0.0.1', port, ca: [ca], servername: undefined,
      checkServerIdentity: () => undefined });
    let buf = '';
    const timer = setTimeout(() => { s.destroy(); reject(new Error('redis timed out')); }, ms);
    s.on('error', (e) => { clearTimeout(timer); reject(e); });
    s.on('secureConnect', () => s.write(enc(['AUTH', password]) + enc(words)));
    // One RESP value at buf[at]: [its lines, where it ends], or null.
    const value = (at) => {
      const eol = buf.indexOf('\r\n', at);
      if (eol < 0) return null;
      const head = buf.slice(at, eol), n = Number(head.slice(1));
      if (head[0] === '$') {
        if (n < 0) return [[''], eol + 2];
        const end = eol + 2 + n;
        return buf.length >= end + 2 ? [[buf.slice(eol + 2, end)], end + 2] : null;
      }
      if (head[0] === '*') {
        const out = [];
        let next = eol + 2;
        for (let i = 0; i < Math.max(n, 0); i++) {
          const v = value(next);
          if (!v) return null;
          out.push(...v[0]);
          next = v[1];
        }
        return [out, next];
      }
      return [[head.slice(1)], eol + 2];
    };
    s.setEncoding('latin1');
    s.on('data', (d) => {
      buf += d;
      const auth = value(0), reply = auth && value(auth[1]);
      if (!reply) return;
      clearTimeout(timer);
      s.end();
      resolve(reply[0].join('\n'));
    });
  });
}

// A primary, a replica and three Sentinels, all with a password and only
// TLS (the certificate of makeCertificate(), for 127.0.0.1): the Redis of
// the README's Sentinel walk-through, as production runs it. Skips the test
// file without redis-sentinel.
export async function startSentinelRedis({ password, sentinelPassword, cert }) {
  if (spawnSync('redis-sentinel', ['--version']).status !== 0)
    skip('redis-sentinel is not installed (.ci/install-deps installs it)');
  const dir = tempDir('sentinel');
  const ca = (await import('node:fs')).readFileSync(cert.cert);
  const tlsArgs = ['--port', '0', '--tls-cert-file', cert.cert, '--tls-key-file', cert.key,
    '--tls-ca-cert-file', cert.cert, '--tls-auth-clients', 'no', '--tls-replication', 'yes'];
  const data = [await freePort(), await freePort()];
  const procs = [];
  const startData = (i) => {
    const p = spawn('redis-server', [...tlsArgs, '--tls-port', String(data[i]),
      '--bind', '127.0.0.1', '--requirepass', password, '--masterauth', password,
      '--dir', dir, '--dbfilename', `d${i}.rdb`, '--save', '', '--appendonly', 'no',
      '--repl-diskless-sync-delay', '0',
      ...(i ? ['--replicaof', '127.0.0.1', String(data[0])] : [])], { stdio: 'ignore' });
    atExit(() => p.kill('SIGKILL'));
    procs[i] = p;
  };
  startData(0);
  startData(1);
  const sentinels = [await freePort(), await freePort(), await freePort()];
  const { writeFileSync } = await import('node:fs');
  sentinels.forEach((port, k) => {
    const conf = join(dir, `s${k}.conf`);
    writeFileSync(conf, [`port 0`, `tls-port ${port}`, `bind 127.0.0.1`,
      `tls-cert-file ${cert.cert}`, `tls-key-file ${cert.key}`,
      `tls-ca-cert-file ${cert.cert}`, 'tls-auth-clients no', 'tls-replication yes',
      `requirepass ${sentinelPassword}`,
      `sentinel monitor wsm 127.0.0.1 ${data[0]} 2`, `sentinel auth-pass wsm ${password}`,
      'sentinel down-after-milliseconds wsm 1000', 'sentinel failover-timeout wsm 2000',
      ''].join('\n'));
    const p = spawn('redis-sentinel', [conf], { stdio: 'ignore' });
    atExit(() => p.kill('SIGKILL'));
    procs.push(p);
  });
  const ask = (k) => redisTls(sentinels[k], ca, sentinelPassword,
    ['SENTINEL', 'get-master-addr-by-name', 'wsm']);
  const primaryPort = async () => {
    const names = await Promise.all([0, 1, 2].map((k) => ask(k).catch(() => '')));
    const ports = names.map((n) => Number(n.split('\n').filter((l) => /^\d+$/.test(l)).pop()));
    return data.find((p) => ports.filter((x) => x === p).length >= 2);
  };
  // Ready once the replica is in sync and every Sentinel knows the others.
  await waitFor('the Sentinel deployment', async () => {
    const info = await redisTls(data[0], ca, password, ['INFO', 'replication']).catch(() => '');
    if (!/connected_slaves:1/.test(info)) return false;
    for (let k = 0; k < 3; k++) {
      const m = await redisTls(sentinels[k], ca, sentinelPassword,
        ['SENTINEL', 'master', 'wsm']).catch(() => '');
      const f = m.split('\n');
      const at = (name) => Number(f[f.indexOf(name) + 1]);
      if (!(at('num-slaves') >= 1 && at('num-other-sentinels') >= 2)) return false;
    }
    return true;
  }, 30000, 200);
  return {
    url: `rediss-sentinel://${sentinels.map((p) => `127.0.0.1:${p}`).join(',')}/wsm`,
    // SIGKILLs the primary; resolves once a majority names the other.
    async killPrimary() {
      const was = await primaryPort();
      procs[data.indexOf(was)].kill('SIGKILL');
      await waitFor('the Sentinels to promote the replica', async () =>
        (await primaryPort()) === data[1 - data.indexOf(was)], 30000, 200);
    },
  };
}
