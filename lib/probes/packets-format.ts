// SPDX-License-Identifier: MIT
// tcpdump's text of a packet event, and the JSON of `tcpscope packets --json`.
import { flagLetters } from '../bpf/packet';
import type { PacketEvent, TcpOptionKind, TcpOptions } from './packets-event';

/** The tcpdump text of an option. */
function optionText(kind: TcpOptionKind, o: TcpOptions): string {
  switch (kind) {
    case 'mss': return `mss ${o.mss ?? 0}`;
    case 'wscale': return `wscale ${o.wscale ?? 0}`;
    case 'sackPermitted': return 'sackOK';
    case 'sack': return `sack ${o.sackBlocks ?? 0}`;
    case 'timestamps': return `TS val ${o.timestamps?.[0] ?? 0} ecr ${o.timestamps?.[1] ?? 0}`;
    default: return kind;
  }
}

/** TCP options in wire order, as tcpdump prints them: `mss 1460`, `sackOK`, `TS val 1 ecr 0`, `nop`, `wscale 7`. */
export function tcpOptions(e: Pick<PacketEvent, 'options'>): string[] {
  const o = e.options;
  const out = o.order.map((kind) => optionText(kind, o));
  if (o.malformed) out.push('[bad opt]');
  return out;
}

/** What goes inside tcpdump's `options [...]`, built in one pass ('' when there are none). */
function optionsText(o: TcpOptions): string {
  const order = o.order;
  let s = '';
  for (let i = 0; i < order.length; i++) s += i === 0 ? optionText(order[i]!, o) : `,${optionText(order[i]!, o)}`;
  if (o.malformed) s += s ? ',[bad opt]' : '[bad opt]';
  return s;
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

/** Formats wall-clock ns as local HH:MM:SS.uuuuuu, caching the second. */
export class TimeFormatter {
  private lastSecond = -1;
  private prefix = '';
  format(epochNs: bigint | number): string {
    const ns = typeof epochNs === 'bigint' ? epochNs : BigInt(Math.round(epochNs));
    const second = Number(ns / 1_000_000_000n);
    const micros = Number((ns % 1_000_000_000n) / 1000n);
    if (second !== this.lastSecond) {
      const d = new Date(second * 1000);
      this.prefix = `${pad(d.getHours(), 2)}:${pad(d.getMinutes(), 2)}:${pad(d.getSeconds(), 2)}.`;
      this.lastSecond = second;
    }
    return this.prefix + pad(micros, 6);
  }
}

/** The tcpdump-like body of a packet line (without time and interface). */
/** What tcpdump -v/-vv add to the TCP part of a line (see packets-verbose.ts). */
export interface VerboseTcpText {
  /** `cksum 0x1234 (correct)`, inserted after the flags. */
  cksum?: string;
  /** -vv: the sequence number on every segment, pure ACKs included. */
  seqAlways?: boolean;
  /** The TCP options as read from the captured header (what goes inside `options [...]`). */
  options?: string;
  /** The options ended in `[bad opt]`: tcpdump prints nothing after them. */
  endsAtOptions?: boolean;
}

/** The tcpdump-like body of a packet line (without time and interface). */
export function formatPacketBody(e: PacketEvent, verbose?: VerboseTcpText): string {
  const bits = e.flagBits;
  const payloadLen = e.payloadLen;
  let s = `${e.family === 'ipv4' ? 'IP' : 'IP6'} ${e.saddr}.${e.sport} > ${e.daddr}.${e.dport}: Flags [${flagLetters(bits)}]`;
  if (verbose?.cksum) s += `, ${verbose.cksum}`;
  if (payloadLen > 0 || (bits & 0x07) !== 0 || verbose?.seqAlways) {
    s += payloadLen > 0 ? `, seq ${e.seq}:${(e.seq + payloadLen) >>> 0}` : `, seq ${e.seq}`;
  }
  if (bits & 0x10) s += `, ack ${e.ack}`;
  s += `, win ${e.window}`;
  if (verbose?.options !== undefined) {
    s += `, options [${verbose.options}]`;
    if (verbose.endsAtOptions) return s;
  } else {
    const options = optionsText(e.options);
    if (options) s += `, options [${options}]`;
  }
  s += `, length ${payloadLen}`;
  return s;
}

/** A tcpdump-like line; `time` is wall-clock epoch ns (default: the event's epochNs). */
export function formatPacket(e: PacketEvent, time: bigint = e.epochNs, formatter: TimeFormatter = new TimeFormatter()): string {
  return `${formatter.format(time)} ${e.ifname} In  ${formatPacketBody(e)}`;
}

/**
 * A JSON-friendly object of an event (`tcpscope packets --json`): the event's fields, with
 * flags as tcpdump's letters, captured bytes as hex and the raw address bytes left out.
 */
export function packetToJson(e: PacketEvent): Record<string, unknown> {
  const out: Record<string, unknown> = {
    time: e.time,
    epochNs: e.epochNs.toString(),
    tsNs: e.tsNs.toString(),
    ifname: e.ifname,
    ifindex: e.ifindex,
    hook: e.hook,
    family: e.family,
    saddr: e.saddr,
    sport: e.sport,
    daddr: e.daddr,
    dport: e.dport,
    flags: flagLetters(e.flagBits),
    seq: e.seq,
    ack: e.ack,
    window: e.window,
    ttl: e.ttl,
    ipLen: e.ipLen,
    headerLen: e.headerLen,
    payloadLen: e.payloadLen,
    frameLen: e.frameLen,
    options: e.options,
  };
  const payload = e.payload;
  const frame = e.frame;
  if (payload) out['payload'] = Buffer.from(payload).toString('hex');
  if (frame) out['frame'] = Buffer.from(frame).toString('hex');
  return out;
}
