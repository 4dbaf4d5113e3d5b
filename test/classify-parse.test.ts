// SPDX-License-Identifier: MIT
// Parsers of the flows probe on byte fixtures: built by hand, and a real ClientHello that
// Node's TLS client sends (captured by a plain TCP server in this process), whole,
// truncated at every length, and corrupted.
import { describe, expect, it, beforeAll } from 'vitest';
import net from 'node:net';
import tls from 'node:tls';
import { once } from 'node:events';
import { classifyPayload, parseClientHello, parseHttp1Request, isHttp2Preface } from '../lib/classify/parse';

const enc = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'latin1'));
const u16 = (n: number): number[] => [n >> 8, n & 255];
const u24 = (n: number): number[] => [n >> 16, (n >> 8) & 255, n & 255];

function ext(type: number, body: number[]): number[] {
  return [...u16(type), ...u16(body.length), ...body];
}

/** A ClientHello in one record, with chosen extensions. */
function clientHello(opts: { sni?: string; alpn?: string[]; versions?: number[]; extra?: number[][]; legacy?: number } = {}): Uint8Array {
  const exts: number[] = [];
  if (opts.sni !== undefined) {
    const name = [...enc(opts.sni)];
    const entry = [0, ...u16(name.length), ...name];
    exts.push(...ext(0, [...u16(entry.length), ...entry]));
  }
  if (opts.alpn) {
    const list = opts.alpn.flatMap((p) => [p.length, ...enc(p)]);
    exts.push(...ext(16, [...u16(list.length), ...list]));
  }
  if (opts.versions) {
    const list = opts.versions.flatMap(u16);
    exts.push(...ext(43, [list.length, ...list]));
  }
  for (const e of opts.extra ?? []) exts.push(...e);
  const body = [...u16(opts.legacy ?? 0x0303), ...new Array(32).fill(7), 0, ...u16(4), 0x13, 0x01, 0x13, 0x02, 1, 0, ...u16(exts.length), ...exts];
  const hs = [1, ...u24(body.length), ...body];
  return Uint8Array.from([0x16, 0x03, 0x01, ...u16(hs.length), ...hs]);
}

describe('HTTP/1.x', () => {
  it('reads method, path, version and Host', () => {
    const c = classifyPayload(enc('GET /a/b?c=1 HTTP/1.1\r\nUser-Agent: x\r\nHost: example.test:8080\r\nAccept: */*\r\n\r\n'));
    expect(c).toEqual({ protocol: 'http1', method: 'GET', path: '/a/b?c=1', httpVersion: 'HTTP/1.1', host: 'example.test:8080' });
    expect(classifyPayload(enc('POST /upload HTTP/1.0\nhost: h\n\nbody')).host).toBe('h');
    expect(classifyPayload(enc('OPTIONS * HTTP/1.1\r\n\r\n')).path).toBe('*');
  });

  it('keeps what a truncated request gives', () => {
    expect(classifyPayload(enc('GET /very/long/pa'))).toEqual({ protocol: 'http1', method: 'GET', path: '/very/long/pa', truncated: true });
    expect(classifyPayload(enc('GET / HTTP/1.1\r\nAccept: */*\r\nHo'))).toMatchObject({ protocol: 'http1', path: '/', truncated: true });
  });

  it('rejects what is not a request', () => {
    for (const s of ['HTTP/1.1 200 OK\r\n\r\n', 'GETX / HTTP/1.1\r\n', 'GET / HTTP/2.0\r\n\r\n', 'GET  HTTP/1.1\r\n', 'SSH-2.0-OpenSSH_9.2\r\n', 'GET /\x01 HTTP/1.1\r\n', 'get / HTTP/1.1\r\n']) {
      expect(classifyPayload(enc(s)).protocol, s).toBe('unknown');
      expect(parseHttp1Request(enc(s))).toBeUndefined();
    }
    expect(classifyPayload(new Uint8Array(0))).toEqual({ protocol: 'unknown' });
  });

  it('ignores a Host header with control characters or absurd length', () => {
    expect(classifyPayload(enc('GET / HTTP/1.1\r\nHost: a\x07b\r\n\r\n')).host).toBeUndefined();
    expect(classifyPayload(enc(`GET / HTTP/1.1\r\nHost: ${'a'.repeat(300)}\r\n\r\n`)).host).toBeUndefined();
  });
});

describe('HTTP/2 preface', () => {
  it('is recognised whole or cut after its first line', () => {
    expect(classifyPayload(enc('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x12\x04'))).toEqual({ protocol: 'http2' });
    expect(classifyPayload(enc('PRI * HTTP/2.0\r\n'))).toEqual({ protocol: 'http2', truncated: true });
    expect(isHttp2Preface(enc('PRI * HTTP/1.1'))).toBe(false);
    expect(classifyPayload(enc('PRI * HTTP/2.1\r\n\r\nSM\r\n\r\n')).protocol).toBe('unknown');
  });
});

describe('TLS ClientHello (built fixtures)', () => {
  it('reads SNI, ALPN and the highest supported version, skipping GREASE', () => {
    const c = parseClientHello(clientHello({ sni: 'www.example.test', alpn: ['h2', 'http/1.1'], versions: [0x3a3a, 0x0304, 0x0303], extra: [ext(0x0a0a, []), ext(10, [0, 2, 0, 29])] }));
    expect(c).toEqual({ protocol: 'tls', sni: 'www.example.test', alpn: ['h2', 'http/1.1'], tlsVersion: 'TLSv1.3' });
  });

  it('without supported_versions, uses the legacy version; without extensions, still TLS', () => {
    expect(parseClientHello(clientHello({ sni: 'a.test', legacy: 0x0301 }))).toEqual({ protocol: 'tls', sni: 'a.test', tlsVersion: 'TLSv1' });
    expect(parseClientHello(clientHello())).toEqual({ protocol: 'tls', tlsVersion: 'TLSv1.2' });
  });

  it('joins a hello split over two records', () => {
    const one = clientHello({ sni: 'split.test', alpn: ['h2'] });
    const hs = one.subarray(5);
    const a = hs.subarray(0, 40), b = hs.subarray(40);
    const two = Uint8Array.from([0x16, 3, 1, ...u16(a.length), ...a, 0x16, 3, 1, ...u16(b.length), ...b]);
    expect(parseClientHello(two)).toEqual({ protocol: 'tls', sni: 'split.test', alpn: ['h2'], tlsVersion: 'TLSv1.2' });
  });

  it('reports malformed lengths instead of reading past them', () => {
    const good = clientHello({ sni: 'x.test', alpn: ['h2'] });
    const badSid = good.slice();
    badSid[5 + 4 + 2 + 32] = 33; // session id length
    expect(parseClientHello(badSid)).toMatchObject({ protocol: 'tls', malformed: expect.stringMatching(/session id/) });
    const badName = clientHello({ sni: 'bad\x00name' });
    expect(parseClientHello(badName)).toMatchObject({ protocol: 'tls', malformed: expect.stringMatching(/server_name/) });
    expect(parseClientHello(badName)!.sni).toBeUndefined();
    // An extension claiming more bytes than the extension block holds.
    const ext0 = clientHello({ extra: [[0xff, 0x01, 0x7f, 0xff, 1, 2]] });
    expect(parseClientHello(ext0)).toMatchObject({ protocol: 'tls', malformed: expect.stringMatching(/past/) });
    // A zero-length record, a bad record version.
    expect(parseClientHello(Uint8Array.from([0x16, 3, 1, 0, 0, 1, 0, 0]))).toMatchObject({ malformed: expect.stringMatching(/record length/) });
    expect(parseClientHello(Uint8Array.from([0x16, 3, 9, 0, 4, 1, 0, 0, 0]))).toBeUndefined();
    expect(parseClientHello(Uint8Array.from([0x16, 3, 1, 0, 4, 2, 0, 0, 0]))).toBeUndefined(); // ServerHello
    expect(classifyPayload(Uint8Array.from([0x17, 3, 3, 0, 1, 0])).protocol).toBe('unknown');
  });
});

describe('TLS ClientHello from node:tls', () => {
  let hello: Uint8Array;

  beforeAll(async () => {
    // A plain TCP server keeps the first bytes the TLS client sends, then hangs up.
    let resolve!: (b: Buffer) => void;
    const got = new Promise<Buffer>((r) => { resolve = r; });
    const server = net.createServer((s) => {
      let buf = Buffer.alloc(0);
      s.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        if (buf.length >= 5 && buf.length >= 5 + buf.readUInt16BE(3)) { resolve(buf); s.destroy(); }
      });
      s.on('error', () => {});
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as net.AddressInfo).port;
    const client = tls.connect({ host: '127.0.0.1', port, servername: 'fixture.tcpscope.test', ALPNProtocols: ['h2', 'http/1.1'], rejectUnauthorized: false });
    client.on('error', () => {});
    hello = Uint8Array.from(await got);
    client.destroy();
    server.close();
  });

  it('parses the whole hello', () => {
    expect(classifyPayload(hello)).toEqual({ protocol: 'tls', sni: 'fixture.tcpscope.test', alpn: ['h2', 'http/1.1'], tlsVersion: 'TLSv1.3' });
  });

  it('parses every truncation without throwing; fields appear only once complete', () => {
    const sniEnd = Buffer.from(hello).indexOf('fixture.tcpscope.test') + 'fixture.tcpscope.test'.length;
    for (let n = 0; n < hello.length; n++) {
      const c = classifyPayload(hello.subarray(0, n));
      if (n < 6) {
        expect(c.protocol).toBe('unknown');
        continue;
      }
      expect(c.protocol).toBe('tls');
      expect(c.truncated).toBe(true);
      expect(c.malformed).toBeUndefined();
      if (c.sni !== undefined) {
        expect(c.sni).toBe('fixture.tcpscope.test');
        expect(n).toBeGreaterThanOrEqual(sniEnd);
      } else {
        expect(n).toBeLessThan(sniEnd + 1);
      }
    }
  });

  it('survives random corruption (never throws, never reads past the input)', () => {
    let seed = 12345;
    const rand = (n: number): number => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n; };
    const protocols = new Set<string>();
    for (let i = 0; i < 3000; i++) {
      const b = hello.slice(0, 1 + rand(hello.length));
      for (let k = 0, m = 1 + rand(6); k < m; k++) b[rand(b.length)] = rand(256);
      const c = classifyPayload(b);
      protocols.add(c.protocol);
      if (c.sni !== undefined) expect(c.sni).toMatch(/^[\x21-\x7e]{1,255}$/);
      for (const p of c.alpn ?? []) expect(p).toMatch(/^[\x21-\x7e]+$/);
    }
    expect(protocols.has('tls')).toBe(true);
  });
});
