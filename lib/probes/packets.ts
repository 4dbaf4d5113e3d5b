// SPDX-License-Identifier: MIT
// The packets probe: every incoming TCP segment on chosen interfaces, at tc ingress
// (default: sees loopback and veth after GRO) or XDP, filtered and sampled in the kernel
// (bpf/packets.bpf.c). One ring record per packet: a fixed header decoded by the BTF
// decoder, optionally followed by frame (snaplen) or payload bytes.
import type { RecordBatch } from '../bpf/batch';
import type { NativeRingReader } from '../bpf/native';
import { copyView } from '../bpf/ringbuf';
import type { RecordReader, ReaderOptions, ReaderStats } from '../bpf/ringbuf';
import { viewDecoderFor } from '../bpf/btf/codec';
import type { BpfObject } from '../bpf/object';
import { compileFilter, PacketFilter } from '../filter/compile';
import type { PacketEvent as RawPacketEvent } from '../generated/packets';
import { wallClockOffsetNs } from '../util/clock';
import { ProbeStream, wakeupBytesFor } from './stream';
import { MAX_CAPTURE, NormalizedOptions, PacketsOptions, intOption, normalize } from './packets-options';
import { FEATURE_EVENTS, FEATURE_SYNS, PacketCounters, PacketProgram } from './packets-program';
import { PacketView, packetViewClass } from './packets-event';

export type { PacketHook, PacketsOptions } from './packets-options';
export { MAX_CAPTURE } from './packets-options';
export type { PacketEvent, PacketView, TcpOptionKind, TcpOptions } from './packets-event';
export { PacketProgram, openPacketProgram, openPacketCounters } from './packets-program';
export type { PacketCounters, InterfaceCounts } from './packets-program';
export { TimeFormatter, formatPacket, formatPacketBody, packetToJson, tcpOptions } from './packets-format';
export type { VerboseTcpText } from './packets-format';

/** Records delivered and lost (ring full), and matching packets sampled out (1-in-N sampling or the events-per-second cap). */
export interface PacketStreamStats extends ReaderStats {
  sampled: number;
}

/** Offsets of the header fields the raw (no-decode) path reads, from the object's BTF. */
export interface RecordLayout {
  size: number;
  tsNs: number;
  ifindex: number;
  frameLen: number;
  capLen: number;
  capKind: number;
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
  return { size: t.size, tsNs: at('ts_ns'), ifindex: at('ifindex'), frameLen: at('frame_len'), capLen: at('cap_len'), capKind: at('cap_kind') };
}

/**
 * A running packets probe: async iterable of PacketEvent, plus live reconfiguration,
 * kernel counters, and a raw batch path for writers that need no decoding.
 */
export class PacketStream extends ProbeStream<unknown, PacketView> {
  readonly program: PacketProgram;
  /** Where fields sit in a raw record (for rawBatches()). */
  readonly layout: RecordLayout;
  private readonly ring: RecordReader<RawPacketEvent>;
  private readonly View: new (view: DataView, offset: number) => PacketView;
  readonly clockOffsetNs: bigint;
  private finalStats: PacketStreamStats | undefined;
  private finalCounters: PacketCounters | undefined;

  /** @internal */
  constructor(program: PacketProgram, reader: RecordReader<RawPacketEvent>) {
    super(program.object, program.links, reader, (e) => e as unknown as PacketView);
    this.program = program;
    this.ring = reader;
    this.clockOffsetNs = wallClockOffsetNs();
    this.View = packetViewClass(viewDecoderFor<RawPacketEvent>(program.object.btf!, 'packet_event').View, program.interfaces, this.clockOffsetNs);
    this.layout = recordLayout(program.object);
  }

  /** Interface names by index. */
  get interfaces(): ReadonlyMap<number, string> {
    return this.program.interfaces;
  }

  /**
   * Events, one array per kernel read: lazy views (PacketView) over a copy of the read, so
   * an event costs one small object until its fields are read.
   */
  override batches(): AsyncIterableIterator<PacketView[]> {
    // Straight over the ring's reading loop, not through rawBatches(): each generator layer
    // is another promise hop on every wake-up, which is what a 10 ms reader pays for. A
    // refused second consumer throws before the loop starts, so onEnd does not close the
    // probe under the first.
    return this.ring.mapBatches(
      'batches()',
      (batch) => {
        const out = this.decode(batch);
        return out.length ? out : undefined;
      },
      () => this.close(),
    );
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
  async consumeOnThread(start: Parameters<RecordReader<RawPacketEvent>['consumeOnThread']>[0]): Promise<number> {
    this.ring.requireFree('a native reader thread');
    try {
      return await this.ring.consumeOnThread(start);
    } finally {
      this.close();
    }
  }

  /** Wall-clock ns since the epoch of a CLOCK_MONOTONIC time (an event's tsNs; the event's own epochNs gives it). */
  wallClockNs(tsNs: bigint): bigint {
    return tsNs + this.clockOffsetNs;
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
    const reader = program.object.ringBuffer<RawPacketEvent>('packets', readerOptions);
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
    return new PacketStream(program, program.object.ringBuffer<RawPacketEvent>('packets', {}));
  } catch (e) {
    program.close();
    throw e;
  }
}
