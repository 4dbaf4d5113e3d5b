// SPDX-License-Identifier: MIT
// Packets of a capture file through the live packet program: each frame is run by
// BPF_PROG_TEST_RUN through the same compiled filter and parser that capture live, so a
// file (`tcpscope packets -r`) and an interface select and print exactly alike.
import type { PacketFilter } from '../filter/compile';
import { CaptureFrame, asEthernet } from '../pcapng/read';
import { PacketStream, PacketView, openDetachedPackets } from './packets';

export interface FilePacket {
  frame: CaptureFrame;
  /** The packet as the live probe reports it; tsNs is set so that epochNs and time give the file's time. */
  event: PacketView;
}

/** Bytes of a frame a test run takes (the skb's data must fit one page with its overhead). */
const TEST_RUN_MAX_DATA = 3000;
/** The largest wire_len a test run accepts (GSO_LEGACY_MAX_SIZE). */
const TEST_RUN_MAX_WIRE_LEN = 65536;
/** sizeof(struct __sk_buff) and offsetof(struct __sk_buff, wire_len), UAPI. */
const SKB_CTX_SIZE = 192;
const SKB_WIRE_LEN = 160;

/** The fields of a file's packet that come from its capture record rather than the test run. */
type FileFields = Pick<PacketView, 'tsNs' | 'frameLen' | 'ifname' | 'frame'>;

/**
 * `view` with `fields` in front: the view's fields are getters (it cannot be assigned), so
 * the file's values are own properties of an object whose prototype is the view. Every
 * other field still decodes lazily from the view's bytes, and toJSON() (which reads
 * through `this`) gives the file's values.
 */
function fileEvent(view: PacketView, fields: FileFields): PacketView {
  const own: PropertyDescriptorMap = {};
  for (const [key, value] of Object.entries(fields)) own[key] = { value, enumerable: true, writable: true, configurable: true };
  return Object.create(view, own) as PacketView;
}

export class PacketFileFilter implements Disposable {
  readonly stream: PacketStream;
  private readonly program;

  constructor(filter: PacketFilter | undefined, options: { snaplen?: number; payloadBytes?: number } = {}) {
    this.stream = openDetachedPackets({ ...(filter !== undefined ? { filter } : {}), ...options });
    this.program = this.stream.program.object.program('packets_tc');
  }

  /**
   * The event for `frame` when the filter selects it (TCP over IPv4/IPv6 only), else
   * undefined: the probe's read-only view, with the fields a test run cannot know (time,
   * frame length, interface, the frame's bytes) taken from the file's record.
   */
  run(frame: CaptureFrame): PacketView | undefined {
    const data = asEthernet(frame);
    if (!data || data.length < 14) return undefined;
    // A frame longer than a test run takes is cut (the headers the filter reads come
    // first); its length goes in the context as wire_len, which the filter's `len` reads.
    const wire = Math.min(Math.max(frame.origLen - frame.data.length + data.length, data.length), TEST_RUN_MAX_WIRE_LEN);
    const ctx = new Uint8Array(SKB_CTX_SIZE);
    new DataView(ctx.buffer).setUint32(SKB_WIRE_LEN, Math.max(wire, Math.min(data.length, TEST_RUN_MAX_DATA)), true);
    this.program.testRun({ data: data.length > TEST_RUN_MAX_DATA ? data.subarray(0, TEST_RUN_MAX_DATA) : data, ctx });
    const [view] = this.stream.readAvailable();
    if (!view) return undefined;
    return fileEvent(view, {
      tsNs: frame.tsNs - this.stream.clockOffsetNs,
      frameLen: wire,
      ifname: frame.ifname ?? '-',
      frame: view.frame ?? data,
    });
  }

  /** Every selected packet of `frames`, in file order. */
  *select(frames: Iterable<CaptureFrame>): IterableIterator<FilePacket> {
    for (const frame of frames) {
      const event = this.run(frame);
      if (event) yield { frame, event };
    }
  }

  close(): void {
    this.stream.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
