// SPDX-License-Identifier: MIT
// Identification of a flow from its first payload bytes: an HTTP/1.x request line and Host
// header, the HTTP/2 connection preface, or a TLS ClientHello (SNI, ALPN, version).
// Input comes off the network: every read is bounded by both the bytes captured and the
// lengths the message declares, nothing recurses, loops advance by at least one byte, and
// strings keep printable ASCII only. Truncated input gives what was complete.

export type FlowProtocol = 'http1' | 'http2' | 'tls' | 'unknown';

export interface Classification {
  protocol: FlowProtocol;
  /** HTTP/1.x */
  method?: string;
  path?: string;
  /** HTTP/1.x Host header. */
  host?: string;
  /** HTTP/1.x request line version, e.g. 'HTTP/1.1'. */
  httpVersion?: string;
  /** TLS: server_name (host_name) of the ClientHello. */
  sni?: string;
  /** TLS: highest version offered (supported_versions, else the legacy version): 'TLSv1.3'... */
  tlsVersion?: string;
  /** TLS: protocols offered in ALPN, in order ('h2', 'http/1.1'). */
  alpn?: string[];
  /** The message goes on beyond the captured bytes (fields past that point are missing). */
  truncated?: boolean;
  /** Why a message that started like TLS or HTTP stopped making sense. */
  malformed?: string;
}

const HTTP_METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'HEAD', 'OPTIONS', 'PATCH', 'CONNECT', 'TRACE'];
const HTTP2_PREFACE = 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n';
const MAX_FIELD = 2048;

function ascii(bytes: Uint8Array, start: number, end: number): string {
  let s = '';
  for (let i = start; i < end; i++) s += String.fromCharCode(bytes[i]!);
  return s;
}

function printable(s: string): boolean {
  return /^[\x21-\x7e]*$/.test(s);
}

/** The HTTP/2 client preface (or as much of it as was captured, at least its first line). */
export function isHttp2Preface(bytes: Uint8Array): boolean {
  const n = Math.min(bytes.length, HTTP2_PREFACE.length);
  if (n < 14) return false; // 'PRI * HTTP/2.0'
  return ascii(bytes, 0, n) === HTTP2_PREFACE.slice(0, n);
}

/** An HTTP/1.x request: method, target, version and Host; undefined when it is not one. */
export function parseHttp1Request(bytes: Uint8Array): Classification | undefined {
  const space = bytes.indexOf(0x20);
  if (space < 3 || space > 7) return undefined;
  const method = ascii(bytes, 0, space);
  if (!HTTP_METHODS.includes(method)) return undefined;
  const head = ascii(bytes, 0, Math.min(bytes.length, 16384));
  const eol = head.indexOf('\n');
  const line = (eol < 0 ? head : head.slice(0, eol)).replace(/\r$/, '');
  const parts = line.split(' ');
  const target = parts[1] ?? '';
  const out: Classification = { protocol: 'http1', method };
  if (eol < 0) {
    // The request line itself is cut: keep the target seen so far.
    out.truncated = true;
    if (target && printable(target)) out.path = target.slice(0, MAX_FIELD);
    if (parts.length > 3) return undefined;
    return out;
  }
  if (parts.length !== 3 || !/^HTTP\/1\.[01]$/.test(parts[2]!) || !target || !printable(target)) return undefined;
  out.path = target.slice(0, MAX_FIELD);
  out.httpVersion = parts[2]!;
  let pos = eol + 1;
  let ended = false;
  for (let lines = 0; lines < 200 && pos < head.length; lines++) {
    const next = head.indexOf('\n', pos);
    if (next < 0) break;
    const h = head.slice(pos, next).replace(/\r$/, '');
    pos = next + 1;
    if (h === '') {
      ended = true;
      break;
    }
    const colon = h.indexOf(':');
    if (colon > 0 && h.slice(0, colon).toLowerCase() === 'host') {
      const value = h.slice(colon + 1).trim();
      if (value && value.length <= 255 && printable(value)) out.host = value;
    }
  }
  if (!ended && out.host === undefined) out.truncated = true;
  return out;
}

const TLS_VERSIONS: Record<number, string> = { 0x0300: 'SSLv3', 0x0301: 'TLSv1', 0x0302: 'TLSv1.1', 0x0303: 'TLSv1.2', 0x0304: 'TLSv1.3' };

class Truncated extends Error {}
class Malformed extends Error {}

/** Bounded big-endian reads over [pos, end) of bytes that may stop before `end`. */
class Reader {
  constructor(private readonly b: Uint8Array, public pos: number, public readonly end: number) {}
  private need(n: number): void {
    if (this.pos + n > this.end) throw new Malformed(`length runs past its enclosing block at byte ${this.pos}`);
    if (this.pos + n > this.b.length) throw new Truncated();
  }
  u8(): number { this.need(1); return this.b[this.pos++]!; }
  u16(): number { this.need(2); const v = (this.b[this.pos]! << 8) | this.b[this.pos + 1]!; this.pos += 2; return v; }
  u24(): number { this.need(3); const v = (this.b[this.pos]! << 16) | (this.b[this.pos + 1]! << 8) | this.b[this.pos + 2]!; this.pos += 3; return v; }
  skip(n: number): void { this.need(n); this.pos += n; }
  bytes(n: number): Uint8Array { this.need(n); const v = this.b.subarray(this.pos, this.pos + n); this.pos += n; return v; }
  /** A sub-reader over the next n bytes (declared length), advancing past them. */
  sub(n: number): Reader {
    if (this.pos + n > this.end) throw new Malformed(`length ${n} at byte ${this.pos} runs past its enclosing block`);
    const r = new Reader(this.b, this.pos, this.pos + n);
    this.pos += n;
    return r;
  }
  get left(): number { return this.end - this.pos; }
}

/** Joins the handshake bytes of consecutive TLS handshake records (a ClientHello may span several). */
function handshakeBytes(bytes: Uint8Array): { hs: Uint8Array; declared: number; truncated: boolean } | { error: string } {
  const chunks: Uint8Array[] = [];
  let pos = 0;
  let declared = 0;
  let truncated = false;
  for (let records = 0; records < 16 && pos + 5 <= bytes.length; records++) {
    if (bytes[pos] !== 0x16) break;
    if (bytes[pos + 1] !== 0x03 || bytes[pos + 2]! > 0x04) return { error: `bad record version ${bytes[pos + 1]}.${bytes[pos + 2]}` };
    const len = (bytes[pos + 3]! << 8) | bytes[pos + 4]!;
    if (len === 0 || len > 16384 + 2048) return { error: `bad record length ${len}` };
    declared += len;
    const end = pos + 5 + len;
    chunks.push(bytes.subarray(pos + 5, Math.min(end, bytes.length)));
    if (end > bytes.length) {
      truncated = true;
      break;
    }
    pos = end;
  }
  const total = chunks.reduce((a, c) => a + c.length, 0);
  const hs = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) { hs.set(c, off); off += c.length; }
  return { hs, declared, truncated };
}

/** A TLS ClientHello: SNI, ALPN, version. undefined when the bytes do not start one. */
export function parseClientHello(bytes: Uint8Array): Classification | undefined {
  if (bytes.length < 6 || bytes[0] !== 0x16 || bytes[1] !== 0x03 || bytes[2]! > 0x04 || bytes[5] !== 0x01) return undefined;
  const out: Classification = { protocol: 'tls' };
  const joined = handshakeBytes(bytes);
  if ('error' in joined) {
    out.malformed = joined.error;
    return out;
  }
  const { hs } = joined;
  // The hello's declared end; bytes past what was captured make reads Truncated.
  const hsLen = hs.length >= 4 ? (hs[1]! << 16) | (hs[2]! << 8) | hs[3]! : Infinity;
  try {
    const top = new Reader(hs, 0, Number.isFinite(hsLen) ? 4 + hsLen : Number.MAX_SAFE_INTEGER);
    top.skip(1);
    const len = top.u24();
    if (len < 38) throw new Malformed(`ClientHello of ${len} bytes is too short`);
    const legacy = top.u16();
    if (TLS_VERSIONS[legacy]) out.tlsVersion = TLS_VERSIONS[legacy];
    top.skip(32); // random
    const sid = top.u8();
    if (sid > 32) throw new Malformed(`session id of ${sid} bytes`);
    top.skip(sid);
    const suites = top.u16();
    if (suites < 2 || suites % 2) throw new Malformed(`cipher suites length ${suites}`);
    top.skip(suites);
    const comp = top.u8();
    if (comp < 1) throw new Malformed('no compression methods');
    top.skip(comp);
    if (top.left > 0) { // else no extensions (TLS 1.0-era hello)
      const extLen = top.u16();
      const exts = top.sub(extLen);
      while (exts.left > 0) {
        const type = exts.u16();
        const len = exts.u16();
        const ext = exts.sub(len);
        if (type === 0) parseSni(ext, out);
        else if (type === 16) parseAlpn(ext, out);
        else if (type === 43) parseSupportedVersions(ext, out);
      }
    }
  } catch (e) {
    if (e instanceof Truncated) out.truncated = true;
    else if (e instanceof Malformed) out.malformed = e.message;
    else throw e;
  }
  // Captured bytes end inside the hello (perhaps inside an extension not looked at).
  if (!out.malformed && (joined.truncated || !(4 + hsLen <= hs.length))) out.truncated = true;
  return out;
}

function parseSni(r: Reader, out: Classification): void {
  const listLen = r.u16();
  const list = r.sub(listLen);
  while (list.left > 0) {
    const type = list.u8();
    const len = list.u16();
    const name = list.bytes(len);
    if (type !== 0) continue;
    const text = ascii(name, 0, name.length);
    if (len === 0 || len > 255 || !printable(text)) throw new Malformed('server_name is not a printable host name');
    out.sni = text;
    return;
  }
}

function parseAlpn(r: Reader, out: Classification): void {
  const listLen = r.u16();
  const list = r.sub(listLen);
  const protocols: string[] = [];
  while (list.left > 0) {
    const len = list.u8();
    if (len === 0) throw new Malformed('empty ALPN protocol name');
    const name = list.bytes(len);
    const text = ascii(name, 0, name.length);
    if (printable(text)) protocols.push(text);
  }
  out.alpn = protocols;
}

function parseSupportedVersions(r: Reader, out: Classification): void {
  const len = r.u8();
  if (len % 2) throw new Malformed(`supported_versions length ${len}`);
  const list = r.sub(len);
  let best = 0;
  while (list.left > 0) {
    const v = list.u16();
    if ((v & 0x0f0f) === 0x0a0a) continue; // GREASE
    if (TLS_VERSIONS[v] && v > best) best = v;
  }
  if (best) out.tlsVersion = TLS_VERSIONS[best]!;
}

/** Classifies the first payload bytes of a client's byte stream. */
export function classifyPayload(bytes: Uint8Array): Classification {
  if (bytes.length === 0) return { protocol: 'unknown' };
  if (bytes[0] === 0x16) {
    const tls = parseClientHello(bytes);
    if (tls) return tls;
  }
  if (bytes[0] === 0x50 /* P */ && isHttp2Preface(bytes)) {
    const out: Classification = { protocol: 'http2' };
    if (bytes.length < HTTP2_PREFACE.length) out.truncated = true;
    return out;
  }
  const http = parseHttp1Request(bytes);
  if (http) return http;
  return { protocol: 'unknown' };
}
