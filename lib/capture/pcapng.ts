// SPDX-License-Identifier: MIT
// Packet events into a pcapng file without JavaScript per packet: the addon encodes the
// enhanced packet blocks straight from the ring into the writer's buffer
// (native/capture.cc, native/pcapng.cc). Done per packet in JavaScript (field reads, a view, a copy call)
// plus the JIT compiling that loop when traffic starts, a capture cost several times
// tcpdump's CPU (bench/capture).
import type { NativeRingReader } from '../bpf/native';
import { lentBytes } from '../bpf/batch';
import type { RecordBatch } from '../bpf/batch';
import type { PcapngWriter } from '../pcapng';
import { MAX_CAPTURE, PacketStream } from '../probes/packets';
import { captureAddon } from './native';

/** The largest enhanced packet block a packet event can become. */
const MAX_BLOCK = 32 + MAX_CAPTURE + 3;
/** The capture thread's write buffer: written out at every wake-up, and whenever it fills. */
const CAPTURE_BUFFER_BYTES = 1 << 20;

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
    this.layout = Uint32Array.of(l.size, l.tsNs, l.ifindex, l.frameLen, l.capKind, l.capLen, writer.resolution === 'us' ? 1 : 0);
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
      const n = captureAddon().ringConsumePcapng(ring, buffer, at, remaining, this.layout, this.clockOffsetNs, this.ifindexes, this.snaplens, this.positions);
      this.writer.commit(this.positions[1]!, n);
      return n;
    };
    for await (const n of this.probe.consumeWith(consume)) {
      remaining -= n;
      yield n;
      if (remaining <= 0) break;
    }
  }

  /**
   * As run(), but a native thread writes the blocks to the file, sleeping until the kernel
   * wakes it (the probe's wakeupBytes wait) or the probe's latencyMs passes, as tcpdump -w
   * does: no JavaScript runs while packets arrive, the cheapest way to a file. Resolves
   * with the packets written when the probe's signal aborts (after writing what was waiting),
   * the probe closes, or `maxPackets` are written; rejects, with what was written kept and
   * counted, if writing fails; the probe's stats().received counts them once it has ended
   * (its lost counter stays live). Closes the probe, not the writer. A writer without a file
   * (fd -1) is served by run().
   *
   * @example
   * const stop = new AbortController();
   * const probe = packets({ interfaces: ['lo'], snaplen: 96, latencyMs: 1000, signal: stop.signal });
   * const writer = PcapngWriter.create('lo.pcapng', { interfaces: [{ name: 'lo', snaplen: 96 }] });
   * process.once('SIGINT', () => stop.abort());
   * console.error(`${await new PacketPcapngEncoder(probe, writer).capture()} packets`);
   * writer.close();
   */
  async capture(maxPackets = Infinity): Promise<number> {
    const fd = this.writer.lendFd();
    if (fd === undefined) {
      let written = 0;
      for await (const n of this.run(maxPackets)) written += n;
      return written;
    }
    return this.probe.consumeOnThread((ring, wakeupMs, done) => {
      captureAddon().ringCapturePcapng(ring, fd, maxPackets, this.layout, this.clockOffsetNs, this.ifindexes, this.snaplens, wakeupMs, CAPTURE_BUFFER_BYTES, (error, packets, bytes) => {
        this.writer.appended(bytes, packets);
        done(error, packets, bytes);
      });
    });
  }

  /** Writes the packets of a batch from rawBatches() (at most `maxPackets`); returns how many. */
  writeBatch(batch: RecordBatch, maxPackets = Infinity): number {
    const encode = captureAddon().encodePcapng;
    // The native encoder only reads: it may read a ring buffer batch in place.
    const bytes = lentBytes(batch);
    let written = 0;
    let pos = 0;
    while (pos < bytes.length && written < maxPackets) {
      const { buffer, at } = this.writer.reserve(MAX_BLOCK);
      const n = encode(bytes, pos, buffer, at, maxPackets - written, this.layout, this.clockOffsetNs, this.ifindexes, this.snaplens, this.positions);
      this.writer.commit(this.positions[1]!, n);
      written += n;
      if (this.positions[0]! === pos) break; // only when nothing is left: a block always fits after reserve()
      pos = this.positions[0]!;
    }
    return written;
  }
}
