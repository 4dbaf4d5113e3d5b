// SPDX-License-Identifier: MIT
// The public packet event: a lazy view over struct packet_event (lib/generated/packets.ts)
// whose fields follow the other events' convention, decoded only when read.
import { VIEW_DATA, VIEW_OFFSET } from '../bpf/btf/codec';
import type { ViewClass } from '../bpf/btf/codec';
import { tcpFlags } from '../bpf/packet';
import type { TcpFlags } from '../bpf/packet';
import { formatAddress } from '../net/addr';
import type { PacketEvent as RawPacketEvent } from '../generated/packets';
import { familyName } from './tcp_common';
import type { PacketHook } from './packets-options';

/** The TCP options of a segment, decoded (as tcpFrame() takes them, plus what was seen). */
export interface TcpOptions {
  /** Option kinds in wire order (at most 16). */
  order: TcpOptionKind[];
  mss?: number;
  wscale?: number;
  sackPermitted?: boolean;
  /** [TSval, TSecr]. */
  timestamps?: [number, number];
  /** SACK blocks in the segment. */
  sackBlocks?: number;
  /** An option's length was wrong: the kernel stopped parsing options there. */
  malformed?: boolean;
}

export type TcpOptionKind = 'eol' | 'nop' | 'mss' | 'wscale' | 'sackPermitted' | 'sack' | 'timestamps' | 'unknown';

/**
 * One incoming TCP segment, named like the other events (camelCase, string addresses with
 * the raw bytes beside them, flags and options decoded). Built on struct packet_event
 * (bpf/packets.bpf.c, lib/generated/packets.ts).
 */
export interface PacketEvent extends Pick<RawPacketEvent, 'ifindex' | 'seq' | 'ack' | 'sport' | 'dport' | 'window' | 'ttl'> {
  /** Wall-clock time of capture (ms resolution; epochNs has the ns). */
  time: Date;
  /** Wall-clock ns since the epoch of capture. */
  epochNs: bigint;
  /** Kernel time of capture, CLOCK_MONOTONIC ns (bpf_ktime_get_ns). */
  tsNs: bigint;
  /** Interface name (resolved once per interface). */
  ifname: string;
  /** Where it was seen. */
  hook: PacketHook;
  family: 'ipv4' | 'ipv6';
  /** Source address as text (`10.0.0.1`, `fd00::1`). */
  saddr: string;
  daddr: string;
  /** 16 bytes; IPv4 in the first 4. */
  saddrBytes: Uint8Array;
  daddrBytes: Uint8Array;
  flags: TcpFlags;
  /** The TCP flags byte (TCP_FLAGS: FIN 0x01, SYN 0x02, RST 0x04, PSH 0x08, ACK 0x10, ...). */
  flagBits: number;
  /** TCP header length in bytes, options included. */
  headerLen: number;
  /** Frame length as received, link header included. */
  frameLen: number;
  /** IP datagram length (header included). */
  ipLen: number;
  /** TCP payload length. */
  payloadLen: number;
  options: TcpOptions;
  /** First snaplen bytes of the frame, when snaplen was set. */
  frame?: Uint8Array;
  /** Offset of the IP header in `frame`. */
  ipOffset: number;
  /** First payloadBytes bytes of the TCP payload, when asked (or from the frame). */
  payload?: Uint8Array;
}

/**
 * A PacketEvent as packets() delivers it: a lazy view over the bytes of the read that
 * brought it. Nothing is decoded until read, and each read decodes again (keep what you
 * read twice in a variable); addresses become strings only when `saddr`/`daddr` are read.
 * The view keeps that read's bytes alive (at most the reader's batch size); toJSON()
 * gives a plain object of every field.
 */
export interface PacketView extends PacketEvent {
  toJSON(): PacketEvent;
}

/** Names of struct packet_event the public event gives another meaning (read through rawGetter). */
type Renamed = 'saddr' | 'daddr' | 'flags' | 'family' | 'hook';

const CAP_FRAME = 1;
const HOOK_XDP = 1;
/** Option kinds by the kernel's nibble code (bpf/packets.bpf.c TCP_OK_*); 15: unknown. */
const OPTION_KINDS: readonly TcpOptionKind[] = ['eol', 'nop', 'mss', 'wscale', 'sackPermitted', 'sack', 'timestamps', 'eol'];
/** opt_present bits (TCP_OPT_HAS_*). */
const OPT_MSS = 0x01, OPT_WSCALE = 0x02, OPT_SACK_OK = 0x04, OPT_TIMESTAMPS = 0x08, OPT_SACK = 0x10, OPT_BAD = 0x80;

function decodeOptions(r: RawPacketEvent): TcpOptions {
  const order: TcpOptionKind[] = [];
  for (let i = 0; i < 16; i++) {
    const code = i < 8 ? (r.opt_kinds_lo >>> (i * 4)) & 0xf : (r.opt_kinds_hi >>> ((i - 8) * 4)) & 0xf;
    if (code === 0) break;
    order.push(code === 15 ? 'unknown' : OPTION_KINDS[code] ?? 'unknown');
  }
  const present = r.opt_present;
  const out: TcpOptions = { order };
  if (present & OPT_MSS) out.mss = r.mss;
  if (present & OPT_WSCALE) out.wscale = r.wscale;
  if (present & OPT_SACK_OK) out.sackPermitted = true;
  if (present & OPT_TIMESTAMPS) out.timestamps = [r.ts_val, r.ts_ecr];
  if (present & OPT_SACK) out.sackBlocks = r.sack_blocks;
  if (present & OPT_BAD) out.malformed = true;
  return out;
}

function rawGetter<K extends keyof RawPacketEvent>(base: ViewClass<RawPacketEvent>, name: K): (this: unknown) => RawPacketEvent[K] {
  const get = Object.getOwnPropertyDescriptor(base.prototype, name)?.get;
  if (!get) throw new Error(`struct packet_event has no field '${name}'`);
  return get as (this: unknown) => RawPacketEvent[K];
}

const PACKET_EVENT_KEYS = [
  'time', 'epochNs', 'tsNs', 'ifindex', 'ifname', 'hook', 'family', 'saddr', 'sport', 'daddr', 'dport', 'flags', 'flagBits',
  'seq', 'ack', 'window', 'ttl', 'headerLen', 'frameLen', 'ipLen', 'payloadLen', 'options', 'ipOffset', 'saddrBytes', 'daddrBytes',
] as const satisfies readonly (keyof PacketEvent)[];

/**
 * The view class of a packets object's struct packet_event with the public fields, each a
 * getter over the struct's fields. `names` gives interface names, `clockOffsetNs` the
 * monotonic-to-wall-clock offset of the stream.
 */
export function packetViewClass(base: ViewClass<RawPacketEvent>, names: ReadonlyMap<number, string>, clockOffsetNs: bigint): new (view: DataView, offset: number) => PacketView {
  const headerSize = base.size;
  const raw = {
    saddr: rawGetter(base, 'saddr'), daddr: rawGetter(base, 'daddr'), flags: rawGetter(base, 'flags'),
    family: rawGetter(base, 'family'), hook: rawGetter(base, 'hook'),
  };
  const Base = base as unknown as ViewClass<Omit<RawPacketEvent, Renamed>>;
  class View extends Base implements PacketView {
    get tsNs(): bigint { return this.ts_ns; }
    get epochNs(): bigint { return this.tsNs + clockOffsetNs; }
    get time(): Date { return new Date(Number(this.epochNs / 1_000_000n)); }
    get ifname(): string {
      const index = this.ifindex;
      return names.get(index) ?? String(index);
    }
    get hook(): PacketHook { return raw.hook.call(this) === HOOK_XDP ? 'xdp' : 'tc'; }
    get family(): 'ipv4' | 'ipv6' { return familyName(raw.family.call(this)); }
    get saddrBytes(): Uint8Array { return raw.saddr.call(this); }
    get daddrBytes(): Uint8Array { return raw.daddr.call(this); }
    get saddr(): string { return formatAddress(raw.saddr.call(this), raw.family.call(this)); }
    get daddr(): string { return formatAddress(raw.daddr.call(this), raw.family.call(this)); }
    get flagBits(): number { return raw.flags.call(this); }
    get flags(): TcpFlags { return tcpFlags(raw.flags.call(this)); }
    get headerLen(): number { return this.doff; }
    get frameLen(): number { return this.frame_len; }
    get ipLen(): number { return this.ip_len; }
    get payloadLen(): number { return this.payload_len; }
    get ipOffset(): number { return this.l3_off; }
    get options(): TcpOptions { return decodeOptions(this as unknown as RawPacketEvent); }

    /** A copy of the captured bytes (frame or payload, per cap_kind), made when read. */
    private captured(): Uint8Array {
      const dv = this[VIEW_DATA];
      const start = dv.byteOffset + this[VIEW_OFFSET] + headerSize;
      return new Uint8Array(dv.buffer.slice(start, start + this.cap_len));
    }

    get frame(): Uint8Array | undefined {
      return this.cap_len > 0 && this.cap_kind === CAP_FRAME ? this.captured() : undefined;
    }

    get payload(): Uint8Array | undefined {
      if (this.cap_len === 0) return undefined;
      const bytes = this.captured();
      if (this.cap_kind !== CAP_FRAME) return bytes;
      const start = this.l3_off + (this.ip_len - this.payload_len);
      return start < bytes.length ? bytes.subarray(start, Math.min(bytes.length, start + this.payload_len)) : undefined;
    }

    override toJSON(): PacketEvent & Record<string, unknown> {
      const out = {} as Record<string, unknown>;
      for (const key of PACKET_EVENT_KEYS) out[key] = this[key];
      const frame = this.frame;
      const payload = this.payload;
      if (frame) out['frame'] = frame;
      if (payload) out['payload'] = payload;
      return out as PacketEvent & Record<string, unknown>;
    }
  }
  return View;
}

