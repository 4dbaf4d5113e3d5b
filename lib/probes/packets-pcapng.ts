// Packet events into a pcapng file without JavaScript per packet: the addon encodes the
// enhanced packet blocks straight from the ring into the writer's buffer
// (native/pcapng.cc). Done per packet in JavaScript (field reads, a view, a copy call)
// plus the JIT compiling that loop when traffic starts, a capture cost several times
// tcpdump's CPU (bench/capture).
import { native } from '../bpf/native';
import type { NativeRingReader } from '../bpf/native';
import type { RecordBatch } from '../bpf/batch';
import type { PcapngWriter } from '../pcapng';
import { MAX_CAPTURE, PacketStream } from './packets';

/** The largest enhanced packet block a packet event can become. */
const MAX_BLOCK = 32 + MAX_CAPTURE + 3;

/**
 * Writes a packets probe's events to a PcapngWriter whose interface i is the probe's i-th
 * interface (in `probe.interfaces` order), cut to each interface's snaplen.
 *
 * @example
 * const probe = packets({ interfaces: ['lo'], snaplen: 96 });
 * const writer = PcapngWriter.create('lo.pcapng', { interfaces: [{ name: 'lo', snaplen: 96 }] });
 * for await (const n of new PacketPcapngEncoder(probe, writer).run()) console.error(`${n} packets`);
 * writer.close();
 */
export class PacketPcapngEncoder {
  private readonly probe: PacketStream;
  private readonly writer: PcapngWriter;
  private readonly layout: Uint32Array;
  private readonly clockOffsetNs: bigint;
  private readonly ifindexes: Uint32Array;
  private readonly snaplens: Uint32Array;
  private readonly positions = new Float64Array(2);

  constructor(probe: PacketStream, writer: PcapngWriter) {
    const indexes = [...probe.interfaces.keys()];
    if (writer.interfaces.length !== indexes.length) {
      throw new RangeError(`pcapng: the writer has ${writer.interfaces.length} interfaces, the probe ${indexes.length}`);
    }
    const l = probe.layout;
    this.probe = probe;
    this.writer = writer;
    this.layout = Uint32Array.of(l.size, l.ts_ns, l.ifindex, l.frame_len, l.cap_kind, l.cap_len, writer.resolution === 'us' ? 1 : 0);
    this.clockOffsetNs = probe.clockOffsetNs;
    this.ifindexes = Uint32Array.from(indexes);
    this.snaplens = Uint32Array.from(writer.interfaces, (i) => i.snaplen ?? 0);
  }

  /**
   * Reads the probe until it stops (close, abort, or `maxPackets` written), writing every
   * packet; yields the packets written by each read. Closes the probe, not the writer.
   */
  async *run(maxPackets = Infinity): AsyncIterableIterator<number> {
    let remaining = maxPackets;
    const consume = (ring: NativeRingReader): number => {
      const { buffer, at } = this.writer.reserve(MAX_BLOCK);
      const n = ring.consumePcapng(buffer, at, remaining, this.layout, this.clockOffsetNs, this.ifindexes, this.snaplens, this.positions);
      this.writer.commit(this.positions[1]!, n);
      return n;
    };
    for await (const n of this.probe.consumeWith(consume)) {
      remaining -= n;
      yield n;
      if (remaining <= 0) break;
    }
  }

  /** Writes the packets of a batch from rawBatches() (at most `maxPackets`); returns how many. */
  writeBatch(batch: RecordBatch, maxPackets = Infinity): number {
    const encode = native().encodePcapng;
    let written = 0;
    let pos = 0;
    while (pos < batch.bytes.length && written < maxPackets) {
      const { buffer, at } = this.writer.reserve(MAX_BLOCK);
      const n = encode(batch.bytes, pos, buffer, at, maxPackets - written, this.layout, this.clockOffsetNs, this.ifindexes, this.snaplens, this.positions);
      this.writer.commit(this.positions[1]!, n);
      written += n;
      if (this.positions[0]! === pos) break; // only when nothing is left: a block always fits after reserve()
      pos = this.positions[0]!;
    }
    return written;
  }
}
