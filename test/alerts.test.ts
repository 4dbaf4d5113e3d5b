// SPDX-License-Identifier: MIT
// Alert sinks: NDJSON to a stream, the webhook against a local HTTP server (retries with
// backoff, non-retryable statuses, bounded queue, close), and the fan-out.
import { describe, it, expect, afterEach } from 'vitest';
import http from 'node:http';
import { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import { Alert, AlertSink, alertFanout, alertToJson, ndjsonSink, webhookSink } from '../lib/alerts';
import { eventually } from './helpers/bpf';

function alert(n: number, state: Alert['state'] = 'raised'): Alert {
  return { kind: 'port_scan', state, at: new Date(1_700_000_000_000 + n), summary: `alert ${n}`, key: `port_scan/${n}`, evidence: { sources: ['192.0.2.1'], ports: [n], rates: { probes: n } } };
}

/** A webhook receiver whose answer to each request `respond` decides. */
async function receiver(respond: (n: number, body: Record<string, unknown>) => number | 'hang'): Promise<{ url: string; bodies: Array<Record<string, unknown>>; times: number[]; close(): Promise<void> }> {
  const bodies: Array<Record<string, unknown>> = [];
  const times: number[] = [];
  let n = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString()) as Record<string, unknown>;
      expect(req.headers['content-type']).toBe('application/json');
      times.push(Date.now());
      const status = respond(n++, body);
      if (status === 'hang') return;
      if (status < 300) bodies.push(body);
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    bodies,
    times,
    close: async () => { server.closeAllConnections(); await new Promise<void>((r) => server.close(() => r())); },
  };
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

describe('alert JSON', () => {
  it('has ISO time, a default key and severity', () => {
    const json = alertToJson({ kind: 'syn_flood', state: 'cleared', at: new Date(0), summary: 's', evidence: { n: 1n } }, 'node-1');
    expect(json).toEqual({ kind: 'syn_flood', state: 'cleared', at: '1970-01-01T00:00:00.000Z', summary: 's', key: 'syn_flood', severity: 'info', evidence: { n: 1 }, host: 'node-1' });
  });

  it('survives odd evidence: cycles, Maps, Sets, bytes, NaN', () => {
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic['self'] = cyclic;
    const json = alertToJson({ kind: 'x', state: 'raised', at: new Date(0), summary: '', evidence: { cyclic, m: new Map([[1, 'a']]), s: new Set([2]), b: new Uint8Array([1, 255]), nan: Number.NaN, f: () => 1 } });
    expect(JSON.parse(JSON.stringify(json.evidence))).toEqual({ cyclic: { a: 1, self: '[…]' }, m: { 1: 'a' }, s: [2], b: '01ff', nan: 'NaN' });
  });
});

describe('ndjson sink', () => {
  it('writes one JSON line per alert', async () => {
    const out = new PassThrough();
    let text = '';
    out.on('data', (d: Buffer) => { text += d.toString(); });
    const sink = ndjsonSink(out, { host: 'h1' });
    sink.send(alert(1));
    sink.send(alert(2, 'cleared'));
    await sink.close();
    const lines = text.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map((l) => [l['key'], l['state'], l['host']])).toEqual([['port_scan/1', 'raised', 'h1'], ['port_scan/2', 'cleared', 'h1']]);
  });

  it('drops and counts lines when the output does not drain, instead of growing memory', async () => {
    const stalled = new PassThrough({ highWaterMark: 16 }); // nobody reads it
    const undelivered: string[] = [];
    const sink = ndjsonSink(stalled, { maxBufferBytes: 1000, onUndelivered: (s, n, why) => undelivered.push(`${s} ${n} ${why}`) });
    for (let i = 0; i < 50; i++) sink.send(alert(i));
    expect(undelivered.length).toBeGreaterThan(30);
    expect(undelivered[0]).toMatch(/^ndjson 1 stream: output not draining/);
  });
});

describe('webhook sink', () => {
  it('POSTs each alert as JSON, in order', async () => {
    const r = await receiver(() => 200);
    cleanups.push(r.close);
    const sink = webhookSink({ url: r.url, host: 'node-7' });
    for (let i = 0; i < 5; i++) sink.send(alert(i));
    await sink.flush();
    expect(r.bodies.map((b) => b['key'])).toEqual([0, 1, 2, 3, 4].map((i) => `port_scan/${i}`));
    expect(r.bodies[0]).toMatchObject({ kind: 'port_scan', state: 'raised', host: 'node-7', evidence: { ports: [0] } });
    expect(sink.delivered).toBe(5);
    await sink.close();
  });

  it('retries 5xx and 429 with growing backoff, then delivers', async () => {
    const r = await receiver((n) => (n === 0 ? 503 : n === 1 ? 429 : n === 2 ? 500 : 200));
    // (a Retry-After header is honoured; see the next test)
    cleanups.push(r.close);
    const sink = webhookSink({ url: r.url, initialBackoffMs: 40, maxBackoffMs: 1000 });
    const start = Date.now();
    sink.send(alert(1));
    await sink.flush();
    expect(r.times).toHaveLength(4);
    expect(r.bodies).toHaveLength(1);
    // Delays of at least half of 40, 80, 160 ms (full jitter above half the step).
    const gaps = r.times.slice(1).map((t, i) => t - r.times[i]!);
    expect(gaps[0]).toBeGreaterThanOrEqual(15);
    expect(gaps[2]).toBeGreaterThanOrEqual(75);
    expect(Date.now() - start).toBeLessThan(2000);
    expect(sink.dropped).toBe(0);
  });

  it('honours Retry-After (in seconds, capped at maxBackoffMs)', async () => {
    let n = 0;
    const times: number[] = [];
    const server = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        times.push(Date.now());
        if (n++ === 0) res.writeHead(429, { 'retry-after': '30' }).end();
        else res.writeHead(200).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanups.push(async () => { server.closeAllConnections(); await new Promise<void>((r) => server.close(() => r())); });
    const sink = webhookSink({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, initialBackoffMs: 10, maxBackoffMs: 300 });
    sink.send(alert(1));
    await sink.flush();
    expect(times).toHaveLength(2);
    expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(280); // 30 s asked, capped at 300 ms
    expect(sink.delivered).toBe(1);
  });

  it('gives up on a 4xx at once and after maxAttempts on errors, counting both', async () => {
    const r = await receiver((_n, body) => (body['key'] === 'port_scan/1' ? 400 : 503));
    cleanups.push(r.close);
    const undelivered: string[] = [];
    const sink = webhookSink({ url: r.url, maxAttempts: 3, initialBackoffMs: 10, onUndelivered: (s, n, why) => undelivered.push(`${s} ${n} ${why}`) });
    sink.send(alert(1));
    sink.send(alert(2));
    await sink.flush();
    expect(r.times).toHaveLength(1 + 3);
    expect(undelivered).toEqual([expect.stringMatching(/^webhook 1 http:\/\/127.0.0.1:\d+: HTTP 400$/), expect.stringMatching(/HTTP 503$/)]);
    expect(sink.dropped).toBe(2);
  });

  it('never blocks the caller: a hung receiver fills a bounded queue that drops the oldest', async () => {
    const r = await receiver(() => 'hang');
    cleanups.push(r.close);
    const undelivered: string[] = [];
    const sink = webhookSink({ url: r.url, maxQueue: 3, timeoutMs: 60_000, closeTimeoutMs: 200, onUndelivered: (_s, n, why) => undelivered.push(`${n} ${why}`) });
    const t0 = performance.now();
    for (let i = 0; i < 10; i++) sink.send(alert(i));
    expect(performance.now() - t0).toBeLessThan(50);
    await eventually(() => r.times.length === 1, 2000, 'the first request');
    // All 10 were queued before the worker's turn: 7 dropped as the queue overflowed, of the
    // 3 kept one is in flight and 2 wait.
    expect(sink.queued).toBe(2);
    expect(undelivered.filter((u) => u.includes('queue full'))).toHaveLength(7);
    const t1 = Date.now();
    await sink.close();
    expect(Date.now() - t1).toBeLessThan(2000);
    expect(sink.dropped).toBe(10);
    sink.send(alert(99));
    expect(undelivered.at(-1)).toMatch(/sink closed/);
  });

  it('rejects a bad URL up front', () => {
    expect(() => webhookSink({ url: 'ftp://x' })).toThrow(/must be http\(s\)/);
    expect(() => webhookSink({ url: '::' })).toThrow(/bad URL/);
  });

  it('retries a receiver that is down until it comes up', async () => {
    // Down: each connection is cut before its request is read, so every failed attempt is seen.
    let up = false;
    let failed = 0;
    const bodies: unknown[] = [];
    const server = http.createServer((req, res) => { req.resume(); req.on('end', () => { bodies.push(1); res.writeHead(204).end(); }); });
    server.on('connection', (s) => { if (!up) { failed++; s.destroy(); } });
    await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
    cleanups.push(async () => { server.closeAllConnections(); await new Promise<void>((res) => server.close(() => res())); });
    const sink = webhookSink({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, initialBackoffMs: 50, maxAttempts: 10 });
    sink.send(alert(5));
    await eventually(() => failed >= 2, 5000, 'two failed attempts');
    up = true;
    await sink.flush();
    expect(bodies).toHaveLength(1);
    expect(sink.delivered).toBe(1);
  });
});

describe('fan-out', () => {
  it('sends to every sink even when one throws', async () => {
    const got: string[] = [];
    const broken: AlertSink = { name: 'broken', send: () => { throw new Error('boom'); }, flush: async () => {}, close: async () => {} };
    const good: AlertSink = { name: 'good', send: (a) => got.push(a.summary), flush: async () => {}, close: async () => {} };
    const errors: string[] = [];
    const fan = alertFanout([broken, good], (s, _n, why) => errors.push(`${s}: ${why}`));
    fan.send(alert(1));
    expect(got).toEqual(['alert 1']);
    expect(errors).toEqual(['broken: boom']);
    await fan.close();
  });
});
