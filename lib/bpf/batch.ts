// SPDX-License-Identifier: MIT
// A batch of ring/perf buffer records: [u32 len][u32 aux][data], each record padded to 8
// bytes. Reading it allocates nothing per record.
//
// A ring buffer's batch is read in place: its bytes are the ring's own pages, mapped
// read-only, lent by the reader until it reads on (copying them cost as much as libbpf's
// whole consumer). Two hazards follow, and this module is where they are contained: a write
// to those pages kills the process, and once the batch is released the producer reuses them.
// So no public member hands out a typed array over them: `view` is a read-only RecordView
// that throws once the batch is released, and `bytes`/`record(i)` return copies. Perf
// buffers (their records are not contiguous) and batches the caller keeps (`copy()`) own
// their bytes.

const BUSY_BIT = 0x80000000;
const DISCARD_BIT = 0x40000000;
const LENGTH_MASK = 0x3fffffff;

/** The read-only getters of a DataView: how a batch's bytes are read in place. */
export interface RecordView {
  readonly byteLength: number;
  getInt8(byteOffset: number): number;
  getUint8(byteOffset: number): number;
  getInt16(byteOffset: number, littleEndian?: boolean): number;
  getUint16(byteOffset: number, littleEndian?: boolean): number;
  getInt32(byteOffset: number, littleEndian?: boolean): number;
  getUint32(byteOffset: number, littleEndian?: boolean): number;
  getFloat32(byteOffset: number, littleEndian?: boolean): number;
  getFloat64(byteOffset: number, littleEndian?: boolean): number;
  getBigInt64(byteOffset: number, littleEndian?: boolean): bigint;
  getBigUint64(byteOffset: number, littleEndian?: boolean): bigint;
}

/** What reading a released batch throws. */
export class ReleasedBatchError extends Error {
  override readonly name = 'ReleasedBatchError';
  readonly code = 'ERELEASED';
}

const EMPTY = new DataView(new ArrayBuffer(0));

function releasedError(source: string): ReleasedBatchError {
  return new ReleasedBatchError(
    `this batch of '${source}' was released: its records were read in place from the ring buffer, which the producer ` +
      'reuses once the reader reads on (next batch, break, close); keep copies (batch.record(i), batch.bytes or batch.copy())',
  );
}

/**
 * A DataView's getters over ring pages lent to one batch. The DataView stays private (a
 * write through it would kill the process); after release every getter throws
 * ReleasedBatchError. The try/catch costs nothing until something throws.
 */
class LentView implements RecordView {
  #dv: DataView;
  /** The reader: named in errors, and kept alive (with the ring's mapping) by the view. */
  readonly #owner: { readonly name: string };
  constructor(dv: DataView, owner: { readonly name: string }) {
    this.#dv = dv;
    this.#owner = owner;
  }
  /** @internal */
  static release(view: LentView): void {
    view.#dv = EMPTY;
  }
  /** @internal The DataView itself, for readers that only read and keep nothing (see readOnlyView). */
  static raw(view: LentView): DataView {
    if (view.#dv === EMPTY) throw releasedError(view.#owner.name);
    return view.#dv;
  }
  #fail(e: unknown): never {
    if (this.#dv === EMPTY) throw releasedError(this.#owner.name);
    throw e;
  }
  get byteLength(): number {
    return this.#dv.byteLength;
  }
  getInt8(o: number): number {
    try { return this.#dv.getInt8(o); } catch (e) { return this.#fail(e); }
  }
  getUint8(o: number): number {
    try { return this.#dv.getUint8(o); } catch (e) { return this.#fail(e); }
  }
  getInt16(o: number, le?: boolean): number {
    try { return this.#dv.getInt16(o, le); } catch (e) { return this.#fail(e); }
  }
  getUint16(o: number, le?: boolean): number {
    try { return this.#dv.getUint16(o, le); } catch (e) { return this.#fail(e); }
  }
  getInt32(o: number, le?: boolean): number {
    try { return this.#dv.getInt32(o, le); } catch (e) { return this.#fail(e); }
  }
  getUint32(o: number, le?: boolean): number {
    try { return this.#dv.getUint32(o, le); } catch (e) { return this.#fail(e); }
  }
  getFloat32(o: number, le?: boolean): number {
    try { return this.#dv.getFloat32(o, le); } catch (e) { return this.#fail(e); }
  }
  getFloat64(o: number, le?: boolean): number {
    try { return this.#dv.getFloat64(o, le); } catch (e) { return this.#fail(e); }
  }
  getBigInt64(o: number, le?: boolean): bigint {
    try { return this.#dv.getBigInt64(o, le); } catch (e) { return this.#fail(e); }
  }
  getBigUint64(o: number, le?: boolean): bigint {
    try { return this.#dv.getBigUint64(o, le); } catch (e) { return this.#fail(e); }
  }
}

let releaseBatch: (batch: RecordBatch) => void;
let readOnlyViewOf: (batch: RecordBatch) => DataView;

/**
 * Records of one read. Ring buffer batches are read in place and valid until the reader
 * reads on (the iterator advances, readAvailable() is called again, break, close()):
 * reading a released batch throws ReleasedBatchError. Keep copies: `record(i)`, `bytes` and
 * `copy()` return them.
 */
export class RecordBatch {
  /** Read-only getters over the batch's bytes; records start at 8-byte aligned offsets. */
  readonly view: RecordView;
  /** Number of records (discarded reservations excluded). */
  readonly count: number;
  /** Payload offset of record i within the batch. */
  readonly offsets: Uint32Array;
  /** Payload length of record i. */
  readonly lengths: Uint32Array;
  /** The bytes when the batch owns them; undefined for a lent one. */
  #owned: Uint8Array | undefined;
  /** A lent batch's view, until released. */
  #lent: LentView | undefined;
  #copy: Uint8Array | undefined;

  /**
   * @internal `indexed`: the records' count when the reader already filled the scratch
   * offsets and lengths (the ring reader does). `lent`: the batch reads ring pages in place
   * through this DataView (the bytes argument is then ignored) until release(); `owner`,
   * the reader, keeps the mapping alive while the batch is reachable.
   */
  constructor(
    bytes: Uint8Array,
    scratch: { offsets: Uint32Array; lengths: Uint32Array },
    indexed?: number,
    lent?: { view: DataView; owner: { readonly name: string } },
  ) {
    this.offsets = scratch.offsets;
    this.lengths = scratch.lengths;
    if (lent) {
      this.#lent = new LentView(lent.view, lent.owner);
      this.view = this.#lent;
      this.count = indexed ?? 0;
      return;
    }
    this.#owned = bytes;
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.view = view;
    if (indexed !== undefined) {
      this.count = indexed;
      return;
    }
    let count = 0;
    let offset = 0;
    const end = bytes.byteLength;
    const { offsets, lengths } = scratch;
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

  /**
   * The batch's bytes as copied from the kernel. For a ring buffer batch (read in place)
   * this is a copy, made on first use and kept with the batch.
   */
  get bytes(): Uint8Array {
    if (this.#owned) return this.#owned;
    this.#copy ??= lentBytes(this).slice();
    return this.#copy;
  }

  /** Record i's payload: a view into the batch's own bytes, a copy for a batch read in place. */
  record(i: number): Uint8Array {
    const start = this.offsets[i]!;
    if (this.#owned) return this.#owned.subarray(start, start + this.lengths[i]!);
    return lentBytes(this).slice(start, start + this.lengths[i]!);
  }

  /** A batch that owns a copy of these records, valid for as long as it is kept. */
  copy(): RecordBatch {
    const n = this.count;
    const bytes = this.#owned ? this.#owned.slice() : lentBytes(this).slice();
    return new RecordBatch(bytes, { offsets: this.offsets.slice(0, n), lengths: this.lengths.slice(0, n) }, n);
  }

  *[Symbol.iterator](): IterableIterator<Uint8Array> {
    for (let i = 0; i < this.count; i++) yield this.record(i);
  }

  static {
    releaseBatch = (batch) => {
      if (batch.#lent) LentView.release(batch.#lent);
    };
    readOnlyViewOf = (batch) => (batch.#lent ? LentView.raw(batch.#lent) : (batch.view as DataView));
  }
}


/** @internal Ends a lent batch: its getters throw from now on. Idempotent. */
export function release(batch: RecordBatch): void {
  releaseBatch(batch);
}

/**
 * @internal The batch's DataView, the ring's own pages for a lent batch: only for code that
 * reads and keeps nothing (generated eager decoders, native encoders), never for user code.
 */
export function readOnlyView(batch: RecordBatch): DataView {
  return readOnlyViewOf(batch);
}

/** @internal The batch's bytes as a Uint8Array, in place for a lent batch: see readOnlyView. */
export function lentBytes(batch: RecordBatch): Uint8Array {
  const dv = readOnlyViewOf(batch);
  return new Uint8Array(dv.buffer, dv.byteOffset, dv.byteLength);
}

/** Offsets/lengths arrays reused across batches: one record takes at least 8 bytes. */
export function batchScratch(batchBytes: number): { offsets: Uint32Array; lengths: Uint32Array } {
  const max = Math.ceil(batchBytes / 8);
  return { offsets: new Uint32Array(max), lengths: new Uint32Array(max) };
}
