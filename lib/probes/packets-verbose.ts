// SPDX-License-Identifier: MIT
// tcpdump -v and -vv lines for a packet event, read from its captured frame bytes: the IP
// header's fields (with options and the header checksum verdict), the TCP checksum verdict,
// and -vv's sequence number on every segment. Without captured bytes only the fields the
// event carries are printed.
import { checksumShouldBe, internetChecksum } from '../util/checksum';
import { PacketEvent, formatPacketBody } from './packets';

/** 1: tcpdump -v, 2 or more: tcpdump -vv (tcpdump prints nothing more for TCP at -vvv). */
export type Verbosity = number;

const IPPROTO_TCP = 6;
const IP_MF = 0x2000;
const IP_DF = 0x4000;
const IP_RES = 0x8000;
const IP_OFFMASK = 0x1fff;
/** tcpdump prints at most this many bytes of a RST's data. */
const MAX_RST_DATA = 30;

/** tcpdump's names of IPv6 next headers that can precede TCP (others are 'unknown'). */
const IP6_NEXT_NAMES: ReadonlyMap<number, string> = new Map([[0, 'Options'], [6, 'TCP'], [43, 'Routing'], [44, 'Fragment']]);
const IPOPT_NAMES: ReadonlyMap<number, string> = new Map([
  [0, 'EOL'], [1, 'NOP'], [68, 'timestamp'], [130, 'security'], [7, 'RR'], [137, 'SSRR'], [131, 'LSRR'], [148, 'RA'], [82, 'traceroute'],
]);

const u16 = (b: Uint8Array, at: number): number => (b[at]! << 8) | b[at + 1]!;
const u32 = (b: Uint8Array, at: number): number => ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
const ipv4 = (b: Uint8Array, at: number): string => `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;
const hex4 = (n: number): string => n.toString(16).padStart(4, '0');

/** The addresses of a record-route style option (RR, LSRR, SSRR), `,` after those already passed. */
function routeText(opt: Uint8Array): string {
  const length = opt.length;
  if (length < 3) return ` [bad length ${length}]`;
  let s = (length + 1) & 3 ? ` [bad length ${length}]` : '';
  const ptr = opt[2]! - 1;
  if (ptr < 3 || (ptr + 1) & 3 || ptr > length + 1) s += ` [bad ptr ${opt[2]}]`;
  for (let at = 3; at + 4 <= length; at += 4) s += ` ${ipv4(opt, at)}${ptr > at ? ',' : ''}`;
  return s;
}

/** An IP timestamp option: `TS{TSONLY 1@ 2@ ^ }` style, as tcpdump prints it. */
function timestampText(opt: Uint8Array): string {
  const length = opt.length;
  if (length < 4) return `[bad length ${length}]`;
  const type = opt[3]! & 0xf;
  const hop = type !== 0 ? 8 : 4;
  let s = ' TS{';
  if ((length - 4) & (hop - 1)) s += `[bad length ${length}]`;
  const ptr = opt[2]! - 1;
  if (ptr < 4 || (ptr - 4) & (hop - 1) || ptr > length + 1) s += `[bad ptr ${opt[2]}]`;
  let at = 0;
  const names: Record<number, string> = { 0: 'TSONLY', 1: 'TS+ADDR', 3: 'PRESPEC' };
  if (names[type] === undefined) {
    s += `[bad ts type ${type}]`;
  } else {
    s += names[type];
    for (at = 4; at < length && at + hop <= length; at += hop) {
      s += `${ptr === at ? ' ^ ' : ' '}${u32(opt, at + hop - 4)}@${hop === 8 ? ipv4(opt, at) : ''}`;
    }
  }
  if (ptr === at) s += ' ^ ';
  return s + (opt[3]! >> 4 ? ` [${opt[3]! >> 4} hops not recorded]} ` : '}');
}

/** IPv4 options as tcpdump -v lists them inside `options (...)`. */
function ipOptionsText(opts: Uint8Array): string {
  let s = '';
  for (let at = 0; at < opts.length;) {
    if (at > 0) s += ',';
    const code = opts[at]!;
    s += IPOPT_NAMES.get(code) ?? `unknown ${code}`;
    if (code === 0) break;
    const len = code === 1 ? 1 : (opts[at + 1] ?? 0);
    if (len < 1 || (code !== 1 && len < 2) || len > opts.length - at) return `${s} [bad length ${len}]`;
    const opt = opts.subarray(at, at + len);
    if (code === 68) s += timestampText(opt);
    else if (code === 7 || code === 131 || code === 137) s += routeText(opt);
    else if (code === 148) {
      if (len < 4) s += ` [bad length ${len}]`;
      else if (u16(opt, 2) !== 0) s += ` value ${u16(opt, 2)}`;
    }
    at += len;
  }
  return s;
}

/** The final destination of a source route (LSRR/SSRR) among IPv4 options, which the TCP checksum covers. */
function routeDestination(opts: Uint8Array): Uint8Array | undefined {
  for (let at = 0; at < opts.length;) {
    const code = opts[at]!;
    if (code === 0) break;
    const len = code === 1 ? 1 : (opts[at + 1] ?? 0);
    if (len < 2 && code !== 1) break;
    if (len > opts.length - at) break;
    if ((code === 131 || code === 137) && len >= 7) return opts.subarray(at + len - 4, at + len);
    at += len;
  }
  return undefined;
}

/** The event's fields this printer reads (read once: a lazy event decodes on every read). */
interface Fields {
  ipv4: boolean;
  /** Where the IP header starts in the frame. */
  ipOffset: number;
  ipLen: number;
  payloadLen: number;
  frameLen: number;
  /** TCP header length, bytes. */
  headerLen: number;
  flagBits: number;
  ttl: number;
}

function fieldsOf(e: PacketEvent): Fields {
  return {
    ipv4: e.family === 'ipv4', ipOffset: e.ipOffset, ipLen: e.ipLen, payloadLen: e.payloadLen,
    frameLen: e.frameLen, headerLen: e.headerLen, flagBits: e.flagBits, ttl: e.ttl,
  };
}

/** tcpdump's names of TCP options (others print as `unknown-N`). */
const TCPOPT_NAMES: ReadonlyMap<number, string> = new Map([
  [0, 'eol'], [1, 'nop'], [2, 'mss'], [3, 'wscale'], [4, 'sackOK'], [5, 'sack'], [6, 'echo'], [7, 'echoreply'], [8, 'TS'],
  [11, 'cc'], [12, 'ccnew'], [13, 'ccecho'],
]);
/** Sizes (kind and length bytes included) of the fixed-size options. */
const TCPOPT_SIZES: ReadonlyMap<number, number> = new Map([[2, 4], [3, 3], [4, 2], [6, 6], [7, 6], [8, 10], [11, 6], [12, 6], [13, 6]]);
/** Options whose tcpdump rendering is not reproduced here (md5, scps, uto, tcp-ao, mptcp, tfo, exp): the event's own text is printed instead. */
const TCPOPT_OTHER = new Set([19, 20, 28, 29, 30, 34, 254]);

/**
 * The TCP options of a captured header as tcpdump prints them inside `options [...]`: SACK
 * blocks as absolute sequence numbers (as tcpdump -S), unknown options in hex. Undefined
 * when an option is malformed or one tcpdump decodes at length (the caller then prints the
 * options the kernel parsed).
 */
function tcpOptionsText(opts: Uint8Array): { text: string; bad: boolean } | undefined {
  const out: string[] = [];
  for (let at = 0; at < opts.length;) {
    const kind = opts[at]!;
    if (TCPOPT_OTHER.has(kind)) return undefined;
    const len = kind <= 1 ? 1 : (opts[at + 1] ?? 0);
    // tcpdump ends the line at an option whose length is impossible.
    if (kind > 1 && (len < 2 || len > opts.length - at)) return { text: [...out, '[bad opt]'].join(','), bad: true };
    // An option of the wrong size: tcpdump's reading of it (and of what follows) is not
    // reproduced.
    if (TCPOPT_SIZES.has(kind) && TCPOPT_SIZES.get(kind) !== len) return undefined;
    const data = opts.subarray(at + (kind <= 1 ? 1 : 2), at + len);
    let s = TCPOPT_NAMES.get(kind) ?? `unknown-${kind}`;
    if (kind === 2) s += ` ${u16(data, 0)}`;
    else if (kind === 3) s += ` ${data[0]}`;
    else if (kind === 5) {
      if (data.length % 8) s += ' invalid sack';
      else {
        s += ` ${data.length / 8} `;
        for (let i = 0; i < data.length; i += 8) s += `{${u32(data, i)}:${u32(data, i + 4)}}`;
      }
    } else if (kind === 8) s += ` val ${u32(data, 0)} ecr ${u32(data, 4)}`;
    else if (TCPOPT_SIZES.get(kind) === 6) s += ` ${u32(data, 0)}`; // echo, echoreply, cc, ccnew, ccecho
    else if (!TCPOPT_NAMES.has(kind) && data.length) s += ` 0x${Buffer.from(data).toString('hex')}`;
    out.push(s);
    if (kind === 0) break;
    at += len;
  }
  return { text: out.join(','), bad: false };
}

/** The `options` text of a segment whose TCP header was captured whole, else undefined. */
function optionsFromFrame(f: Fields, frame: Uint8Array, l4: number): { text: string; bad: boolean } | undefined {
  if (f.headerLen <= 20 || l4 + f.headerLen > frame.length) return undefined;
  return tcpOptionsText(frame.subarray(l4 + 20, l4 + f.headerLen));
}

/** tcpdump's rendering of a byte of RST data: printable ASCII as is, `M-` for the high bit, `^` for controls. */
function rstChar(c: number): string {
  let s = '';
  if (c & 0x80) { s = 'M-'; c &= 0x7f; }
  if (c < 0x20 || c === 0x7f) { s += '^'; c ^= 0x40; }
  return s + String.fromCharCode(c);
}

/**
 * `cksum 0x1234 (correct)` or `cksum 0x1234 (incorrect -> 0x5678)` when the whole segment was
 * captured, as tcpdump -v checks it; undefined (nothing printed, as tcpdump) when it was not.
 */
function tcpChecksumText(frame: Uint8Array, l4: number, tcpLen: number, pseudo: Uint8Array): string | undefined {
  if (tcpLen < 20 || l4 + tcpLen > frame.length) return undefined;
  const segment = frame.subarray(l4, l4 + tcpLen);
  const field = u16(segment, 16);
  const sum = internetChecksum([pseudo, segment]);
  return `cksum 0x${hex4(field)} ${sum === 0 ? '(correct)' : `(incorrect -> 0x${hex4(checksumShouldBe(field, sum))})`}`;
}

/** ` [RST data]` (tcpdump -v prints a RST's payload as text). */
function rstDataText(f: Fields, frame: Uint8Array, dataAt: number): string {
  if (!(f.flagBits & 0x04) || f.payloadLen === 0 || dataAt > frame.length) return '';
  const whole = dataAt + f.payloadLen <= frame.length;
  const shown = Math.min(f.payloadLen, MAX_RST_DATA);
  let s = `${whole ? ' [RST' : ' [!RST'}${f.payloadLen > MAX_RST_DATA ? '+' : ''} `;
  for (let i = 0; i < shown && dataAt + i < frame.length; i++) s += rstChar(frame[dataAt + i]!);
  return `${s}]`;
}

function formatIpv4(e: PacketEvent, f: Fields, frame: Uint8Array | undefined, level: Verbosity): string {
  const l3 = f.ipOffset;
  const seqAlways = level > 1;
  if (!frame || frame.length < l3 + 20) {
    return `IP (ttl ${f.ttl}, proto TCP (6), length ${f.ipLen})\n    ${formatPacketBody(e, { seqAlways }).slice(3)}`;
  }
  const ip = frame.subarray(l3);
  const hlen = (ip[0]! & 0x0f) * 4;
  const tos = ip[1]!;
  const off = u16(ip, 6);
  const ttl = ip[8]!;
  // Bytes beyond the IP datagram (Ethernet padding) are not part of it.
  const datagram = frame.subarray(0, Math.min(frame.length, l3 + f.ipLen));
  let s = 'IP ';
  const wire = f.frameLen - l3;
  if (wire < f.ipLen) s += `truncated-ip - ${f.ipLen - wire} bytes missing! `;
  s += `(tos 0x${tos.toString(16)}${['', ',ECT(1)', ',ECT(0)', ',CE'][tos & 3]}`;
  if (ttl >= 1) s += `, ttl ${ttl}`;
  const flags = [off & IP_MF ? '+' : '', off & IP_DF ? 'DF' : '', off & IP_RES ? 'rsvd' : ''].filter(Boolean).join(', ') || 'none';
  s += `, id ${u16(ip, 4)}, offset ${(off & IP_OFFMASK) * 8}, flags [${flags}], proto TCP (6), length ${u16(ip, 2)}`;
  const options = hlen > 20 && datagram.length >= l3 + hlen ? datagram.subarray(l3 + 20, l3 + hlen) : undefined;
  if (options) s += `, options (${ipOptionsText(options)})`;
  if (datagram.length >= l3 + hlen) {
    const sum = internetChecksum([datagram.subarray(l3, l3 + hlen)]);
    if (sum !== 0) {
      const field = u16(ip, 10);
      s += `, bad cksum ${field.toString(16)} (->${checksumShouldBe(field, sum).toString(16)})!`;
    }
  }
  const l4 = l3 + hlen;
  const tcpLen = f.ipLen - hlen;
  let cksum: string | undefined;
  if (!(off & (IP_MF | IP_OFFMASK))) {
    const pseudo = new Uint8Array(12);
    pseudo.set(ip.subarray(12, 16), 0);
    pseudo.set((options && routeDestination(options)) ?? ip.subarray(16, 20), 4);
    pseudo[9] = IPPROTO_TCP;
    pseudo[10] = tcpLen >> 8;
    pseudo[11] = tcpLen & 0xff;
    cksum = tcpChecksumText(datagram, l4, tcpLen, pseudo);
  }
  const tcpOptions = optionsFromFrame(f, datagram, l4);
  const body = formatPacketBody(e, { ...(cksum ? { cksum } : {}), ...(tcpOptions ? { options: tcpOptions.text, endsAtOptions: tcpOptions.bad } : {}), seqAlways }).slice(3);
  return `${s})\n    ${body}${tcpOptions?.bad ? '' : rstDataText(f, datagram, l4 + f.headerLen)}`;
}

function formatIpv6(e: PacketEvent, f: Fields, frame: Uint8Array | undefined, level: Verbosity): string {
  const l3 = f.ipOffset;
  const seqAlways = level > 1;
  const payloadLength = f.ipLen - 40;
  if (!frame || frame.length < l3 + 40) {
    return `IP6 (hlim ${f.ttl}, next-header TCP (6) payload length: ${payloadLength}) ${formatPacketBody(e, { seqAlways }).slice(4)}`;
  }
  const ip = frame.subarray(l3);
  const word = u32(ip, 0);
  const tclass = (word >>> 20) & 0xff;
  const flowlabel = word & 0xfffff;
  const first = ip[6]!;
  let s = 'IP6 (';
  if (tclass) s += `class 0x${tclass.toString(16).padStart(2, '0')}, `;
  if (flowlabel) s += `flowlabel 0x${flowlabel.toString(16).padStart(5, '0')}, `;
  s += `hlim ${ip[7]}, next-header ${IP6_NEXT_NAMES.get(first) ?? 'unknown'} (${first}) payload length: ${payloadLength}) `;
  // Walk the extension headers (as the kernel parser does) to the TCP header. A fragment
  // or routing header leaves the checksum unchecked: tcpdump does not check fragments, and
  // a routing header changes the destination the checksum covers.
  const datagram = frame.subarray(0, Math.min(frame.length, l3 + f.ipLen));
  let next = first;
  let l4 = l3 + 40;
  let checkable = true;
  for (let i = 0; i < 4 && next !== IPPROTO_TCP && l4 + 8 <= datagram.length; i++) {
    if (next === 44 || next === 43) checkable = false;
    const len = next === 44 ? 8 : (datagram[l4 + 1]! + 1) * 8;
    next = datagram[l4]!;
    l4 += len;
  }
  let cksum: string | undefined;
  if (checkable && next === IPPROTO_TCP) {
    const tcpLen = f.ipLen - (l4 - l3);
    const pseudo = new Uint8Array(40);
    pseudo.set(ip.subarray(8, 40), 0);
    pseudo[32] = tcpLen >>> 24;
    pseudo[33] = (tcpLen >>> 16) & 0xff;
    pseudo[34] = (tcpLen >>> 8) & 0xff;
    pseudo[35] = tcpLen & 0xff;
    pseudo[39] = IPPROTO_TCP;
    cksum = tcpChecksumText(datagram, l4, tcpLen, pseudo);
  }
  const options = next === IPPROTO_TCP ? optionsFromFrame(f, datagram, l4) : undefined;
  const body = formatPacketBody(e, { ...(cksum ? { cksum } : {}), ...(options ? { options: options.text, endsAtOptions: options.bad } : {}), seqAlways }).slice(4);
  return `${s}${body}${next === IPPROTO_TCP && !options?.bad ? rstDataText(f, datagram, l4 + f.headerLen) : ''}`;
}

/**
 * A packet as tcpdump -v (level 1) or -vv (level 2) prints it, without time and interface:
 * IPv4 `IP (tos 0x0, ttl 64, id 1, offset 0, flags [DF], proto TCP (6), length 60)` then the
 * TCP part indented on the next line with `cksum 0x... (correct)`; IPv6 on one line
 * `IP6 (flowlabel 0x..., hlim 64, next-header TCP (6) payload length: 40) ...`. Read from
 * the event's frame bytes (capture them with a snaplen): the TCP checksum needs the whole
 * segment, so a segment whose payload was not captured gets no verdict, as in tcpdump.
 */
export function formatPacketVerbose(e: PacketEvent, level: Verbosity = 1): string {
  const f = fieldsOf(e);
  const frame = e.frame;
  return f.ipv4 ? formatIpv4(e, f, frame, level) : formatIpv6(e, f, frame, level);
}
