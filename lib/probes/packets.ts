// SPDX-License-Identifier: MIT
// The packets probe: every incoming TCP segment on chosen interfaces, at tc ingress
// (default: sees loopback and veth after GRO) or XDP, filtered and sampled in the kernel
// (bpf/packets.bpf.c). One ring record per packet: a fixed header decoded by the BTF
// decoder, optionally followed by frame (snaplen) or payload bytes.
import fs from 'node:fs';
import { BpfObject } from '../bpf/object';
import type { Link } from '../bpf/link';
import type { BpfMap } from '../bpf/map';
import type { RecordBatch } from '../bpf/batch';
import type { NativeRingReader } from '../bpf/native';
import { copyView } from '../bpf/ringbuf';
import type { RecordReader, ReaderOptions, ReaderStats } from '../bpf/ringbuf';
import { viewDecoderFor, VIEW_DATA, VIEW_OFFSET } from '../bpf/btf/codec';
import type { ViewClass } from '../bpf/btf/codec';
import type { XdpMode } from '../bpf/program';
import { InterfaceRef, interfaceIndex, interfaceName } from '../bpf/netif';
import { builtObjectPath } from '../bpf/paths';
import { compileFilter, CompiledFilter, FILTER_MAX_INSNS, PacketFilter } from '../filter/compile';
import { AF_INET, formatAddress } from '../net/addr';
import { DEFAULT_WAKEUP_BYTES, ProbeOptions, ProbeStream, wakeupBytesFor } from './stream';

export type PacketHook = 'tc' | 'xdp';

export interface PacketsOptions extends ProbeOptions {
  /** Interfaces to watch (names or indexes). At least one. */
  interfaces: InterfaceRef[];
  /** tc ingress (default) or XDP. */
  hook?: PacketHook;
  /** XDP attach mode (default auto: native where the driver has it). */
  xdpMode?: XdpMode;
  /** A tcpdump-like expression or a structured filter, applied in the kernel. */
  filter?: PacketFilter;
  /**
   * Copy the first N bytes of each frame (link header included), as for pcap; 0: none.
   * At XDP this needs Linux 5.18 (bpf_xdp_load_bytes): on older kernels XDP records come
   * without captured bytes (the tc hook captures on every kernel).
   */
  snaplen?: number;
  /** Copy the first N bytes of TCP payload (when snaplen is 0); 0 (default): none. Same XDP limit as snaplen. */
  payloadBytes?: number;
  /** Deliver 1 in N matching packets (default 1: all). */
  sampleRate?: number;
  /** Also count SYNs in the kernel (see synSnapshot / synCounts()). */
  countSyns?: boolean;
  /**
   * Most records per second the kernel sends; matching packets beyond it are counted as
   * sampled (stats().sampled) instead of sent. Default: no cap.
   */
  maxEventsPerSec?: number;
  /**
   * With countSyns: give a source (a /24 or /64 prefix) its own SYN counter only once a
   * count-min sketch has seen this many of its SYNs within one epoch (about 268 ms), so a
   * random-source flood does not fill the tables with one-SYN entries. 0 (default): every
   * source is counted.
   */
  synAdmission?: number;
  /** Also count SYN-ACKs and closed-port RSTs sent, at tc egress (counters().synacksOut, rstsOut). */
  egressCounters?: boolean;
}

/** Records delivered and lost (ring full), and matching packets sampled out (1-in-N sampling or the events-per-second cap). */
export interface PacketStreamStats extends ReaderStats {
  sampled: number;
}

/** One incoming TCP segment. Field names follow struct packet_event (bpf/packets.bpf.c). */
export interface PacketEvent {
  /** Kernel time of capture, CLOCK_MONOTONIC ns (see PacketStream.wallClockNs). */
  ts_ns: bigint;
  ifindex: number;
  /** Interface name (resolved once per interface). */
  ifname: string;
  /** Frame length as received, link header included. */
  frame_len: number;
  /** 16 bytes; IPv4 in the first 4 (see formatAddress). */
  saddr: Uint8Array;
  daddr: Uint8Array;
  seq: number;
  ack: number;
  /** AF_INET (2) or AF_INET6 (10). */
  family: number;
  sport: number;
  dport: number;
  /** Raw (unscaled) window. */
  window: number;
  /** IP datagram length (header included). */
  ip_len: number;
  /** TCP payload length. */
  payload_len: number;
  /** TTL or hop limit. */
  ttl: number;
  /** TCP flags byte (FIN 0x01, SYN 0x02, RST 0x04, PSH 0x08, ACK 0x10, URG 0x20, ECE 0x40, CWR 0x80). */
  flags: number;
  /** TCP header length in bytes. */
  doff: number;
  /** 1: XDP, 2: tc. */
  hook: number;
  /** MSS option (valid when opt_present & 1). */
  mss: number;
  /** Window scale option (valid when opt_present & 2). */
  wscale: number;
  /** Options seen: 1 MSS, 2 window scale, 4 SACK permitted, 8 timestamps, 16 SACK blocks, 0x80 malformed. */
  opt_present: number;
  ts_val: number;
  ts_ecr: number;
  /** Option kinds in wire order, a nibble each (see tcpOptions()). */
  opt_kinds_lo: number;
  opt_kinds_hi: number;
  cap_len: number;
  /** 0: nothing captured, 1: frame bytes, 2: payload bytes. */
  cap_kind: number;
  sack_blocks: number;
  l3_off: number;
  /** First snaplen bytes of the frame, when snaplen was set. */
  frame?: Uint8Array;
  /** First payloadBytes bytes of the TCP payload, when asked (or from the frame). */
  payload?: Uint8Array;
}

/**
 * A PacketEvent as packets() delivers it: a lazy view over the bytes of the read that
 * brought it. Nothing is decoded until read, and each read decodes again (keep what you
 * read twice in a variable); addresses become strings only when `src`/`dst` are read.
 * The view keeps that read's bytes alive (at most the reader's batch size); toJSON()
 * gives a plain object of the raw fields.
 */
export interface PacketView extends PacketEvent {
  /** Source address as text (`10.0.0.1`, `fd00::1`); the raw bytes are `saddr`. */
  readonly src: string;
  /** Destination address as text; the raw bytes are `daddr`. */
  readonly dst: string;
  toJSON(): Record<string, unknown>;
}

type PacketFields = Omit<PacketEvent, 'ifname' | 'frame' | 'payload'>;

/** The view class of a packets object's struct packet_event, with the fields packets() adds. */
function packetViewClass(base: ViewClass<PacketFields>, names: ReadonlyMap<number, string>): new (view: DataView, offset: number) => PacketView {
  const headerSize = base.size;
  class View extends base implements PacketView {
    get ifname(): string {
      const index = this.ifindex;
      return names.get(index) ?? String(index);
    }

    /** A copy of the captured bytes (frame or payload, per cap_kind), made when read. */
    private captured(): Uint8Array {
      const dv = this[VIEW_DATA];
      const start = dv.byteOffset + this[VIEW_OFFSET] + headerSize;
      return new Uint8Array(dv.buffer.slice(start, start + this.cap_len));
    }

    get frame(): Uint8Array | undefined {
      return this.cap_len > 0 && this.cap_kind === 1 ? this.captured() : undefined;
    }

    get payload(): Uint8Array | undefined {
      if (this.cap_len === 0) return undefined;
      const bytes = this.captured();
      if (this.cap_kind !== 1) return bytes;
      const start = this.l3_off + (this.ip_len - this.payload_len);
      return start < bytes.length ? bytes.subarray(start, Math.min(bytes.length, start + this.payload_len)) : undefined;
    }

    get src(): string {
      return formatAddress(this.saddr, this.family);
    }

    get dst(): string {
      return formatAddress(this.daddr, this.family);
    }

    override toJSON(): Record<string, unknown> {
      const out = super.toJSON();
      out['ifname'] = this.ifname;
      out['src'] = this.src;
      out['dst'] = this.dst;
      const frame = this.frame;
      const payload = this.payload;
      if (frame) out['frame'] = frame;
      if (payload) out['payload'] = payload;
      return out;
    }
  }
  return View;
}

export const OPT_MSS = 0x01;
export const OPT_WSCALE = 0x02;
export const OPT_SACK_OK = 0x04;
export const OPT_TIMESTAMPS = 0x08;
export const OPT_SACK = 0x10;

/** Kernel counters of the packet program, summed over CPUs. */
export interface PacketCounters {
  /** TCP segments parsed. */
  tcp: number;
  /** Passed the filter. */
  matched: number;
  /** Matched but skipped by sampling. */
  sampledOut: number;
  /** Records written to the ring. */
  emitted: number;
  syns: number;
  /** SYN-ACKs sent (with egressCounters). */
  synacksOut: number;
  /** RSTs sent answering a segment no socket took (with egressCounters). */
  rstsOut: number;
}

interface ConfigValue {
  features: number;
  sample_rate: number;
  snaplen: number;
  payload_bytes: number;
  filter_slot: number;
  events_per_slot: number;
  hh_min: number;
  _pad: number;
}

const FEATURE_EVENTS = 1;
const FEATURE_SYNS = 2;
export const MAX_CAPTURE = 65536;

interface NormalizedOptions {
  ifindexes: number[];
  ifnames: string[];
  hook: PacketHook;
  xdpMode: XdpMode;
  filter: CompiledFilter;
  snaplen: number;
  payloadBytes: number;
  sampleRate: number;
  eventsPerSlot: number;
  synAdmission: number;
  egressCounters: boolean;
}

/** Events per second into the kernel's budget per 100 ms slot (bpf/include/rate_cap.h); 0: no cap. */
function eventsPerSlot(rate: number | undefined): number {
  if (rate === undefined) return 0;
  if (typeof rate !== 'number' || !(rate >= 10) || !Number.isFinite(rate)) throw new TypeError(`maxEventsPerSec must be a number >= 10, got ${JSON.stringify(rate)}`);
  return Math.min(0xffffffff, Math.ceil(rate / 10));
}

function intOption(name: string, value: unknown, min: number, max: number, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new TypeError(`${name} must be an integer ${min}..${max}, got ${JSON.stringify(value)}`);
  }
  return value;
}

/** Ethernet-framed link types the parser handles: ARPHRD_ETHER and ARPHRD_LOOPBACK. */
function checkLinkType(name: string): void {
  let type: number;
  try {
    type = Number(fs.readFileSync(`/sys/class/net/${name}/type`, 'utf8').trim());
  } catch {
    return; // not visible in sysfs (other namespace): let attach decide
  }
  if (type !== 1 && type !== 772) {
    throw new TypeError(`interface '${name}' has link type ${type}, not Ethernet or loopback: tcpscope packets parses Ethernet frames only`);
  }
}

/** Validates everything before the object is opened, so bad options attach nothing. */
function normalize(options: Partial<PacketsOptions> & Pick<PacketsOptions, 'interfaces'>, what = 'packets'): NormalizedOptions {
  if (!options || typeof options !== 'object') throw new TypeError(`${what}(): options are required ({ interfaces: ['lo'] })`);
  const list = options.interfaces;
  if (!Array.isArray(list) || list.length === 0) throw new TypeError(`${what}(): interfaces must name at least one interface, e.g. { interfaces: ['lo'] }`);
  const ifindexes: number[] = [];
  const ifnames: string[] = [];
  for (const ref of list) {
    const index = interfaceIndex(ref);
    if (ifindexes.includes(index)) continue;
    const name = interfaceName(index) ?? String(ref);
    checkLinkType(name);
    ifindexes.push(index);
    ifnames.push(name);
  }
  const hook = options.hook ?? 'tc';
  if (hook !== 'tc' && hook !== 'xdp') throw new TypeError(`hook must be 'tc' or 'xdp', got '${String(hook)}'`);
  const xdpMode = options.xdpMode ?? 'auto';
  if (!['auto', 'skb', 'native', 'hw'].includes(xdpMode)) throw new TypeError(`xdpMode must be auto, skb, native or hw, got '${xdpMode}'`);
  return {
    ifindexes,
    ifnames,
    hook,
    xdpMode,
    filter: compileFilter(options.filter),
    snaplen: intOption('snaplen', options.snaplen, 0, 262144, 0),
    payloadBytes: intOption('payloadBytes', options.payloadBytes, 0, MAX_CAPTURE, 0),
    sampleRate: intOption('sampleRate', options.sampleRate, 1, 0x7fffffff, 1),
    eventsPerSlot: eventsPerSlot(options.maxEventsPerSec),
    synAdmission: intOption('synAdmission', options.synAdmission, 0, 0xffffffff, 0),
    egressCounters: options.egressCounters ?? false,
  };
}

function encodeFilter(filter: CompiledFilter): { len: number; insns: unknown[] } {
  if (filter.insns.length > FILTER_MAX_INSNS) throw new Error('internal: filter too long');
  return { len: filter.insns.length, insns: filter.insns };
}

/**
 * The loaded packet program with its maps: configuration that can change while it runs,
 * counters, SYN tables. Shared by packets() and synCounts().
 */
export class PacketProgram {
  readonly object: BpfObject;
  readonly links: Link[];
  readonly hook: PacketHook;
  /** Interface names by ifindex. */
  readonly interfaces: ReadonlyMap<number, string>;
  private readonly names: Map<number, string>;
  private readonly xdpMode: XdpMode;
  private config: ConfigValue;
  private filterText: string;
  private readonly configMap: BpfMap<number, ConfigValue>;
  private readonly filterMap: BpfMap<number, unknown>;

  /** @internal */
  constructor(object: BpfObject, links: Link[], opts: NormalizedOptions, config: ConfigValue) {
    this.object = object;
    this.links = links;
    this.hook = opts.hook;
    this.names = new Map(opts.ifindexes.map((index, i) => [index, opts.ifnames[i]!]));
    this.interfaces = this.names;
    this.xdpMode = opts.xdpMode;
    this.config = config;
    this.filterText = opts.filter.text;
    this.configMap = object.map<number, ConfigValue>('packets_config');
    this.filterMap = object.map<number, unknown>('packets_filter');
  }

  /** @internal opens, configures, attaches; nothing stays attached on failure. */
  static open(opts: NormalizedOptions, features: number, ringBytes?: number, wakeupBytes = DEFAULT_WAKEUP_BYTES): PacketProgram {
    const obj = BpfObject.open(builtObjectPath('packets'), {
      globals: { tcpscope_wakeup_bytes: wakeupBytes },
      skipPrograms: [opts.hook === 'tc' ? 'packets_xdp' : 'packets_tc', ...(opts.egressCounters ? [] : ['packets_tc_egress'])],
    });
    try {
      if (ringBytes !== undefined) obj.setMaxEntries('packets', ringBytes);
      else if (!(features & FEATURE_EVENTS)) obj.setMaxEntries('packets', 4096);
      // The sketches take 1 MiB each: only when sources are admitted through them.
      if (!(features & FEATURE_SYNS) || opts.synAdmission === 0) {
        obj.setMaxEntries('syn_sketch_addr', 1);
        obj.setMaxEntries('syn_sketch_prefix', 1);
      }
      obj.load();
      const config: ConfigValue = {
        features,
        sample_rate: opts.sampleRate,
        snaplen: Math.min(opts.snaplen, MAX_CAPTURE),
        payload_bytes: opts.payloadBytes,
        filter_slot: 0,
        events_per_slot: opts.eventsPerSlot,
        hh_min: opts.synAdmission,
        _pad: 0,
      };
      obj.map('packets_filter').set(0, encodeFilter(opts.filter));
      obj.map('packets_config').set(0, config);
      const links: Link[] = [];
      const prog = obj.program(opts.hook === 'tc' ? 'packets_tc' : 'packets_xdp');
      for (const ifindex of opts.ifindexes) {
        links.push(opts.hook === 'tc' ? prog.attachTc(ifindex) : prog.attachXdp(ifindex, { mode: opts.xdpMode }));
      }
      if (opts.egressCounters) {
        const egress = obj.program('packets_tc_egress');
        for (const ifindex of opts.ifindexes) links.push(egress.attachTc(ifindex, { direction: 'egress' }));
      }
      return new PacketProgram(obj, links, opts, config);
    } catch (e) {
      obj.close();
      throw e;
    }
  }

  /**
   * Attaches to one more interface while running (one created after the start, for
   * `-i any`); its packets join the same ring. Does nothing for one already attached.
   */
  addInterface(ifindex: number, name: string): boolean {
    if (this.names.has(ifindex)) return false;
    const prog = this.object.program(this.hook === 'tc' ? 'packets_tc' : 'packets_xdp');
    this.links.push(this.hook === 'tc' ? prog.attachTc(ifindex) : prog.attachXdp(ifindex, { mode: this.xdpMode }));
    this.names.set(ifindex, name);
    return true;
  }

  /** The filter now applied (its expression text). */
  get filter(): string {
    return this.filterText;
  }

  /**
   * Replaces the kernel filter while attached: the new program goes to the idle slot,
   * then one config write switches to it. Throws (changing nothing) when it does not compile.
   */
  setFilter(filter: PacketFilter | undefined): void {
    const compiled = compileFilter(filter);
    const slot = this.config.filter_slot ^ 1;
    this.filterMap.set(slot, encodeFilter(compiled));
    this.writeConfig({ filter_slot: slot });
    this.filterText = compiled.text;
  }

  /** Changes sampling (1 in N) while attached. */
  setSampleRate(rate: number): void {
    this.writeConfig({ sample_rate: intOption('sampleRate', rate, 1, 0x7fffffff, 1) });
  }

  /** Changes the kernel's cap on records per second while attached (undefined: no cap). */
  setMaxEventsPerSec(rate: number | undefined): void {
    this.writeConfig({ events_per_slot: eventsPerSlot(rate) });
  }

  /** Changes the SYN sketch's admission threshold while attached (see PacketsOptions.synAdmission; needs the sketch, i.e. a non-zero synAdmission at open). */
  setSynAdmission(min: number): void {
    this.writeConfig({ hh_min: intOption('synAdmission', min, this.config.hh_min === 0 ? 0 : 1, 0xffffffff, 0) });
  }

  /** Changes what bytes are captured while attached. */
  setCapture(capture: { snaplen?: number; payloadBytes?: number }): void {
    const snaplen = intOption('snaplen', capture.snaplen, 0, 262144, this.config.snaplen);
    const payload = intOption('payloadBytes', capture.payloadBytes, 0, MAX_CAPTURE, this.config.payload_bytes);
    this.writeConfig({ snaplen: Math.min(snaplen, MAX_CAPTURE), payload_bytes: payload });
  }

  get snaplen(): number {
    return this.config.snaplen;
  }

  private writeConfig(change: Partial<ConfigValue>): void {
    const next = { ...this.config, ...change };
    this.configMap.set(0, next);
    this.config = next;
  }

  /** Kernel counters summed over CPUs. */
  counters(): PacketCounters {
    const perCpu = this.object.map<number, Record<string, bigint>>('packets_stats').getPerCpu(0) ?? [];
    const sum = (k: string): number => perCpu.reduce((n, v) => n + Number(v[k] ?? 0n), 0);
    return {
      tcp: sum('tcp'), matched: sum('matched'), sampledOut: sum('sampled_out'), emitted: sum('emitted'), syns: sum('syns'),
      synacksOut: sum('synacks_out'), rstsOut: sum('rsts_out'),
    };
  }

  close(): void {
    this.object.close();
  }
}

/** Offsets of the header fields the raw (no-decode) path reads, from the object's BTF. */
export interface RecordLayout {
  size: number;
  ts_ns: number;
  ifindex: number;
  frame_len: number;
  cap_len: number;
  cap_kind: number;
}

function recordLayout(obj: BpfObject): RecordLayout {
  const btf = obj.btf!;
  const t = btf.resolve('struct packet_event');
  if (t.kind !== 'struct') throw new Error('struct packet_event missing from the packets object');
  const at = (name: string): number => {
    const m = t.members.find((mm) => mm.name === name);
    if (!m) throw new Error(`packet_event.${name} missing`);
    return m.bitOffset / 8;
  };
  return { size: t.size, ts_ns: at('ts_ns'), ifindex: at('ifindex'), frame_len: at('frame_len'), cap_len: at('cap_len'), cap_kind: at('cap_kind') };
}

/**
 * A running packets probe: async iterable of PacketEvent, plus live reconfiguration,
 * kernel counters, and a raw batch path for writers that need no decoding.
 */
export class PacketStream extends ProbeStream<PacketEvent, PacketView> {
  readonly program: PacketProgram;
  /** Where fields sit in a raw record (for rawBatches()). */
  readonly layout: RecordLayout;
  private readonly ring: RecordReader<PacketEvent>;
  private readonly View: new (view: DataView, offset: number) => PacketView;
  readonly clockOffsetNs: bigint;
  private finalStats: PacketStreamStats | undefined;
  private finalCounters: PacketCounters | undefined;

  /** @internal */
  constructor(program: PacketProgram, reader: RecordReader<PacketEvent>) {
    super(program.object, program.links, reader, (e) => e as PacketView);
    this.program = program;
    this.ring = reader;
    this.View = packetViewClass(viewDecoderFor<PacketFields>(program.object.btf!, 'packet_event').View, program.interfaces);
    this.layout = recordLayout(program.object);
    const wall = BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6));
    this.clockOffsetNs = wall - process.hrtime.bigint();
  }

  /** Interface names by index. */
  get interfaces(): ReadonlyMap<number, string> {
    return this.program.interfaces;
  }

  /**
   * Events, one array per kernel read: lazy views (PacketView) over a copy of the read, so
   * an event costs one small object until its fields are read.
   */
  override async *batches(): AsyncIterableIterator<PacketView[]> {
    // Straight over the ring's batches, not through rawBatches(): each generator layer is
    // another promise hop on every wake-up, which is what a 10 ms reader pays for.
    this.ring.requireFree('batches()');
    try {
      for await (const batch of this.ring.batches()) {
        const out = this.decode(batch);
        if (out.length) yield out;
      }
    } finally {
      this.close();
    }
  }

  /** Events waiting in the ring now, without sleeping (for a program run by testRun). */
  readAvailable(): PacketView[] {
    const batch = this.ring.readAvailable();
    return batch ? this.decode(batch) : [];
  }

  private decode(batch: RecordBatch): PacketView[] {
    const View = this.View;
    const view = copyView(batch);
    const n = batch.count;
    const offsets = batch.offsets;
    const out = new Array<PacketView>(n);
    for (let i = 0; i < n; i++) out[i] = new View(view, offsets[i]!);
    return out;
  }

  /**
   * Raw record batches (no decoding, no allocation per record): read fields at
   * `layout` offsets; captured bytes follow the header (layout.size). Valid until the
   * next iteration.
   */
  async *rawBatches(): AsyncIterableIterator<RecordBatch> {
    this.ring.requireFree('rawBatches()');
    try {
      yield* this.ring.batches();
    } finally {
      this.close();
    }
  }

  /**
   * @internal Drives a native consumer over the ring (RecordReader.consumeWith), as
   * PacketPcapngEncoder does; the probe closes when it ends.
   */
  async *consumeWith(consume: (ring: NativeRingReader) => number): AsyncIterableIterator<number> {
    this.ring.requireFree('a native consumer');
    try {
      yield* this.ring.consumeWith(consume);
    } finally {
      this.close();
    }
  }

  /**
   * @internal Hands the ring to a native thread (RecordReader.consumeOnThread), as
   * PacketPcapngEncoder.capture() does; the probe closes when it ends.
   */
  async consumeOnThread(start: Parameters<RecordReader<PacketEvent>['consumeOnThread']>[0]): Promise<number> {
    this.ring.requireFree('a native reader thread');
    try {
      return await this.ring.consumeOnThread(start);
    } finally {
      this.close();
    }
  }

  /** Wall-clock ns since the epoch of an event's ts_ns. */
  wallClockNs(ts_ns: bigint): bigint {
    return ts_ns + this.clockOffsetNs;
  }

  /** Epoch milliseconds (fractional) of an event. */
  timeOf(event: PacketEvent): number {
    return Number(event.ts_ns + this.clockOffsetNs) / 1e6;
  }

  setFilter(filter: PacketFilter | undefined): void {
    this.program.setFilter(filter);
  }

  setSampleRate(rate: number): void {
    this.program.setSampleRate(rate);
  }

  setCapture(capture: { snaplen?: number; payloadBytes?: number }): void {
    this.program.setCapture(capture);
  }

  /** Kernel counters; after close(), the last values read. */
  counters(): PacketCounters {
    return this.isClosed && this.finalCounters ? this.finalCounters : this.program.counters();
  }

  /** Events delivered, lost (ring full) and sampled out (in the kernel); after close(), the final values. */
  override stats(): PacketStreamStats {
    if (this.isClosed && this.finalStats) return this.finalStats;
    return { ...super.stats(), sampled: this.program.counters().sampledOut };
  }

  override close(): void {
    if (!this.isClosed) {
      try {
        this.finalCounters = this.program.counters();
        this.finalStats = { ...super.stats(), sampled: this.finalCounters.sampledOut };
      } catch { /* closing anyway */ }
    }
    super.close();
  }
}

/**
 * Watches incoming TCP segments. Every option is validated before anything is attached.
 *
 * @example
 * await using probe = packets({ interfaces: ['lo'], filter: 'dst port 8080 and syn' });
 * for await (const p of probe) console.log(formatPacket(p));
 */
export function packets(options: PacketsOptions): PacketStream {
  const opts = normalize(options);
  const ringBytes = options.ringBytes ?? (opts.snaplen || opts.payloadBytes ? 1 << 25 : undefined);
  const program = PacketProgram.open(opts, FEATURE_EVENTS | (options.countSyns ? FEATURE_SYNS : 0), ringBytes, wakeupBytesFor({ ...options, ringBytes }));
  try {
    const readerOptions: ReaderOptions = { wakeupMs: options.latencyMs ?? 10 };
    if (options.signal) readerOptions.signal = options.signal;
    const reader = program.object.ringBuffer<PacketEvent>('packets', readerOptions);
    return new PacketStream(program, reader);
  } catch (e) {
    program.close();
    throw e;
  }
}

/**
 * The packet program loaded and attached nowhere, with its event ring: `packets -r` runs
 * the frames of a file through it (BPF_PROG_TEST_RUN), so a file is filtered and decoded by
 * the very program that captures live.
 */
export function openDetachedPackets(options: { filter?: PacketFilter; snaplen?: number; payloadBytes?: number }): PacketStream {
  const opts: NormalizedOptions = {
    ifindexes: [], ifnames: [], hook: 'tc', xdpMode: 'auto',
    filter: compileFilter(options.filter),
    snaplen: intOption('snaplen', options.snaplen, 0, 262144, 0),
    payloadBytes: intOption('payloadBytes', options.payloadBytes, 0, MAX_CAPTURE, 0),
    sampleRate: 1,
    // A file is read whole: no events cap, no SYN sketch, no egress counters.
    eventsPerSlot: 0,
    synAdmission: 0,
    egressCounters: false,
  };
  const program = PacketProgram.open(opts, FEATURE_EVENTS, opts.snaplen || opts.payloadBytes ? 1 << 22 : 1 << 16);
  try {
    return new PacketStream(program, program.object.ringBuffer<PacketEvent>('packets', {}));
  } catch (e) {
    program.close();
    throw e;
  }
}

/** @internal for synCounts() */
export function openPacketProgram(options: Omit<PacketsOptions, 'snaplen' | 'payloadBytes' | 'sampleRate'>, what: string): PacketProgram {
  return PacketProgram.open(normalize(options, what), FEATURE_SYNS);
}

// ---- formatting ----

const OPTION_NAMES = ['', 'nop', 'mss', 'wscale', 'sackOK', 'sack', 'TS', 'eol'];

/** TCP options in wire order, as tcpdump prints them: `mss 1460`, `sackOK`, `TS val 1 ecr 0`, `nop`, `wscale 7`. */
export function tcpOptions(e: PacketEvent): string[] {
  const out: string[] = [];
  for (let i = 0; i < 16; i++) {
    const code = i < 8 ? (e.opt_kinds_lo >>> (i * 4)) & 0xf : (e.opt_kinds_hi >>> ((i - 8) * 4)) & 0xf;
    if (code === 0) break;
    switch (code) {
      case 2: out.push(`mss ${e.mss}`); break;
      case 3: out.push(`wscale ${e.wscale}`); break;
      case 5: out.push(`sack ${e.sack_blocks}`); break;
      case 6: out.push(`TS val ${e.ts_val} ecr ${e.ts_ecr}`); break;
      case 15: out.push('unknown'); break;
      default: out.push(OPTION_NAMES[code] ?? 'unknown');
    }
  }
  if (e.opt_present & 0x80) out.push('[bad opt]');
  return out;
}

/** tcpdump's flag letters: `S`, `S.`, `P.`, `F.`, `R`, ... ('.' is ACK). */
export function flagLetters(flags: number): string {
  let s = '';
  if (flags & 0x01) s += 'F';
  if (flags & 0x02) s += 'S';
  if (flags & 0x04) s += 'R';
  if (flags & 0x08) s += 'P';
  if (flags & 0x10) s += '.';
  if (flags & 0x20) s += 'U';
  if (flags & 0x40) s += 'E';
  if (flags & 0x80) s += 'W';
  return s || 'none';
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
export function formatPacketBody(e: PacketEvent): string {
  const v4 = e.family === AF_INET;
  let s = `${v4 ? 'IP' : 'IP6'} ${formatAddress(e.saddr, e.family)}.${e.sport} > ${formatAddress(e.daddr, e.family)}.${e.dport}: Flags [${flagLetters(e.flags)}]`;
  if (e.payload_len > 0 || (e.flags & 0x07) !== 0) {
    s += e.payload_len > 0 ? `, seq ${e.seq}:${(e.seq + e.payload_len) >>> 0}` : `, seq ${e.seq}`;
  }
  if (e.flags & 0x10) s += `, ack ${e.ack}`;
  s += `, win ${e.window}`;
  if (e.opt_kinds_lo !== 0) s += `, options [${tcpOptions(e).join(',')}]`;
  s += `, length ${e.payload_len}`;
  return s;
}

/** A tcpdump-like line; `time` is wall-clock epoch ns (default: ts_ns taken as is). */
export function formatPacket(e: PacketEvent, time?: bigint, formatter: TimeFormatter = new TimeFormatter()): string {
  return `${formatter.format(time ?? e.ts_ns)} ${e.ifname} In  ${formatPacketBody(e)}`;
}

/** A JSON-friendly view of an event (addresses as text, flags as letters, options parsed). */
export function packetToJson(e: PacketEvent, timeNs?: bigint): Record<string, unknown> {
  const out: Record<string, unknown> = {
    time: timeNs !== undefined ? Number(timeNs / 1000n) / 1e6 : undefined,
    ts_ns: e.ts_ns.toString(),
    ifname: e.ifname,
    ifindex: e.ifindex,
    hook: e.hook === 1 ? 'xdp' : 'tc',
    family: e.family === AF_INET ? 4 : 6,
    src: formatAddress(e.saddr, e.family),
    sport: e.sport,
    dst: formatAddress(e.daddr, e.family),
    dport: e.dport,
    flags: flagLetters(e.flags),
    seq: e.seq,
    ack: e.ack,
    window: e.window,
    ttl: e.ttl,
    ip_len: e.ip_len,
    header_len: e.doff,
    length: e.payload_len,
    frame_len: e.frame_len,
    options: {
      ...(e.opt_present & OPT_MSS ? { mss: e.mss } : {}),
      ...(e.opt_present & OPT_WSCALE ? { wscale: e.wscale } : {}),
      ...(e.opt_present & OPT_SACK_OK ? { sackOK: true } : {}),
      ...(e.opt_present & OPT_TIMESTAMPS ? { ts_val: e.ts_val, ts_ecr: e.ts_ecr } : {}),
      ...(e.opt_present & OPT_SACK ? { sack_blocks: e.sack_blocks } : {}),
    },
  };
  if (e.payload) out['payload'] = Buffer.from(e.payload).toString('hex');
  if (e.frame) out['frame'] = Buffer.from(e.frame).toString('hex');
  return out;
}

