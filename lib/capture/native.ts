// SPDX-License-Identifier: MIT
// The addon's capture functions (native/pcapng.cc, native/capture.cc): packet events to
// pcapng enhanced packet blocks, from a copied batch or straight from a packets ring through
// the ring reader's native consumer interface (native/ringbuf.h).
import { native } from '../bpf/native';
import type { NativeRingReader } from '../bpf/native';
import type { NativeThreadDone } from '../bpf/ringbuf';

export interface CaptureAddon {
  /** Packet events of a copied ring batch as pcapng blocks; positions receives [srcEnd, outEnd]. */
  encodePcapng(src: Uint8Array, srcStart: number, out: Uint8Array, outStart: number, maxPackets: number, layout: Uint32Array, clockOffsetNs: bigint, ifindexes: Uint32Array, snaplens: Uint32Array, positions: Float64Array): number;
  /** As encodePcapng, straight from the ring (releasing what it encoded); positions receives [ring bytes, outEnd]. */
  ringConsumePcapng(ring: NativeRingReader, out: Uint8Array, outStart: number, maxPackets: number, layout: Uint32Array, clockOffsetNs: bigint, ifindexes: Uint32Array, snaplens: Uint32Array, positions: Float64Array): number;
  /**
   * Packet events as pcapng blocks written to a dup of `fd` by a thread holding the ring
   * until its stopThread(), close(), maxPackets or a write error; then onDone (error null on
   * success) with the packets and bytes written.
   */
  ringCapturePcapng(ring: NativeRingReader, fd: number, maxPackets: number, layout: Uint32Array, clockOffsetNs: bigint, ifindexes: Uint32Array, snaplens: Uint32Array,
    latencyMs: number, bufferBytes: number, onDone: NativeThreadDone): void;
}

/** The addon's capture functions. */
export function captureAddon(): CaptureAddon {
  return native() as unknown as CaptureAddon;
}
