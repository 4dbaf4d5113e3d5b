// SPDX-License-Identifier: MIT
// What tcpscope exposes to the network: /metrics binds loopback unless told otherwise, serves
// TLS and checks basic auth from an exporter-toolkit web config (a certificate made here by
// openssl, hashes from bcryptjs and from the system's libxcrypt); the alert webhook follows no
// redirect, signs its bodies, and refuses link-local and metadata targets. Every server here
// listens on 127.0.0.1 only.
import { describe, it, expect, beforeAll, afterAll, afterEach } from 'vitest';
import { execFileSync, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { IncomingMessage } from 'node:http';
import https from 'node:https';
import { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import bcrypt from 'bcryptjs';
import { ConfigError, TcpscopeMetrics, startPrometheusServer, validateExportersConfig, loadWebConfig, PrometheusServer } from '../lib/export';
import { BasicAuth } from '../lib/export/webconfig';
import { Alert, webhookSink, WEBHOOK_SIGNATURE_HEADER } from '../lib/alerts';
import { refusedAddress, refusedHost, guardedLookup } from '../lib/alerts/target';
import { eventually } from './helpers/bpf';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), `tcpscope-exposure-${process.pid}-`));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** The local address a listening TCP port is bound to, from /proc/net/tcp{,6}. */
function boundAddresses(port: number): string[] {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  const out: string[] = [];
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of fs.readFileSync(file, 'utf8').split('\n').slice(1)) {
      const [, local, , state] = line.trim().split(/\s+/);
      if (state === '0A' && local?.endsWith(`:${hexPort}`)) out.push(local.split(':')[0]!);
    }
  }
  return out;
}

interface Reply { status: number; body: string; headers: http.IncomingHttpHeaders }

function get(url: string, options: https.RequestOptions = {}): Promise<Reply> {
  const mod = url.startsWith('https:') ? https : http;
  return new Promise((resolve, reject) => {
    const req = mod.get(url, { agent: false, ...options }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on('error', reject);
  });
}

const basic = (user: string, password: string): string => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

describe('/metrics exposure', () => {
  const metrics = new TcpscopeMetrics();
  metrics.observeDrop({ type: 'drop', reason: 'TCP_CSUM' });
  let cert: string;
  let key: string;

  beforeAll(() => {
    // A self-signed certificate for 127.0.0.1, made for this run.
    key = path.join(dir, 'server.key');
    cert = path.join(dir, 'server.crt');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert,
      '-days', '1', '-subj', '/CN=tcpscope-test', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'pipe' });
  });

  async function serve(webConfig?: string): Promise<PrometheusServer> {
    const server = await startPrometheusServer(metrics, webConfig === undefined ? { port: 0 } : { port: 0, webConfig });
    cleanups.push(() => server.close());
    return server;
  }

  function webConfig(name: string, yaml: string): string {
    const file = path.join(dir, name);
    fs.writeFileSync(file, yaml);
    return file;
  }

  it('binds 127.0.0.1 when no address is configured', async () => {
    const server = await serve();
    expect(server.host).toBe('127.0.0.1');
    expect(boundAddresses(server.port)).toEqual(['0100007F']);
    expect((await get(server.url)).body).toContain('tcpscope_drops_total{type="drop",reason="TCP_CSUM"} 1');
  });

  it('serves HTTPS with the web config\'s certificate; the scrape verifies it', async () => {
    // Relative paths are relative to the web config file.
    const server = await serve(webConfig('tls.yml', 'tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n'));
    expect(server.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/metrics$/);
    const reply = await get(server.url, { ca: fs.readFileSync(cert) });
    expect(reply.status).toBe(200);
    expect(reply.body).toContain('tcpscope_drops_total{type="drop",reason="TCP_CSUM"} 1');
    // A client that does not trust the certificate gets no metrics, nor does plain HTTP.
    await expect(get(server.url)).rejects.toThrow(/self-signed|self signed/);
    await expect(get(server.url.replace('https:', 'http:'))).rejects.toThrow();
  });

  it('checks basic auth against bcrypt hashes (bcryptjs and libxcrypt ones), over TLS', async () => {
    const hash = bcrypt.hashSync('correct horse', 6);
    // Made by the C library's crypt(3) (libxcrypt): crypt.crypt('s3cret-pass', METHOD_BLOWFISH, rounds 32).
    const foreign = '$2b$05$tnDxJ7MzzpJ.nKzB4YF1eOegp4LiGgClpv8uxKYkYxkb/SLKgAQPi';
    const server = await serve(webConfig('auth.yml', [
      'tls_server_config:', `  cert_file: ${cert}`, `  key_file: ${key}`,
      'basic_auth_users:', `  prometheus: ${hash}`, `  other: ${foreign}`, '',
    ].join('\n')));
    const ca = fs.readFileSync(cert);
    const as = (authorization?: string): Promise<Reply> => get(server.url, { ca, headers: authorization ? { authorization } : {} });
    const none = await as();
    expect(none.status).toBe(401);
    expect(none.headers['www-authenticate']).toBe('Basic realm="tcpscope"');
    expect(none.body).not.toContain('tcpscope_');
    expect((await as(basic('prometheus', 'wrong'))).status).toBe(401);
    expect((await as(basic('nobody', 'correct horse'))).status).toBe(401);
    expect((await as('Bearer abc')).status).toBe(401);
    const ok = await as(basic('prometheus', 'correct horse'));
    expect(ok.status).toBe(200);
    expect(ok.body).toContain('tcpscope_drops_total');
    expect((await as(basic('prometheus', 'correct horse'))).status).toBe(200); // remembered, still right
    expect((await as(basic('other', 's3cret-pass'))).status).toBe(200);
    expect((await as(basic('other', 's3cret-pasS'))).status).toBe(401);
    // Liveness probes need no credentials.
    expect((await get(server.url.replace('/metrics', '/healthz'), { ca })).status).toBe(200);
  });

  it('runs bcrypt off the event loop: the loop stays idle while a slow check runs', async () => {
    // Cost 12 takes bcryptjs a few hundred ms; on the event loop it would keep the loop busy
    // (utilization near 1) in 100 ms slices, holding up detector ticks and ring reads.
    const hash = bcrypt.hashSync('slow', 12);
    const auth = new BasicAuth(new Map([['prom', hash]]));
    cleanups.push(() => auth.close());
    const request = (password: string): IncomingMessage => ({ headers: { authorization: basic('prom', password) } }) as IncomingMessage;
    const before = performance.eventLoopUtilization();
    const started = performance.now();
    expect(await auth.check(request('wrong'))).toBe('denied');
    const took = performance.now() - started;
    const busy = performance.eventLoopUtilization(before);
    expect(took).toBeGreaterThan(20); // a real bcrypt check ran
    expect(busy.utilization).toBeLessThan(0.5);
    expect(await auth.check(request('slow'))).toBe('ok');
  }, 30_000);

  it('answers a flood of wrong passwords 503 beyond a few bcrypt checks at once, and still serves the right one', async () => {
    const hash = bcrypt.hashSync('right', 10);
    // The cap itself: sixteen checks begun at once, MAX_VERIFYING of them run bcrypt.
    const auth = new BasicAuth(new Map([['prom', hash]]));
    const request = (password: string): IncomingMessage => ({ headers: { authorization: basic('prom', password) } }) as IncomingMessage;
    const verdicts = await Promise.all(Array.from({ length: 16 }, (_, i) => auth.check(request(`wrong-${i}`))));
    expect(verdicts.filter((v) => v === 'denied')).toHaveLength(BasicAuth.MAX_VERIFYING);
    expect(verdicts.filter((v) => v === 'busy')).toHaveLength(16 - BasicAuth.MAX_VERIFYING);
    expect(await auth.check(request('right'))).toBe('ok');

    // Over HTTP. The server accepts one new connection per event-loop turn (libuv), so fresh
    // connections reach it spread over turns. The flood goes over sixteen connections the
    // server has already accepted (kept alive after a /healthz request each): its requests
    // arrive together, as a flood from many clients does.
    const server = await serve(webConfig('flood.yml', `basic_auth_users:\n  prom: ${hash}\n`));
    const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
    cleanups.push(() => agent.destroy());
    const healthz = server.url.replace('/metrics', '/healthz');
    expect((await Promise.all(Array.from({ length: 16 }, () => get(healthz, { agent })))).map((r) => r.status)).toEqual(Array(16).fill(200));
    expect(Object.values(agent.freeSockets).flat()).toHaveLength(16);
    const replies = await Promise.all(Array.from({ length: 16 }, (_, i) => get(server.url, { agent, headers: { authorization: basic('prom', `wrong-${i}`) } })));
    const statuses = replies.map((r) => r.status);
    expect(statuses.filter((s) => s === 401)).toHaveLength(BasicAuth.MAX_VERIFYING);
    expect(statuses.filter((s) => s === 503)).toHaveLength(16 - BasicAuth.MAX_VERIFYING);
    expect(replies.find((r) => r.status === 503)!.headers['retry-after']).toBe('1');
    expect((await get(server.url, { headers: { authorization: basic('prom', 'right') } })).status).toBe(200);
  }, 30_000);

  it('is a real Prometheus\'s target over TLS with basic auth (and a wrong password is refused)', async () => {
    const prometheus = ['/usr/bin/prometheus', '/usr/local/bin/prometheus'].find((p) => fs.existsSync(p));
    if (!prometheus) {
      if (process.env['CI'] || process.env['TCPSCOPE_REQUIRE_BPF'] === '1') throw new Error('no prometheus binary (scripts/setup-debian.sh installs it)');
      console.warn('[skip] no prometheus binary');
      return;
    }
    const hash = bcrypt.hashSync('scrape-pass', 6);
    const server = await serve(webConfig('prom-auth.yml', `tls_server_config:\n  cert_file: ${cert}\n  key_file: ${key}\nbasic_auth_users:\n  prom: ${hash}\n`));
    const promDir = fs.mkdtempSync(path.join(dir, 'prom-'));
    const job = (name: string, password: string): string[] => [
      `  - job_name: ${name}`, '    scheme: https', `    tls_config: { ca_file: ${cert} }`,
      `    basic_auth: { username: prom, password: ${password} }`, `    static_configs: [{ targets: ['127.0.0.1:${server.port}'] }]`,
    ];
    fs.writeFileSync(path.join(promDir, 'prometheus.yml'), ['global: { scrape_interval: 1s, scrape_timeout: 900ms }', 'scrape_configs:', ...job('good', 'scrape-pass'), ...job('bad', 'wrong-pass'), ''].join('\n'));
    const port = await new Promise<number>((resolve) => { const s = http.createServer().listen(0, '127.0.0.1', () => { const p = (s.address() as AddressInfo).port; s.close(() => resolve(p)); }); });
    const proc = spawn(prometheus, [`--config.file=${path.join(promDir, 'prometheus.yml')}`, `--storage.tsdb.path=${path.join(promDir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`], { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    proc.stderr.on('data', (d: Buffer) => { log += d.toString(); });
    cleanups.push(() => new Promise<void>((resolve) => {
      if (proc.exitCode !== null) return resolve();
      proc.once('exit', () => resolve());
      proc.kill('SIGTERM');
    }));
    interface Target { labels: { job: string }; health: string; lastError: string }
    let targets: Target[] = [];
    await eventually(async () => {
      if (proc.exitCode !== null) throw new Error(`prometheus exited (${proc.exitCode}): ${log.slice(-1500)}`);
      try {
        const body = await (await fetch(`http://127.0.0.1:${port}/api/v1/targets`)).json() as { data: { activeTargets: Target[] } };
        targets = body.data.activeTargets;
      } catch { return false; }
      // A scrape can time out on a loaded machine (bcrypt runs on the event loop): wait for the
      // outcome itself, the right password's scrape up and the wrong one's refused.
      const good = targets.find((t) => t.labels.job === 'good'), bad = targets.find((t) => t.labels.job === 'bad');
      return good?.health === 'up' && bad?.health === 'down' && /401/.test(bad.lastError);
    }, 20_000, 'both targets scraped: good up, bad refused with 401');
    const byJob = Object.fromEntries(targets.map((t) => [t.labels.job, t]));
    expect(byJob['good']).toMatchObject({ health: 'up', lastError: '' });
    expect(byJob['bad']!.health).toBe('down');
    expect(byJob['bad']!.lastError).toMatch(/401/);
    const q = await (await fetch(`http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent('tcpscope_drops_total{job="good"}')}`)).json() as { data: { result: Array<{ value: [number, string] }> } };
    expect(q.data.result.map((r) => Number(r.value[1]))).toEqual([1]);
  }, 40_000);

  it('refuses a bad web config in one line naming what is wrong', () => {
    expect(() => loadWebConfig(path.join(dir, 'missing.yml'))).toThrow(/cannot read web config file .*missing\.yml: ENOENT/);
    expect(() => loadWebConfig(webConfig('bad1.yml', 'tls_server_config:\n  cert_file: nope.crt\n  key_file: nope.key\n'))).toThrow(/tls_server_config.cert_file: cannot read .*nope\.crt: ENOENT/);
    expect(() => loadWebConfig(webConfig('bad2.yml', 'tls_server_config:\n  cert_file: server.crt\n'))).toThrow(/cert_file and key_file are both required/);
    expect(() => loadWebConfig(webConfig('bad3.yml', 'basic_auth_users:\n  alice: plaintext\n'))).toThrow(/basic_auth_users.alice: expected a bcrypt hash/);
    expect(() => loadWebConfig(webConfig('bad4.yml', 'http_server_config:\n  http2: false\n'))).toThrow(/'http_server_config' is not supported/);
    expect(() => loadWebConfig(webConfig('bad5.yml', 'tls_server_config: [\n'))).toThrow(/is not valid YAML/);
    expect(() => loadWebConfig(webConfig('bad6.yml', `tls_server_config:\n  cert_file: ${key}\n  key_file: ${key}\n`))).toThrow(/not a PEM certificate/);
    expect(() => loadWebConfig(webConfig('bad7.yml', `tls_server_config:\n  cert_file: ${cert}\n  key_file: ${key}\n  client_auth_type: RequireAndVerifyClientCert\n`))).toThrow(/needs client_ca_file/);
    for (const f of ['bad1.yml', 'bad3.yml']) {
      try { loadWebConfig(path.join(dir, f)); } catch (e) { expect(e).toBeInstanceOf(ConfigError); expect((e as Error).message).not.toContain('\n'); }
    }
  });

  it('a non-local listen address is a ConfigError, not a crash', async () => {
    // 192.0.2.1 (TEST-NET-1) is no address of this host: binding fails, nothing is sent.
    const e = await startPrometheusServer(metrics, { port: 0, host: '192.0.2.1' }).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(ConfigError);
    expect((e as Error).message).toBe("prometheus: cannot listen on 192.0.2.1:0: host '192.0.2.1' is not an address of this host: use 127.0.0.1, 0.0.0.0 (every address) or one of this host's addresses");
  });
});

function alert(n: number): Alert {
  return { kind: 'port_scan', state: 'raised', at: new Date(1_700_000_000_000 + n), summary: `alert ${n}`, key: `port_scan/${n}`, evidence: { sources: ['192.0.2.1'] } };
}

/** A receiver on 127.0.0.1 whose reply `respond` decides; keeps raw bodies and headers. */
async function receiver(respond: (req: http.IncomingMessage, body: Buffer, res: http.ServerResponse) => void): Promise<{ url: string; hits: Array<{ body: Buffer; headers: http.IncomingHttpHeaders }> }> {
  const hits: Array<{ body: Buffer; headers: http.IncomingHttpHeaders }> = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      hits.push({ body, headers: req.headers });
      respond(req, body, res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(async () => { server.closeAllConnections(); await new Promise<void>((r) => server.close(() => r())); });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, hits };
}

describe('webhook exposure', () => {
  it('does not follow a redirect: the alert is not re-posted elsewhere, and the failure says why', async () => {
    const elsewhere = await receiver((_q, _b, res) => res.writeHead(200).end());
    const first = await receiver((_q, _b, res) => res.writeHead(307, { location: elsewhere.url }).end());
    const undelivered: string[] = [];
    const sink = webhookSink({ url: first.url, initialBackoffMs: 10, onUndelivered: (_s, _n, why) => undelivered.push(why) });
    cleanups.push(() => sink.close());
    sink.send(alert(1));
    await sink.flush();
    expect(first.hits).toHaveLength(1); // a redirect is final, not retried
    expect(elsewhere.hits).toHaveLength(0);
    expect(sink.dropped).toBe(1);
    expect(undelivered).toEqual([`${new URL(first.url).origin}: HTTP 307 redirect to ${elsewhere.url} not followed: configure the final URL`]);
  });

  it('signs each body with HMAC-SHA256 that the receiver verifies', async () => {
    const secret = crypto.randomBytes(24).toString('base64');
    const verdicts: boolean[] = [];
    const r = await receiver((req, body, res) => {
      const header = String(req.headers[WEBHOOK_SIGNATURE_HEADER] ?? '');
      const expected = Buffer.from(`sha256=${crypto.createHmac('sha256', secret).update(body).digest('hex')}`);
      const given = Buffer.from(header);
      const ok = given.length === expected.length && crypto.timingSafeEqual(given, expected);
      verdicts.push(ok);
      res.writeHead(ok ? 204 : 401).end();
    });
    const sink = webhookSink({ url: r.url, secret });
    cleanups.push(() => sink.close());
    for (let i = 0; i < 3; i++) sink.send(alert(i));
    await sink.flush();
    expect(verdicts).toEqual([true, true, true]);
    expect(sink.delivered).toBe(3);
    expect(JSON.parse(r.hits[2]!.body.toString())).toMatchObject({ key: 'port_scan/2' });
    // Without the secret the receiver refuses: the check above is not vacuous.
    const unsigned = webhookSink({ url: r.url, maxAttempts: 1 });
    cleanups.push(() => unsigned.close());
    unsigned.send(alert(9));
    await unsigned.flush();
    expect(verdicts.at(-1)).toBe(false);
    expect(unsigned.dropped).toBe(1);
  });

  it.each([
    'http://169.254.169.254/latest/meta-data/',
    'http://169.254.10.1:8080/hook',
    'http://[fe80::1]/hook',
    'http://[fd00:ec2::254]/',
    'http://metadata.google.internal/computeMetadata/v1/',
    'http://METADATA.GOOGLE.INTERNAL./x',
    'http://[::ffff:169.254.169.254]/',
  ])('refuses %s unless allowed', (url) => {
    expect(() => webhookSink({ url })).toThrow(/refused as a target \(set allowLinkLocal: true/);
    expect(() => validateExportersConfig({ alerts: { webhook: url } })).toThrow(ConfigError);
    expect(() => validateExportersConfig({ alerts: { webhook: { url } } })).toThrow(/exporters\.alerts\.webhook\.url: .* refused as a webhook target/);
    const allowed = webhookSink({ url, allowLinkLocal: true });
    cleanups.push(() => allowed.close()); // nothing was sent: close() has nothing queued
    expect(validateExportersConfig({ alerts: { webhook: { url, allowLinkLocal: true } } }).alerts?.webhook).toMatchObject({ url, allowLinkLocal: true });
  });

  it('checks every address a name resolves to; loopback and ordinary addresses pass', async () => {
    expect(refusedAddress('169.254.169.254')).toMatch(/metadata/);
    expect(refusedAddress('fe80::1%eth0')).toMatch(/link-local/);
    expect(refusedAddress('febf:ffff::1')).toMatch(/link-local/);
    for (const ok of ['127.0.0.1', '::1', '10.0.0.1', '192.0.2.1', 'fec0::1', '169.255.0.1']) expect(refusedAddress(ok)).toBeUndefined();
    expect(refusedHost('hooks.example.com')).toBeUndefined();
    // localhost resolves from /etc/hosts (no DNS traffic): passes, in both lookup shapes.
    const lookup = guardedLookup('test');
    const one = await new Promise<string>((resolve, reject) => lookup('localhost', { family: 4 }, (err, address) => (err ? reject(err) : resolve(address as string))));
    expect(one).toBe('127.0.0.1');
    const all = await new Promise<unknown>((resolve, reject) => lookup('localhost', { all: true, family: 4 }, (err, address) => (err ? reject(err) : resolve(address))));
    expect(all).toEqual([{ address: '127.0.0.1', family: 4 }]);
  });
});
