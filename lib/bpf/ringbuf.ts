// SPDX-License-Identifier: MIT
import { RecordBatch, batchScratch, lentBytes, readOnlyView, release } from './batch';
import { decodesIntoCopies } from './btf/codec';
import { BpfError, call, translateError } from './errors';
import { native } from './native';
import type { NativePerfReader, NativeRingReader } from './native';
import { ReadableWaiter } from './wait';

/** Turns one record's bytes into a value. BTF decoders from `decoderFor` fit here. */
export interface RecordDecoder<T> {
  decode(view: DataView, byteOffset: number): T;
  /**
   * True when decoded values keep reading `view` after decode() returns (lazy views such as
   * `viewDecoderFor`'s): the reader then hands the decoder a copy of the batch that stays
   * valid, instead of its reused buffer.
   */
  readonly retainsView?: boolean;
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
  /** Most bytes of one batch (ring buffers: read in place; perf buffers: copied); a perf record larger than this is an error. Default 128 KiB. */
  batchBytes?: number;
  /** Longest sleep before looking at the buffer without a wake-up, in ms. Default 10. */
  wakeupMs?: number;
  /**
   * Stops iteration when aborted. Records already waiting in the buffer are still delivered
   * (at most one buffer's worth), so a Ctrl-C loses nothing the kernel had handed over;
   * close() and `break` stop at once.
   */
  signal?: AbortSignal;
}

/**
 * Longest sleep of an idle reader. The producer wakes an idle reader on its next record;
 * this only bounds the delay if that wake-up raced with the reader going idle (a record
 * reserved before the reader published its idleness and committed after its last look).
 * Readers whose wakeupMs is at least this long never go idle: their timer wakes them as
 * rarely, and a first record after a quiet spell does not wake them early (each wake-up of
 * a sleeping process costs CPU: bench/README.md, "bench/capture").
 */
const IDLE_SAFETY_MS = 250;

/**
 * Longest a reader keeps the event loop busy with back-to-back batches before it lets
 * timers and I/O run (a macrotask turn): a ring that is always full would otherwise be
 * read batch after batch in promise continuations, starving every timer (a detector's
 * tick, a /metrics scrape) for as long as the flood lasts.
 */
const TURN_BUDGET_MS = 10;

/** Resolves in the next event-loop turn, after timers and I/O callbacks. */
const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Perf buffers copy what waits into the reader's buffer (consume). */
interface CopyingSource extends Pick<NativePerfReader, 'consume' | 'close'> { lend?: undefined; dataArea?: undefined; commitForSleep?: undefined }
/** Ring buffers lend their records in place (see NativeRingReader.lend). */
interface LendingSource extends Pick<NativeRingReader, 'lend' | 'dataArea' | 'commitForSleep' | 'close'> { consume?: undefined }
type RecordSource = CopyingSource | LendingSource;

const NO_BYTES = new Uint8Array(0);

/** The reading loop's `full` for readers that read on until the buffer is empty. */
const readUntilEmpty = (): boolean => true;

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
  /** The copy of a perf buffer read; ring buffers are read in place. */
  private readonly buffer: Uint8Array | undefined;
  private readonly batchBytes: number;
  private readonly readWhat: string;
  private readonly scratch: { offsets: Uint32Array; lengths: Uint32Array };
  /** The last lend: [start in the ring's data area, bytes, records]. */
  private readonly lentAt = new Uint32Array(3);
  /** The ring's data pages (NativeRingReader.dataArea), once the first batch is lent. */
  private area: ArrayBuffer | undefined;
  /** The lent batch JavaScript may still read: released before the ring is read on. */
  private current: RecordBatch | undefined;
  private readonly wakeupMs: number;
  private readonly decoder: RecordDecoder<T> | undefined;
  private readonly lostCounter: (() => number) | undefined;
  private readonly setIdle: (() => void) | undefined;
  /** Sleep right after a read smaller than half a batch (see batchFull), rather than read until empty. */
  private readonly sleepsAfterSmallReads: boolean;
  private readonly signal: AbortSignal | undefined;
  private readonly capacityBytes: number;
  private received = 0;
  /** Who reads the ring now (an iterator or a native thread): one consumer at a time. */
  private consumer: string | undefined;
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
    /**
     * The producer wakes the reader once this many bytes wait, caught up or not
     * (TCPSCOPE_RINGBUF rings with tcpscope_wakeup_bytes): the reader may then sleep right
     * after a small read. Other producers wake it only once it has caught up, so it reads
     * until the ring is empty before sleeping.
     */
    producerWakesAtBytes?: number;
    onClose?: () => void;
    /** Bytes the kernel buffer holds: what a drain after abort reads at most. */
    capacityBytes?: number;
    options?: ReaderOptions;
  }) {
    const options = init.options ?? {};
    this.name = init.name;
    this.readWhat = `read '${init.name}'`;
    this.source = init.source;
    this.decoder = init.decoder;
    this.lostCounter = init.lostCounter;
    this.setIdle = init.setIdle;
    this.onClose = init.onClose;
    this.capacityBytes = init.capacityBytes ?? 64 << 20;
    // 128 KiB keeps a perf buffer's copy in L2, where larger batches make each record's
    // copy dearer (bench/README.md, "Causes", 5). A ring buffer's batch is lent in place, so
    // only the per-batch cost is left to spread: 256 KiB, which holds that much of the ring
    // back from the producer until the reader reads on.
    const batchBytes = options.batchBytes ?? (init.source.lend ? 256 << 10 : 128 << 10);
    if (!Number.isInteger(batchBytes) || batchBytes < 64) throw new RangeError(`batchBytes must be an integer >= 64, got ${batchBytes}`);
    this.batchBytes = batchBytes;
    // A threshold past half the ring would let it fill while the reader sleeps.
    const wakesAt = init.producerWakesAtBytes ?? 0;
    this.sleepsAfterSmallReads = init.source.lend !== undefined && wakesAt > 0 && wakesAt <= this.capacityBytes / 2;
    // Ring buffers are read in place (see lib/bpf/batch.ts); the copying path stays for
    // perf buffers, whose per-CPU records are not one contiguous run.
    this.buffer = init.source.lend ? undefined : new Uint8Array(batchBytes);
    this.scratch = batchScratch(batchBytes);
    this.wakeupMs = options.wakeupMs ?? 10;
    if (!(this.wakeupMs > 0)) throw new RangeError(`wakeupMs must be > 0, got ${this.wakeupMs}`);
    this.waiter = new ReadableWaiter(init.pollFd);
    this.signal = options.signal;
    this.signal?.addEventListener('abort', () => this.waiter.wake(), { once: true });
  }

  private busy(what: string): BpfError {
    return new BpfError(
      `${what} on '${this.name}': the ring is already read by ${this.consumer}; one consumer per ring: ` +
        'end that one first (break out of its loop, abort or close it)',
      { errno: 16, code: 'EBUSY' },
    );
  }

  /**
   * @internal Throws the one-consumer error if something reads the ring already: callers
   * that close their probe when iteration ends check first, so a refused second consumer
   * does not end the first.
   */
  requireFree(what: string): void {
    if (this.consumer !== undefined) throw this.busy(what);
  }

  /** Takes the reader for one consumer; the returned function gives it back. */
  private lease(who: string): () => void {
    if (this.consumer !== undefined) throw this.busy(who);
    this.consumer = who;
    return () => {
      if (this.consumer === who) this.consumer = undefined;
    };
  }

  private get stopped(): boolean {
    return this.closed || (this.signal?.aborted ?? false);
  }

  /** Ends the lent batch before anything reads the ring on (which gives its records back). */
  private releaseCurrent(): void {
    if (this.current) release(this.current);
    this.current = undefined;
  }

  /**
   * Takes what is waiting now without sleeping: lends it in place (ring buffers) or copies it
   * into the reader's buffer (perf buffers); 0 when nothing is.
   */
  private readBytes(): number {
    if (this.closed) return 0;
    this.releaseCurrent();
    // try/catch here rather than call(): no closure per read on a path taken on every wake-up.
    try {
      const source = this.source;
      return source.lend ? source.lend(this.scratch.offsets, this.scratch.lengths, this.lentAt, this.batchBytes) : source.consume(this.buffer!);
    } catch (e) {
      throw translateError(e, this.readWhat);
    }
  }

  /**
   * Before sleeping right after a read: the consumer has asked for the next batch, so the
   * lent one is done with; give it back, so that the producer's wake-ups resume, and clear
   * those already reported (they are for records this read saw or the next will).
   */
  private commitForSleep(): void {
    if (this.closed || !this.source.commitForSleep) return;
    this.releaseCurrent();
    try {
      this.source.commitForSleep();
    } catch (e) {
      throw translateError(e, this.readWhat);
    }
  }

  /** The batch of the last read of `bytes` bytes. */
  private batchOf(bytes: number): RecordBatch {
    let batch: RecordBatch;
    if (this.buffer) {
      batch = new RecordBatch(this.buffer.subarray(0, bytes), this.scratch);
    } else {
      this.area ??= call(`map '${this.name}'`, () => this.source.dataArea!());
      const view = new DataView(this.area, this.lentAt[0]!, bytes);
      batch = new RecordBatch(NO_BYTES, this.scratch, this.lentAt[2]!, { view, owner: this });
      this.current = batch;
    }
    this.received += batch.count;
    return batch;
  }

  /**
   * Reads what is waiting now without sleeping; undefined when nothing is. A ring buffer's
   * batch is valid until the next readAvailable() or close().
   */
  readAvailable(): RecordBatch | undefined {
    if (this.consumer !== undefined) throw this.busy('readAvailable()');
    const bytes = this.readBytes();
    if (bytes === 0) return undefined;
    return this.batchOf(bytes);
  }

  /**
   * Raw batches: the fastest path, one object per batch however many records it holds. A
   * ring buffer's batch is read in place and valid until the loop asks for the next one.
   */
  batches(): AsyncIterableIterator<RecordBatch> {
    return this.mapBatches('batches()', (batch) => (batch.count > 0 ? batch : undefined));
  }

  /**
   * @internal Batches turned into what a probe yields (`map`: undefined skips the batch),
   * inside the reading loop: a layer of its own between the ring and the consumer would be
   * another promise hop on every wake-up, which is most of what a 10 ms reader pays.
   * `onEnd` runs after the reader closes, however the iteration ended.
   */
  mapBatches<R>(who: string, map: (batch: RecordBatch) => R | undefined, onEnd?: () => void): AsyncIterableIterator<R> {
    return this.reads(this.readWaiting, who, (bytes) => map(this.batchOf(bytes)), this.sleepsAfterSmallReads ? this.batchFull : readUntilEmpty, onEnd);
  }

  /** The native ring reader, for a native consumer of the ring (a ring buffer reader only). */
  private nativeRing(): NativeRingReader {
    if (!(this.source instanceof native().NativeRingReader)) throw new TypeError(`'${this.name}' is not a ring buffer reader`);
    return this.source;
  }

  /**
   * @internal Drives a native consumer of the ring itself (a ring buffer reader only):
   * `consume` takes what it can straight from the ring and returns the records it took, 0
   * when nothing waited. Waiting, idling, abort and draining work as for batches(); one
   * iteration per non-empty consume. The consumer holds the reader's lease meanwhile.
   */
  async *consumeWith(consume: (ring: NativeRingReader) => number): AsyncIterableIterator<number> {
    const ring = this.nativeRing();
    const read = (): number => {
      if (this.closed) return 0;
      this.releaseCurrent();
      const records = call(`read '${this.name}'`, () => consume(ring));
      this.received += records;
      return records;
    };
    yield* this.reads(read, 'a native consumer', (records) => records, readUntilEmpty);
  }

  /**
   * @internal Hands the ring to a native thread of the addon for the rest of the reader's
   * life (a ring buffer reader only): `start` starts it with the reader's wake-up interval
   * and the callback the thread reports to. An abort stops it after it has read what was
   * waiting; close() stops it at once. Resolves with the records it took; closes the reader.
   */
  async consumeOnThread(start: (ring: NativeRingReader, wakeupMs: number, done: NativeThreadDone) => void): Promise<number> {
    const ring = this.nativeRing();
    if (this.stopped) {
      this.close();
      return 0;
    }
    this.releaseCurrent();
    const release = this.lease('a native reader thread');
    const stop = (): void => ring.stopThread();
    try {
      const records = await new Promise<number>((resolve, reject) => {
        call(`start a reader thread on '${this.name}'`, () => start(ring, this.wakeupMs, (error, records) => {
          this.received += records;
          if (error === null) resolve(records);
          else reject(translateError(error, `reader thread of '${this.name}'`));
        }));
        this.signal?.addEventListener('abort', stop, { once: true });
        if (this.signal?.aborted) stop();
      });
      return records;
    } finally {
      this.signal?.removeEventListener('abort', stop);
      release();
      this.close();
    }
  }

  private readonly readWaiting = (): number => this.readBytes();

  /**
   * Whether a ring read of `bytes` took about all the reader takes at once, so more is
   * likely waiting: read on at once. After a smaller read the ring is as good as drained,
   * and an immediate second look would only find the few records that arrived meanwhile, at
   * the cost of a whole round through the consumer: sleep instead. The wake-up interval
   * still bounds their delay, and the producer's byte threshold wakes the reader early if
   * records pile up (only readers of such producers do this: sleepsAfterSmallReads).
   */
  private readonly batchFull = (bytes: number): boolean => bytes * 2 >= this.batchBytes;

  /**
   * The reading loop under mapBatches() and consumeWith(): `read` takes what waits
   * (returning 0 when nothing did); each non-empty read is mapped, and handed out unless
   * mapped to undefined. `full` says whether to read again before sleeping. The lease is
   * taken on the first next(); the loop ends (lease given back, reader closed, then
   * `onEnd`) when the reader stops, on return() (a `break`) or on an error.
   *
   * An iterator object, not an async generator: a generator's yield awaits its value and
   * its resumption is another queued job, and a 10 ms reader pays these on every wake-up
   * in code that V8 seldom optimises (it runs a hundred times a second, not a million).
   */
  private reads<R>(read: () => number, who: string, map: (got: number) => R | undefined, full: (got: number) => boolean, onEnd?: () => void): AsyncIterableIterator<R> {
    const DONE: IteratorResult<R> = { value: undefined, done: true };
    let started = false;
    let ended = false;
    let release: (() => void) | undefined;
    let emptyLooks = 0;
    /** Read before sleeping: at the start, after a full read, after a wait. */
    let readNow = true;
    /** When back-to-back full reads began (0: none since the last sleep or turn). */
    let turnStart = 0;
    let drainLeft = -1;
    /** The loop sleeps after a read rather than after finding the ring empty. */
    let sleepAfterRead = false;
    /** Steps asked for and not finished; calls are served one at a time, as a generator serves them. */
    let pending = 0;
    let last: Promise<IteratorResult<R>> = Promise.resolve(DONE);
    const end = (): void => {
      if (ended) return;
      ended = true;
      release?.();
      // A `break` out of the loop ends the reader, as closing a stream would.
      this.close();
      onEnd?.();
    };
    const step = async (): Promise<IteratorResult<R>> => {
      try {
        if (ended) return DONE;
        if (!started) {
          started = true;
          release = this.lease(who);
        }
        while (drainLeft < 0) {
          if (this.stopped) {
            // After an abort, what was already waiting: about one buffer's worth of reads
            // at most (the producer may go on).
            drainLeft = this.signal?.aborted ? Math.ceil(this.capacityBytes / this.batchBytes) + 1 : 0;
            break;
          }
          if (!readNow) {
            if (sleepAfterRead) this.commitForSleep();
            sleepAfterRead = false;
            await this.waiter.wait(this.wakeupMs);
            readNow = true;
            turnStart = 0;
            continue;
          }
          if (turnStart !== 0 && performance.now() - turnStart >= TURN_BUDGET_MS) {
            // Back-to-back full reads (a flooded ring) have kept the loop busy for a whole
            // budget, the consumer's work on them included: let timers and I/O run.
            await nextTurn();
            turnStart = 0;
            continue;
          }
          let got = read();
          if (got === 0 && this.setIdle && this.wakeupMs < IDLE_SAFETY_MS && ++emptyLooks >= 2) {
            // Quiet ring: tell the producer to wake us on its next record and sleep without
            // the latency timer (each timer wake-up costs CPU even when nothing arrives).
            // Look once more after publishing, for a record submitted meanwhile.
            this.setIdle();
            got = read();
            if (got === 0) {
              await this.waiter.wait(IDLE_SAFETY_MS);
              continue;
            }
          }
          if (got === 0) {
            readNow = false;
            continue;
          }
          emptyLooks = 0;
          readNow = full(got);
          sleepAfterRead = !readNow;
          if (readNow && turnStart === 0) turnStart = performance.now();
          const value = map(got);
          if (value !== undefined) return { value, done: false };
        }
        while (drainLeft > 0 && !this.closed) {
          drainLeft--;
          const got = read();
          if (got === 0) break;
          const value = map(got);
          if (value !== undefined) return { value, done: false };
        }
        end();
        return DONE;
      } catch (e) {
        if (release !== undefined) end();
        else ended = true; // refused a lease: the reader belongs to its consumer, leave it
        throw e;
      } finally {
        pending--;
      }
    };
    const iterator: AsyncIterableIterator<R> = {
      next: () => {
        last = ++pending === 1 ? step() : last.then(step, step);
        return last;
      },
      return: async () => {
        end();
        return DONE;
      },
      throw: async (error: unknown) => {
        end();
        throw error;
      },
      [Symbol.asyncIterator]: () => iterator,
    };
    return iterator;
  }

  /** Decoded records, one array per batch. */
  decodedBatches(): AsyncIterableIterator<T[]> {
    return this.mapBatches('decodedBatches()', (batch) => (batch.count > 0 ? this.decodeBatch(batch) : undefined));
  }

  /** @internal The records of `batch` decoded (copies when no decoder was given). */
  decodeBatch(batch: RecordBatch): T[] {
    const decoder = this.decoder;
    const out = new Array<T>(batch.count);
    if (decoder) {
      // Generated eager decoders copy what they read, so they may read a lent batch in
      // place; lazy views keep the bytes, and other decoders are user code, which must
      // never see a writable view of the ring's read-only pages: both get a copy.
      const inPlace = this.buffer ? !decoder.retainsView : decodesIntoCopies(decoder);
      const view = inPlace ? readOnlyView(batch) : copyView(batch);
      for (let i = 0; i < batch.count; i++) out[i] = decoder.decode(view, batch.offsets[i]!);
    } else {
      for (let i = 0; i < batch.count; i++) out[i] = batch.record(i).slice() as unknown as T;
    }
    return out;
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
    this.releaseCurrent();
    this.waiter.close();
    this.source.close();
    this.onClose?.();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
  }
}

/** A DataView over a copy of a batch's (or any) bytes: what lazy decoders may keep. */
export function copyView(bytes: Uint8Array | RecordBatch): DataView {
  const copy = (bytes instanceof RecordBatch ? lentBytes(bytes) : bytes).slice();
  return new DataView(copy.buffer, 0, copy.byteLength);
}

/** What a native reader thread reports when it ends: null, or the addon error of what failed. */
export type NativeThreadDone = (error: Error | null, records: number, bytes: number) => void;

/** @internal */
export function openRingReader<T>(name: string, mapFd: number, init: { decoder?: RecordDecoder<T>; lostCounter?: () => number; setIdle?: () => void; producerWakesAtBytes?: number; onClose?: () => void; capacityBytes?: number; options?: ReaderOptions }): RecordReader<T> {
  const ring: NativeRingReader = call(`open ring buffer '${name}'`, () => new (native().NativeRingReader)(mapFd));
  return new RecordReader<T>({ name, source: ring, pollFd: ring.epollFd, ...init });
}

/** @internal */
export function openPerfReader<T>(name: string, mapFd: number, pagesPerCpu: number, init: { decoder?: RecordDecoder<T>; onClose?: () => void; options?: ReaderOptions }): RecordReader<T> {
  if (!Number.isInteger(pagesPerCpu) || pagesPerCpu < 1 || (pagesPerCpu & (pagesPerCpu - 1)) !== 0) {
    throw new RangeError(`pagesPerCpu must be a power of two, got ${pagesPerCpu}`);
  }
  const perf: NativePerfReader = call(`open perf buffer '${name}'`, () => new (native().NativePerfReader)(mapFd, pagesPerCpu));
  const capacityBytes = pagesPerCpu * 4096 * native().numPossibleCpus();
  return new RecordReader<T>({ name, source: perf, pollFd: perf.epollFd, lostCounter: () => perf.lost, capacityBytes, ...init });
}
