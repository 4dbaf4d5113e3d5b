// SPDX-License-Identifier: MIT
// Builders for Ethernet/IPv4/IPv6/TCP frames with correct checksums, for test runs of
// packet programs and for unit tests of parsers.
import { internetChecksum } from '../util/checksum';

export interface TcpFrameOptions {
  src: string;
  dst: string;
  sport: number;
  dport: number;
  flags?: Partial<Record<TcpFlagName, boolean>>;
  seq?: number;
  ack?: number;
  window?: number;
  ttl?: number;
  /** TCP options, e.g. { mss: 1460, wscale: 7, sackPermitted: true, timestamps: [1, 0] }. */
  options?: { mss?: number; wscale?: number; sackPermitted?: boolean; timestamps?: [number, number] };
  payload?: Uint8Array;
  srcMac?: string;
  dstMac?: string;
}

export const TCP_FLAGS = { fin: 0x01, syn: 0x02, rst: 0x04, psh: 0x08, ack: 0x10, urg: 0x20, ece: 0x40, cwr: 0x80 } as const;

export type TcpFlagName = keyof typeof TCP_FLAGS;

/** A TCP flags byte decoded: each flag set or not. */
export type TcpFlags = Readonly<Record<TcpFlagName, boolean>>;

/** Decodes a TCP flags byte. */
export function tcpFlags(bits: number): TcpFlags {
  return {
    fin: (bits & 0x01) !== 0, syn: (bits & 0x02) !== 0, rst: (bits & 0x04) !== 0, psh: (bits & 0x08) !== 0,
    ack: (bits & 0x10) !== 0, urg: (bits & 0x20) !== 0, ece: (bits & 0x40) !== 0, cwr: (bits & 0x80) !== 0,
  };
}

/** tcpdump's flag letters, FIN first: `S`, `S.`, `P.`, `F.`, `R`, ... ('.' is ACK, 'W' CWR); `none` for 0. */
export function flagLetters(bits: number): string {
  let s = '';
  if (bits & 0x01) s += 'F';
  if (bits & 0x02) s += 'S';
  if (bits & 0x04) s += 'R';
  if (bits & 0x08) s += 'P';
  if (bits & 0x10) s += '.';
  if (bits & 0x20) s += 'U';
  if (bits & 0x40) s += 'E';
  if (bits & 0x80) s += 'W';
  return s || 'none';
}

function parseMac(mac: string): number[] {
  const parts = mac.split(':').map((p) => parseInt(p, 16));
  if (parts.length !== 6 || parts.some((p) => !(p >= 0 && p <= 255))) throw new TypeError(`bad MAC address '${mac}'`);
  return parts;
}

/** Parses a dotted IPv4 or a (possibly compressed) IPv6 address into bytes. */
export function parseIp(address: string): Uint8Array {
  if (address.includes(':')) {
    let [head, tail] = address.split('::') as [string, string | undefined];
    const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(address);
    const groups = (s: string | undefined): number[] => (s ? s.split(':').filter(Boolean).flatMap((g) => (g.includes('.') ? [] : [parseInt(g, 16)])) : []);
    const tailV4 = v4 ? Array.from(parseIp(v4[1]!)) : [];
    if (v4 && tail !== undefined) tail = tail.replace(v4[1]!, '');
    if (v4 && tail === undefined) head = head.replace(v4[1]!, '');
    const h = groups(head);
    const t = groups(tail);
    const v4Groups = tailV4.length ? [(tailV4[0]! << 8) | tailV4[1]!, (tailV4[2]! << 8) | tailV4[3]!] : [];
    const fill = address.includes('::') ? 8 - h.length - t.length - v4Groups.length : 0;
    const all = [...h, ...new Array<number>(Math.max(fill, 0)).fill(0), ...t, ...v4Groups];
    if (all.length !== 8 || all.some((g) => !(g >= 0 && g <= 0xffff))) throw new TypeError(`bad IPv6 address '${address}'`);
    const out = new Uint8Array(16);
    all.forEach((g, i) => { out[2 * i] = g >> 8; out[2 * i + 1] = g & 0xff; });
    return out;
  }
  const parts = address.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) throw new TypeError(`bad IPv4 address '${address}'`);
  return Uint8Array.from(parts);
}

function tcpOptions(o: TcpFrameOptions['options']): Uint8Array {
  const bytes: number[] = [];
  if (o?.mss !== undefined) bytes.push(2, 4, o.mss >> 8, o.mss & 0xff);
  if (o?.sackPermitted) bytes.push(4, 2);
  if (o?.timestamps) {
    const [val, ecr] = o.timestamps;
    bytes.push(8, 10, (val >>> 24) & 0xff, (val >>> 16) & 0xff, (val >>> 8) & 0xff, val & 0xff, (ecr >>> 24) & 0xff, (ecr >>> 16) & 0xff, (ecr >>> 8) & 0xff, ecr & 0xff);
  }
  if (o?.wscale !== undefined) bytes.push(3, 3, o.wscale);
  while (bytes.length % 4) bytes.push(1); // NOP padding
  return Uint8Array.from(bytes);
}

/** An Ethernet frame carrying one TCP segment over IPv4 or IPv6 (chosen by the addresses). */
export function tcpFrame(o: TcpFrameOptions): Uint8Array {
  const src = parseIp(o.src);
  const dst = parseIp(o.dst);
  if (src.length !== dst.length) throw new TypeError('source and destination must both be IPv4 or both IPv6');
  const v6 = src.length === 16;
  const opts = tcpOptions(o.options);
  const payload = o.payload ?? new Uint8Array(0);
  const tcpLen = 20 + opts.length + payload.length;
  const tcp = new Uint8Array(tcpLen);
  const t = new DataView(tcp.buffer);
  t.setUint16(0, o.sport);
  t.setUint16(2, o.dport);
  t.setUint32(4, (o.seq ?? 1000) >>> 0);
  t.setUint32(8, (o.ack ?? 0) >>> 0);
  let flags = 0;
  for (const [name, on] of Object.entries(o.flags ?? { syn: true })) if (on) flags |= TCP_FLAGS[name as keyof typeof TCP_FLAGS];
  t.setUint8(12, ((20 + opts.length) / 4) << 4);
  t.setUint8(13, flags);
  t.setUint16(14, o.window ?? 65535);
  tcp.set(opts, 20);
  tcp.set(payload, 20 + opts.length);
  const pseudo = new Uint8Array(v6 ? 40 : 12);
  const p = new DataView(pseudo.buffer);
  pseudo.set(src, 0);
  pseudo.set(dst, src.length);
  if (v6) { p.setUint32(32, tcpLen); p.setUint8(39, 6); } else { p.setUint8(9, 6); p.setUint16(10, tcpLen); }
  t.setUint16(16, internetChecksum([pseudo, tcp]));

  const ipHeaderLen = v6 ? 40 : 20;
  const frame = new Uint8Array(14 + ipHeaderLen + tcpLen);
  const f = new DataView(frame.buffer);
  frame.set(parseMac(o.dstMac ?? '02:00:00:00:00:02'), 0);
  frame.set(parseMac(o.srcMac ?? '02:00:00:00:00:01'), 6);
  f.setUint16(12, v6 ? 0x86dd : 0x0800);
  const ip = frame.subarray(14, 14 + ipHeaderLen);
  const i = new DataView(ip.buffer, ip.byteOffset, ip.byteLength);
  if (v6) {
    i.setUint32(0, 0x60000000);
    i.setUint16(4, tcpLen);
    i.setUint8(6, 6);
    i.setUint8(7, o.ttl ?? 64);
    ip.set(src, 8);
    ip.set(dst, 24);
  } else {
    i.setUint8(0, 0x45);
    i.setUint16(2, 20 + tcpLen);
    i.setUint16(6, 0x4000); // don't fragment
    i.setUint8(8, o.ttl ?? 64);
    i.setUint8(9, 6);
    ip.set(src, 12);
    ip.set(dst, 16);
    i.setUint16(10, internetChecksum([ip]));
  }
  frame.set(tcp, 14 + ipHeaderLen);
  return frame;
}
