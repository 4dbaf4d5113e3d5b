// SPDX-License-Identifier: MIT
// A batch of ring/perf buffer records as copied by the addon: [u32 len][u32 aux][data],
// each record padded to 8 bytes. Reading it allocates nothing per record.

const BUSY_BIT = 0x80000000;
const DISCARD_BIT = 0x40000000;
const LENGTH_MASK = 0x3fffffff;

/**
 * Records of one read. Valid until the iterator that produced it is advanced: copy what
 * you keep (`record.slice()`).
 */
export class RecordBatch {
  /** The bytes as copied from the ring; records start at 8-byte aligned offsets. */
  readonly bytes: Uint8Array;
  readonly view: DataView;
  /** Number of records (discarded reservations excluded). */
  readonly count: number;
  /** Payload offset of record i within `bytes`. */
  readonly offsets: Uint32Array;
  /** Payload length of record i. */
  readonly lengths: Uint32Array;

  /**
   * @internal `indexed`: the records' count when the reader already filled the scratch
   * offsets and lengths while copying (the ring reader does).
   */
  constructor(bytes: Uint8Array, scratch: { offsets: Uint32Array; lengths: Uint32Array }, indexed?: number) {
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.offsets = scratch.offsets;
    this.lengths = scratch.lengths;
    if (indexed !== undefined) {
      this.count = indexed;
      return;
    }
    let count = 0;
    let offset = 0;
    const end = bytes.byteLength;
    const { offsets, lengths } = scratch;
    const view = this.view;
    while (offset + 8 <= end) {
      const header = view.getUint32(offset, true);
      const length = header & LENGTH_MASK;
      if ((header & (DISCARD_BIT | BUSY_BIT)) === 0) {
        offsets[count] = offset + 8;
        lengths[count] = length;
        count++;
      }
      offset += (length + 8 + 7) & ~7;
    }
    this.count = count;
  }

  /** Record i's payload as a view into the batch (no copy). */
  record(i: number): Uint8Array {
    const start = this.offsets[i]!;
    return this.bytes.subarray(start, start + this.lengths[i]!);
  }

  *[Symbol.iterator](): IterableIterator<Uint8Array> {
    for (let i = 0; i < this.count; i++) yield this.record(i);
  }
}

/** Offsets/lengths arrays reused across batches: one record takes at least 8 bytes. */
export function batchScratch(batchBytes: number): { offsets: Uint32Array; lengths: Uint32Array } {
  const max = Math.ceil(batchBytes / 8);
  return { offsets: new Uint32Array(max), lengths: new Uint32Array(max) };
}
