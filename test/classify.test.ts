// SPDX-License-Identifier: MIT
// flows(): real HTTP/1.1, HTTP/2 and TLS clients over loopback and over a veth into a
// namespace the test creates; one record per flow however many segments it has.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import http from 'node:http';
import http2 from 'node:http2';
import tls from 'node:tls';
import { once } from 'node:events';
import { flows, FlowEvent, FlowStream } from '../lib/classify';
import { attachedPrograms } from '../lib/bpf';
import { main } from '../lib/cli/main';
import { kernelAtLeast } from '../lib/kernel/version';
import { bpfAvailable, eventually } from './helpers/bpf';
import { createTestNet, TestNet } from './helpers/netns';
import { freePort } from './helpers/tcpprobe';

const enabled = bpfAvailable('classify');

/** Collects a stream's events in the background. */
function collect(stream: FlowStream): FlowEvent[] {
  const events: FlowEvent[] = [];
  void (async () => { for await (const e of stream) events.push(e); })();
  return events;
}

/** Waits until every flow the kernel copied out is read; the traffic is over, so no more come. */
function allRead(stream: FlowStream, events: FlowEvent[]): Promise<boolean> {
  return eventually(() => events.length >= Number(stream.kernelStats().sampled), 3000, 'every flow the kernel copied out');
}

async function httpServer(port: number, host: string): Promise<http.Server> {
  const server = http.createServer((req, res) => { req.resume(); req.on('end', () => res.end('ok')); });
  server.keepAliveTimeout = 100;
  server.listen(port, host);
  await once(server, 'listening');
  return server;
}

function request(opts: http.RequestOptions, body?: Buffer[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request({ agent: false, ...opts }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode ?? 0)); });
    req.on('error', reject);
    if (!body) { req.end(); return; }
    // Many small writes with pauses: many segments in one flow.
    (async () => {
      for (const chunk of body) {
        req.write(chunk);
        await new Promise((r) => setTimeout(r, 2));
      }
      req.end();
    })().catch(reject);
  });
}

describe.skipIf(!enabled)('flows() on loopback', () => {
  let dir: string;
  let key: string, cert: string;

  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tcpscope-tls-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=tcpscope.test'], { stdio: 'ignore' });
    key = fs.readFileSync(path.join(dir, 'key.pem'), 'utf8');
    cert = fs.readFileSync(path.join(dir, 'cert.pem'), 'utf8');
  });
  afterAll(() => { if (dir) fs.rmSync(dir, { recursive: true, force: true }); });

  it('classifies an HTTP/1.1 request once, even with many segments', async () => {
    const port = freePort();
    const server = await httpServer(port, '127.0.0.1');
    const stream = flows({ interfaces: ['lo'], ports: [port] });
    const events = collect(stream);
    try {
      // classify_tc, or classify_xadd on kernels without BPF_FETCH atomics (before 5.12).
      expect(stream.program).toBe(kernelAtLeast(5, 12) ? 'classify_tc' : 'classify_xadd');
      expect(attachedPrograms('lo').map((p) => p.name)).toContain(stream.program);
      const body = Array.from({ length: 60 }, (_, i) => Buffer.alloc(700, 97 + (i % 26)));
      expect(await request({ host: '127.0.0.1', port, method: 'POST', path: '/upload?x=1', headers: { 'content-length': String(60 * 700), 'x-test': 'yes' } }, body)).toBe(200);
      await eventually(() => events.length >= 1, 3000, 'a flow event');
      await allRead(stream, events);
      expect(events).toHaveLength(1);
      expect(events[0]).toMatchObject({ protocol: 'http1', method: 'POST', path: '/upload?x=1', host: `127.0.0.1:${port}`, daddr: '127.0.0.1', dport: port, family: 'ipv4', saddr: '127.0.0.1' });
      // The same endpoint fields as every TCP event: the bytes beside the text, and the client's port.
      expect([...events[0]!.saddrBytes.subarray(0, 4)]).toEqual([127, 0, 0, 1]);
      expect([...events[0]!.daddrBytes.subarray(0, 4)]).toEqual([127, 0, 0, 1]);
      expect(events[0]!.sport).not.toBe(port);
      expect(events[0]!.payload).toBeUndefined();
      expect(stream.stats().received).toBe(1);
      const k = stream.kernelStats();
      expect(k.sampled).toBe(1n);
      expect(k.syns).toBe(1n);
      expect(k.tcp).toBeGreaterThan(60n); // every segment was seen, one was copied
    } finally {
      stream.close();
      server.close();
    }
    expect(attachedPrograms('lo').map((p) => p.name)).not.toContain(stream.program);
  });

  it('identifies TLS with SNI, ALPN and version (IPv6), and HTTP/2 prior knowledge', async () => {
    const tlsPort = freePort(), h2Port = freePort();
    const tlsServer = tls.createServer({ key, cert, ALPNProtocols: ['h2', 'http/1.1'] }, (s) => { s.on('error', () => {}); s.end('hi'); });
    tlsServer.listen(tlsPort, '::1');
    await once(tlsServer, 'listening');
    const h2 = http2.createServer();
    h2.on('stream', (s) => { s.respond({ ':status': 200 }); s.end('ok'); });
    h2.listen(h2Port, '127.0.0.1');
    await once(h2, 'listening');
    const stream = flows({ interfaces: 'lo', ports: [tlsPort, h2Port], includePayload: true });
    const events = collect(stream);
    try {
      const socket = tls.connect({ host: '::1', port: tlsPort, servername: 'sni.tcpscope.test', ALPNProtocols: ['h2', 'http/1.1'], rejectUnauthorized: false });
      await once(socket, 'secureConnect');
      expect(socket.getProtocol()).toBe('TLSv1.3');
      socket.resume();
      await once(socket, 'end');
      socket.destroy();

      const client = http2.connect(`http://127.0.0.1:${h2Port}`);
      const req = client.request({ ':path': '/h2path' });
      req.resume();
      await once(req, 'end');
      client.close();

      await eventually(() => events.length >= 2, 3000, 'two flow events');
      await allRead(stream, events);
      expect(events).toHaveLength(2);
      const t = events.find((e) => e.dport === tlsPort)!;
      expect(t).toMatchObject({ protocol: 'tls', sni: 'sni.tcpscope.test', alpn: ['h2', 'http/1.1'], tlsVersion: 'TLSv1.3', family: 'ipv6', saddr: '::1', daddr: '::1' });
      // Node 24's OpenSSL offers a post-quantum key share: its ClientHello outgrows the 1 KiB
      // captured, yet SNI and ALPN come first and are read. Truncation is flagged only then.
      const helloLength = ((t.payload![3]! << 8) | t.payload![4]!) + 5;
      expect(t.truncated === true).toBe(helloLength > t.capturedLen);
      expect(t.payload![0]).toBe(0x16);
      expect(t.capturedLen).toBe(t.payload!.length);
      expect(events.find((e) => e.dport === h2Port)).toMatchObject({ protocol: 'http2', family: 'ipv4' });
      expect(stream.stats().received).toBe(2);
    } finally {
      stream.close();
      tlsServer.close();
      h2.close();
    }
  });

  it('classifies many concurrent flows once each; unknown payloads too', async () => {
    const port = freePort();
    const server = net.createServer((s) => { s.on('error', () => {}); s.on('data', () => s.end()); });
    server.listen(port, '127.0.0.1');
    await once(server, 'listening');
    const stream = flows({ interfaces: ['lo'], ports: [port], captureBytes: 16 });
    const events = collect(stream);
    try {
      await Promise.all(Array.from({ length: 40 }, (_, i) => new Promise<void>((resolve, reject) => {
        const s = net.connect({ host: '127.0.0.1', port }, () => {
          s.write(i % 2 ? `GET /n${i} HTTP/1.1\r\nHost: h${i}\r\n\r\n` : Buffer.from([0xde, 0xad, i, 0xef]));
        });
        s.on('error', reject);
        s.on('close', () => resolve());
        s.resume();
      })));
      await eventually(() => events.length >= 40, 3000, '40 flow events');
      await allRead(stream, events);
      expect(events).toHaveLength(40);
      expect(events.filter((e) => e.protocol === 'unknown')).toHaveLength(20);
      const http1 = events.filter((e) => e.protocol === 'http1');
      expect(http1).toHaveLength(20);
      // 16 bytes captured: the request line is cut.
      expect(http1.every((e) => e.truncated && e.capturedLen === 16 && e.method === 'GET')).toBe(true);
      expect(new Set(events.map((e) => e.sport)).size).toBe(40);
      expect(stream.stats()).toMatchObject({ received: 40, lost: 0 });
    } finally {
      stream.close();
      server.close();
    }
  });

  it('tcpscope flows --json prints one line per flow and a summary', async () => {
    const port = freePort();
    const server = await httpServer(port, '127.0.0.1');
    const out: string[] = [], err: string[] = [];
    const io = { out: { write: (s: string) => out.push(s) }, err: { write: (s: string) => err.push(s) } } as unknown as { out: NodeJS.WritableStream; err: NodeJS.WritableStream };
    const run = main(['flows', '-i', 'lo', '-P', String(port), '--json', '-c', '2', '--duration', '10s'], io);
    try {
      await eventually(() => attachedPrograms('lo').some((p) => /^classify_(tc|xadd)$/.test(p.name)), 3000, 'probe attached');
      await request({ host: '127.0.0.1', port, path: '/one' });
      await request({ host: '127.0.0.1', port, path: '/two' });
      expect(await run).toBe(0);
    } finally {
      server.close();
    }
    const lines = out.join('').trim().split('\n').map((l) => JSON.parse(l) as { path: string; protocol: string });
    expect(lines.map((l) => l.path).sort()).toEqual(['/one', '/two']);
    expect(err.join('')).toMatch(/2 flows received, 0 lost/);
  });
});

describe.skipIf(!enabled)('flows() on a veth into a test namespace', () => {
  let tn: TestNet;
  beforeAll(() => { tn = createTestNet(); });
  afterAll(() => tn?.destroy());

  async function curl(args: string[]): Promise<string> {
    const child = spawn('ip', ['netns', 'exec', tn.ns, 'curl', '-sS', '--max-time', '5', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    const [code] = (await once(child, 'exit')) as [number | null];
    if (code !== 0) throw new Error(`curl failed (${code}): ${err}`);
    return out;
  }

  it('classifies curl requests from the namespace over IPv4 and IPv6', async () => {
    const port = freePort();
    const s4 = await httpServer(port, tn.hostV4);
    const s6 = await httpServer(port, tn.hostV6);
    const stream = flows({ interfaces: [tn.hostIf] });
    const events = collect(stream);
    try {
      expect(await curl([`http://${tn.hostV4}:${port}/v4?q=1`])).toBe('ok');
      expect(await curl(['-H', 'Host: six.tcpscope.test', `http://[${tn.hostV6}]:${port}/v6`])).toBe('ok');
      await eventually(() => events.length >= 2, 3000, 'two flow events');
      await allRead(stream, events);
      expect(events).toHaveLength(2);
      expect(events[0]).toMatchObject({ protocol: 'http1', method: 'GET', path: '/v4?q=1', host: `${tn.hostV4}:${port}`, saddr: tn.nsV4, daddr: tn.hostV4, family: 'ipv4' });
      expect(events[1]).toMatchObject({ protocol: 'http1', path: '/v6', host: 'six.tcpscope.test', saddr: tn.nsV6, daddr: tn.hostV6, family: 'ipv6' });
      expect(stream.stats().received).toBe(2);
    } finally {
      stream.close();
      s4.close();
      s6.close();
    }
    expect(attachedPrograms(tn.hostIf)).toEqual([]);
  });
});
