// SPDX-License-Identifier: MIT
// Ring buffer batches are read in place from the ring's read-only pages (lib/bpf/batch.ts):
// what a user keeps after the reader reads on must never show other data, and nothing
// public hands out a writable view of those pages.
import { describe, expect, it } from 'vitest';
import { BpfObject, ReleasedBatchError } from '../lib/bpf';
import type { RecordBatch } from '../lib/bpf';
import { bpfAvailable, objectPath } from './helpers/bpf';

const enabled = bpfAvailable('ring-lent');
const SEQ = 12; // offsetof(struct bench_event64, seq)
const RECORD = 72; // 64-byte payload + 8-byte header
const RING = 4 << 20;

function load(burst = 16): BpfObject {
  return BpfObject.load(objectPath('bench_ring'), { globals: { burst } });
}

/** Runs the producer for `records` records (a multiple of the burst of 16). */
function produce(obj: BpfObject, records: number): void {
  obj.program('bench_emit64').testRun({ data: new Uint8Array(64), repeat: records / 16 });
}

const seqOf = (batch: RecordBatch, i: number): number => batch.view.getUint32(batch.offsets[i]! + SEQ, true);

describe.skipIf(!enabled)('ring buffer batches read in place', () => {
  it('delivers every record in order across many wraps of the ring', () => {
    using obj = load();
    const ring = obj.ringBuffer('ring64', { raw: true, batchBytes: 100_000 });
    // Rounds of 3/4 of a ring: the consumer position moves through every offset, and
    // batches that cross the ring's end are read through its second mapping.
    const perRound = Math.floor((RING * 0.75) / RECORD / 16) * 16;
    let expect0 = 0;
    let batches = 0;
    let wrong = 0;
    for (let round = 0; round < 6; round++) {
      produce(obj, perRound);
      for (let batch = ring.readAvailable(); batch; batch = ring.readAvailable()) {
        batches++;
        for (let i = 0; i < batch.count; i++) {
          if (seqOf(batch, i) !== expect0 || batch.lengths[i] !== 64) wrong++;
          expect0++;
        }
      }
    }
    expect(wrong).toBe(0);
    expect(expect0).toBe(perRound * 6);
    expect(batches).toBeGreaterThan(6 * 3);
    expect(ring.stats()).toMatchObject({ received: perRound * 6, lost: 0 });
  });

  it('a released batch throws a one-line error; copies taken before keep their records', () => {
    using obj = load();
    const ring = obj.ringBuffer('ring64', { raw: true, batchBytes: 16 * RECORD });
    produce(obj, 64);
    const first = ring.readAvailable()!;
    expect(first.count).toBe(16);
    const record = first.record(3);
    const kept = first.copy();
    const bytes = first.bytes;
    expect(seqOf(first, 3)).toBe(3);

    // Reading on releases `first`: the producer may now write over its records, and does.
    const second = ring.readAvailable()!;
    expect(seqOf(second, 0)).toBe(16);
    // An out-of-range read of a live batch is the DataView's own RangeError.
    expect(() => second.view.getUint32(1 << 20, true)).toThrow(RangeError);
    while (ring.readAvailable());
    produce(obj, Math.floor(RING / RECORD / 16) * 16 - 64);

    const released = (read: () => unknown): ReleasedBatchError => {
      try {
        read();
      } catch (e) {
        return e as ReleasedBatchError;
      }
      throw new Error('reading a released batch did not throw');
    };
    for (const read of [() => first.view.getUint32(first.offsets[0]!, true), () => first.view.getBigUint64(8, true), () => first.record(0), () => first.copy()]) {
      const e = released(read);
      expect(e).toBeInstanceOf(ReleasedBatchError);
      expect(e.code).toBe('ERELEASED');
      expect(e.message).toMatch(/^this batch of 'ring64' was released: .*keep copies/);
      expect(e.message).not.toContain('\n');
    }
    // What was copied before the release still shows the records it was taken from.
    expect(new DataView(record.buffer, record.byteOffset).getUint32(SEQ, true)).toBe(3);
    expect(record.length).toBe(64);
    expect(seqOf(kept, 15)).toBe(15);
    expect(kept.count).toBe(16);
    expect(first.bytes).toBe(bytes);
    expect(new DataView(bytes.buffer).getUint32(first.offsets[5]! + SEQ, true)).toBe(5);
  });

  it('hands out no writable view of the ring: writes go to copies', () => {
    using obj = load();
    const ring = obj.ringBuffer('ring64', { raw: true });
    produce(obj, 32);
    const batch = ring.readAvailable()!;
    expect(batch.view).not.toBeInstanceOf(DataView);
    expect(Object.keys(batch.view)).toEqual([]);
    const record = batch.record(1);
    record.fill(0xff);
    batch.bytes.fill(0xee);
    for (const r of batch) r.fill(0xdd);
    // The ring still holds what the producer wrote (a write to its pages would have killed
    // the process instead).
    expect(seqOf(batch, 1)).toBe(1);
    expect(batch.record(1)[SEQ]).toBe(1);
  });

  it('close() ends a batch that is still held', () => {
    const obj = load();
    const ring = obj.ringBuffer('ring64', { raw: true });
    produce(obj, 16);
    const batch = ring.readAvailable()!;
    expect(seqOf(batch, 0)).toBe(0);
    ring.close();
    obj.close();
    expect(() => seqOf(batch, 0)).toThrow(ReleasedBatchError);
  });

  it('decoders see the records; what they return outlives the batch', async () => {
    using obj = load();
    const decoded = obj.ringBuffer<{ seq: number }>('ring64', { decoder: 'bench_event64' });
    // A user decoder that keeps its view gets a copy, never the ring's pages.
    const views: DataView[] = [];
    const keeping = { decode: (view: DataView, at: number) => (views.push(view), at) };
    produce(obj, 48);
    const events: { seq: number }[] = [];
    for await (const batch of decoded.decodedBatches()) {
      events.push(...batch);
      if (events.length === 48) break;
    }
    expect(events.map((e) => e.seq)).toEqual([...Array(48).keys()]);

    using obj2 = load();
    const custom = obj2.ringBuffer<number>('ring64', { decoder: keeping });
    produce(obj2, 16);
    for await (const offsets of custom.decodedBatches()) {
      expect(offsets.length).toBe(16);
      break;
    }
    expect(views[0]).toBeInstanceOf(DataView);
    views[0]!.setUint32(0, 1); // a copy: writable, and the ring is closed by now
    expect(views[0]!.getUint32(SEQ + 8 + RECORD * 2, true)).toBe(2);
  });
});
