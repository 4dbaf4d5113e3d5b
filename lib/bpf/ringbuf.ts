import { RecordBatch, batchScratch } from './batch';
import { call } from './errors';
import { native } from './native';
import type { NativePerfReader, NativeRingReader } from './native';
import { ReadableWaiter } from './wait';

/** Turns one record's bytes into a value. BTF decoders from `decoderFor` fit here. */
export interface RecordDecoder<T> {
  decode(view: DataView, byteOffset: number): T;
}

export interface ReaderStats {
  /** Records handed to JavaScript. */
  received: number;
  /** Records the producer could not write: failed reservations counted by tcpscope.h, or
   * perf records the kernel dropped. */
  lost: number;
  /** False when the producer keeps no loss counter (a ring buffer without TCPSCOPE_RINGBUF). */
  lossCounted: boolean;
}

export interface ReaderOptions {
  /** Bytes copied from the kernel per read; a record larger than this is an error. Default 128 KiB. */
  batchBytes?: number;
  /** Longest sleep before looking at the buffer without a wake-up, in ms. Default 10. */
  wakeupMs?: number;
  /** Stops iteration when aborted. */
  signal?: AbortSignal;
}

/**
 * Longest sleep of an idle reader. The producer wakes an idle reader on its next record;
 * this only bounds the delay if that wake-up raced with the reader going idle (a record
 * reserved before the reader published its idleness and committed after its last look).
 */
const IDLE_SAFETY_MS = 250;

interface RecordSource {
  consume(target: Uint8Array): number;
  close(): void;
}

/**
 * Records of a ring buffer or perf buffer as an async iterator, read in batches.
 * JavaScript pulls: nothing is read until the loop asks, so a slow consumer fills the kernel
 * buffer and the producer counts what it loses. `break`, close() and the signal stop it.
 *
 * @example
 * const ring = obj.ringBuffer('events', { decoder: obj.decoder('struct conn_event') });
 * for await (const event of ring) console.log(event.pid);
 */
export class RecordReader<T = Uint8Array> implements AsyncIterable<T>, AsyncDisposable {
  readonly name: string;
  private readonly source: RecordSource;
  private readonly waiter: ReadableWaiter;
  private readonly buffer: Uint8Array;
  private readonly scratch: { offsets: Uint32Array; lengths: Uint32Array };
  private readonly wakeupMs: number;
  private readonly decoder: RecordDecoder<T> | undefined;
  private readonly lostCounter: (() => number) | undefined;
  private readonly setIdle: (() => void) | undefined;
  private readonly signal: AbortSignal | undefined;
  private received = 0;
  private finalLost: number | undefined;
  private closed = false;
  private readonly onClose: (() => void) | undefined;

  /** @internal */
  constructor(init: {
    name: string;
    source: RecordSource;
    pollFd: number;
    decoder?: RecordDecoder<T>;
    lostCounter?: () => number;
    /** Tells the producer the reader sleeps without a timer (TCPSCOPE_RINGBUF rings). */
    setIdle?: () => void;
    onClose?: () => void;
    options?: ReaderOptions;
  }) {
    const options = init.options ?? {};
    this.name = init.name;
    this.source = init.source;
    this.decoder = init.decoder;
    this.lostCounter = init.lostCounter;
    this.setIdle = init.setIdle;
    this.onClose = init.onClose;
    // 128 KiB keeps a batch in L2: emptying a full ring costs half as much per record as
    // with 1 MiB batches (bench/ringbuf).
    const batchBytes = options.batchBytes ?? 128 << 10;
    if (!Number.isInteger(batchBytes) || batchBytes < 64) throw new RangeError(`batchBytes must be an integer >= 64, got ${batchBytes}`);
    this.buffer = new Uint8Array(batchBytes);
    this.scratch = batchScratch(batchBytes);
    this.wakeupMs = options.wakeupMs ?? 10;
    if (!(this.wakeupMs > 0)) throw new RangeError(`wakeupMs must be > 0, got ${this.wakeupMs}`);
    this.waiter = new ReadableWaiter(init.pollFd);
    this.signal = options.signal;
    this.signal?.addEventListener('abort', () => this.waiter.wake(), { once: true });
  }

  private get stopped(): boolean {
    return this.closed || (this.signal?.aborted ?? false);
  }

  /** Reads what is waiting now without sleeping; undefined when nothing is. */
  readAvailable(): RecordBatch | undefined {
    if (this.closed) return undefined;
    const bytes = call(`read '${this.name}'`, () => this.source.consume(this.buffer));
    if (bytes === 0) return undefined;
    const batch = new RecordBatch(this.buffer.subarray(0, bytes), this.scratch);
    this.received += batch.count;
    return batch;
  }

  /** Raw batches: the fastest path, one object per batch however many records it holds. */
  async *batches(): AsyncIterableIterator<RecordBatch> {
    let emptyLooks = 0;
    try {
      while (!this.stopped) {
        let batch = this.readAvailable();
        if (!batch && this.setIdle && ++emptyLooks >= 2) {
          // Quiet ring: tell the producer to wake us on its next record and sleep without
          // the latency timer (each timer wake-up costs CPU even when nothing arrives).
          // Look once more after publishing, for a record submitted meanwhile.
          this.setIdle();
          batch = this.readAvailable();
          if (!batch) {
            await this.waiter.wait(IDLE_SAFETY_MS);
            continue;
          }
        }
        if (batch) {
          emptyLooks = 0;
          if (batch.count > 0) yield batch;
          continue;
        }
        await this.waiter.wait(this.wakeupMs);
      }
    } finally {
      // A `break` out of the loop ends the reader, as closing a stream would.
      this.close();
    }
  }

  /** Decoded records, one array per batch. */
  async *decodedBatches(): AsyncIterableIterator<T[]> {
    const decoder = this.decoder;
    for await (const batch of this.batches()) {
      const out = new Array<T>(batch.count);
      if (decoder) {
        const view = batch.view;
        for (let i = 0; i < batch.count; i++) out[i] = decoder.decode(view, batch.offsets[i]!);
      } else {
        for (let i = 0; i < batch.count; i++) out[i] = batch.record(i).slice() as unknown as T;
      }
      yield out;
    }
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    for await (const records of this.decodedBatches()) {
      for (const record of records) yield record;
    }
  }

  stats(): ReaderStats {
    const lost = this.finalLost ?? (this.lostCounter ? this.lostCounter() : 0);
    return { received: this.received, lost, lossCounted: this.lostCounter !== undefined };
  }

  close(): void {
    if (this.closed) return;
    // The counter lives in the object, which may be closed right after: keep its last value.
    try {
      this.finalLost = this.lostCounter ? this.lostCounter() : 0;
    } catch {
      this.finalLost = 0;
    }
    this.closed = true;
    this.waiter.close();
    this.source.close();
    this.onClose?.();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
  }
}

/** @internal */
export function openRingReader<T>(name: string, mapFd: number, init: { decoder?: RecordDecoder<T>; lostCounter?: () => number; setIdle?: () => void; onClose?: () => void; options?: ReaderOptions }): RecordReader<T> {
  const ring: NativeRingReader = call(`open ring buffer '${name}'`, () => new (native().NativeRingReader)(mapFd));
  return new RecordReader<T>({ name, source: ring, pollFd: ring.epollFd, ...init });
}

/** @internal */
export function openPerfReader<T>(name: string, mapFd: number, pagesPerCpu: number, init: { decoder?: RecordDecoder<T>; onClose?: () => void; options?: ReaderOptions }): RecordReader<T> {
  if (!Number.isInteger(pagesPerCpu) || pagesPerCpu < 1 || (pagesPerCpu & (pagesPerCpu - 1)) !== 0) {
    throw new RangeError(`pagesPerCpu must be a power of two, got ${pagesPerCpu}`);
  }
  const perf: NativePerfReader = call(`open perf buffer '${name}'`, () => new (native().NativePerfReader)(mapFd, pagesPerCpu));
  return new RecordReader<T>({ name, source: perf, pollFd: perf.epollFd, lostCounter: () => perf.lost, ...init });
}
