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

/** `wakeupBytes`: the producer's tcpscope_wakeup_bytes (0: the kernel's wake-up per record once caught up). */
function load(wakeupBytes = 0): BpfObject {
  return BpfObject.load(objectPath('bench_ring'), { globals: { burst: 16, tcpscope_wakeup_bytes: wakeupBytes } });
}

const settlesWithin = async (p: Promise<unknown>, turns: number): Promise<boolean> => {
  let settled = false;
  void p.then(() => { settled = true; });
  for (let i = 0; i < turns && !settled; i++) await new Promise((resolve) => setImmediate(resolve));
  return settled;
};

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

  it('with a producer that wakes at a byte threshold, it sleeps right after a small read, and the threshold ends that sleep', async () => {
    // Wakes once 64 records wait, caught up or not (tcpscope.h).
    using obj = load(64 * RECORD);
    // A batch takes 128 records: reads under 64 are small.
    const ring = obj.ringBuffer('ring64', { raw: true, batchBytes: 128 * RECORD, wakeupMs: 60_000 });
    const it = ring.batches();
    produce(obj, 16);
    expect((await it.next()).value!.count).toBe(16);
    // Small: the next call sleeps (its 60 s timer would time the test out) with the 16
    // records submitted meanwhile left in the ring...
    produce(obj, 16);
    const afterSmall = it.next();
    expect(await settlesWithin(afterSmall, 20)).toBe(false);
    // ...until the producer's threshold wakes it.
    produce(obj, 64);
    expect((await afterSmall).value!.count).toBe(80);
    // A full read is followed by another look at once.
    produce(obj, 128);
    expect((await it.next()).value!.count).toBe(128);
    produce(obj, 16);
    const afterFull = it.next();
    expect(await settlesWithin(afterFull, 20)).toBe(true);
    expect((await afterFull).value!.count).toBe(16);
    await it.return!();
  });

  it('with a producer that wakes only a caught-up reader, it reads until the ring is empty before sleeping', async () => {
    using obj = load(0);
    const ring = obj.ringBuffer('ring64', { raw: true, batchBytes: 128 * RECORD, wakeupMs: 60_000 });
    const it = ring.batches();
    produce(obj, 16);
    expect((await it.next()).value!.count).toBe(16);
    // Submitted while the reader is behind: no wake-up would come for these, so the loop
    // looks again at once instead of sleeping.
    produce(obj, 16);
    const next = it.next();
    expect(await settlesWithin(next, 20)).toBe(true);
    expect((await next).value!.count).toBe(16);
    // Caught up, it sleeps, and the producer's next record wakes it.
    const third = it.next();
    await new Promise((resolve) => setImmediate(resolve));
    produce(obj, 16);
    expect((await third).value!.count).toBe(16);
    await it.return!();
  });

  it('clears the wake-ups already reported and gives the lent batch back before sleeping after a small read', async () => {
    // Wakes once 32 records wait; a batch takes 128, so reads of 32 are small.
    using obj = load(32 * RECORD);
    const ring = obj.ringBuffer('ring64', { raw: true, batchBytes: 128 * RECORD, wakeupMs: 60_000 });
    const it = ring.batches();
    const first = it.next();
    await new Promise((resolve) => setImmediate(resolve));
    produce(obj, 32);
    expect((await first).value!.count).toBe(32);
    // That threshold wake-up stays reported until cleared: left so, it would end every sleep
    // at once, and each look would find the few records that arrived since (a busy loop in a
    // flood). 16 arrive while the batch is lent, under the threshold: the loop must sleep.
    produce(obj, 16);
    const second = it.next();
    expect(await settlesWithin(second, 20)).toBe(false);
    // 16 more reach the threshold counted from the given-back batch's end: the producer wakes
    // a reader once per consumer position, which moved when the batch was given back.
    produce(obj, 16);
    expect((await second).value!.count).toBe(32);
    await it.return!();
  });
});
