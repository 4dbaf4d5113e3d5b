// SPDX-License-Identifier: MIT
// The reading loop under every reader's batches() (RecordReader.reads in lib/bpf/ringbuf.ts)
// is an iterator object rather than an async generator; these pin down what a generator
// gave for free: calls served in order, return() ending the reader, a refused consumer
// leaving the first one alone, and a small read followed by a sleep rather than a re-read.
import { describe, expect, it } from 'vitest';
import { BpfObject } from '../lib/bpf';
import type { RecordBatch } from '../lib/bpf';
import { bpfAvailable, objectPath } from './helpers/bpf';

const enabled = bpfAvailable('read-loop');
const SEQ = 12; // offsetof(struct bench_event64, seq)
const RECORD = 72; // 64-byte payload + 8-byte header

function load(): BpfObject {
  return BpfObject.load(objectPath('bench_ring'), { globals: { burst: 16 } });
}

/** Runs the producer for `records` records (a multiple of the burst of 16). */
function produce(obj: BpfObject, records: number): void {
  obj.program('bench_emit64').testRun({ data: new Uint8Array(64), repeat: records / 16 });
}

const seqs = (batch: RecordBatch): number[] => Array.from({ length: batch.count }, (_, i) => batch.view.getUint32(batch.offsets[i]! + SEQ, true));

describe.skipIf(!enabled)('the reading loop', () => {
  it('serves next() calls made before the previous settled one at a time, in order', async () => {
    using obj = load();
    const ring = obj.ringBuffer('ring64', { raw: true, batchBytes: 16 * RECORD, wakeupMs: 5 });
    produce(obj, 64);
    // Copies (decodedBatches() without a decoder): asking for the next lent batch releases
    // the one before, so four calls at once would leave only released batches.
    const it = ring.decodedBatches();
    const seqOf = (record: Uint8Array): number => new DataView(record.buffer, record.byteOffset).getUint32(SEQ, true);
    // Four calls at once, as a consumer that does not await each may make them.
    const results = await Promise.all([it.next(), it.next(), it.next(), it.next()].map((p) => p.then((r) => (r.done ? [] : r.value.map(seqOf)))));
    expect(results.flat()).toEqual(Array.from({ length: 64 }, (_, i) => i));
    expect(results.map((r) => r.length)).toEqual([16, 16, 16, 16]);
    await it.return!();
    expect(ring.stats().received).toBe(64);
  });

  it('return() ends the loop and closes the reader; later calls are done', async () => {
    using obj = load();
    const ring = obj.ringBuffer('ring64', { raw: true, wakeupMs: 5 });
    produce(obj, 16);
    const it = ring.batches();
    const first = await it.next();
    expect(first.done).toBe(false);
    expect(await it.return!()).toEqual({ value: undefined, done: true });
    expect(await it.next()).toEqual({ value: undefined, done: true });
    // Closed: a new consumer is refused with the reader's closed error, not served.
    produce(obj, 16);
    expect(ring.readAvailable()).toBeUndefined();
  });

  it('a second consumer is refused on its first next() and the first reads on', async () => {
    using obj = load();
    const ring = obj.ringBuffer('ring64', { raw: true, batchBytes: 16 * RECORD, wakeupMs: 5 });
    produce(obj, 32);
    const first = ring.batches();
    expect(seqs((await first.next()).value as RecordBatch)[0]).toBe(0);
    const second = ring.decodedBatches();
    await expect(second.next()).rejects.toThrow(/already read by batches\(\); one consumer per ring/);
    expect(await second.next()).toEqual({ value: undefined, done: true });
    expect(seqs((await first.next()).value as RecordBatch)[0]).toBe(16);
    await first.return!();
  });

  it('after a small read it sleeps (up to wakeupMs) instead of reading again at once; after a full read it reads on', async () => {
    using obj = load();
    // A batch takes 64 records: a read of 16 is small, one of 64 full.
    const ring = obj.ringBuffer('ring64', { raw: true, batchBytes: 64 * RECORD, wakeupMs: 200 });
    const it = ring.batches();
    const settlesWithin = async (p: Promise<unknown>, turns: number): Promise<boolean> => {
      let settled = false;
      void p.then(() => { settled = true; });
      for (let i = 0; i < turns && !settled; i++) await new Promise((resolve) => setImmediate(resolve));
      return settled;
    };
    // Records submitted while the last batch is still lent raise no wake-up (the consumer
    // has not caught up with them): only a look without sleeping, or the timer, finds them.
    produce(obj, 64);
    expect((await it.next()).value!.count).toBe(64);
    produce(obj, 16);
    const afterFull = it.next();
    expect(await settlesWithin(afterFull, 20)).toBe(true);
    expect((await afterFull).value!.count).toBe(16);
    produce(obj, 16);
    const afterSmall = it.next();
    expect(await settlesWithin(afterSmall, 20)).toBe(false);
    expect((await afterSmall).value!.count).toBe(16);
    await it.return!();
  });

  it('sleeping after a small read, it still wakes on the producer\'s next record, not on its timer', async () => {
    using obj = load();
    const ring = obj.ringBuffer('ring64', { raw: true, batchBytes: 64 * RECORD, wakeupMs: 60_000 });
    const it = ring.batches();
    const first = it.next();
    produce(obj, 16);
    expect((await first).value!.count).toBe(16);
    // The next call gives the lent batch back and sleeps caught up: the producer's next
    // submit wakes it (a 60 s timer would time the test out).
    const second = it.next();
    await new Promise((resolve) => setImmediate(resolve));
    produce(obj, 16);
    expect((await second).value!.count).toBe(16);
    await it.return!();
  });
});
