// SPDX-License-Identifier: MIT
// Consuming batches without starving the event loop. A ring that never runs dry resolves
// every read at once (microtasks only), so a plain `for await` over it never lets timers
// (ticks, /metrics scrapes, alert sinks) or I/O run. consumeBounded() handles at most
// about `sliceMs` of events before yielding to them, and yields after every batch.

/** Resolves after pending timers and I/O had their turn. */
export const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Longest slice of synchronous event handling before yielding, ms. */
export const SLICE_MS = 10;

/**
 * Feeds every event of `batches` to `handle`, yielding to timers and I/O after each batch
 * and within a batch every `sliceMs`. Stops early when `stopped()` turns true.
 */
export async function consumeBounded<E>(
  batches: AsyncIterable<readonly E[]>,
  handle: (event: E) => void,
  options: { sliceMs?: number; stopped?: () => boolean; onBatch?: (count: number) => void } = {},
): Promise<void> {
  const sliceMs = options.sliceMs ?? SLICE_MS;
  const stopped = options.stopped ?? (() => false);
  for await (const batch of batches) {
    options.onBatch?.(batch.length);
    let sliceStart = performance.now();
    for (let i = 0; i < batch.length; i++) {
      handle(batch[i]!);
      if ((i & 255) === 255 && performance.now() - sliceStart > sliceMs) {
        await yieldToLoop();
        if (stopped()) return;
        sliceStart = performance.now();
      }
    }
    await yieldToLoop();
    if (stopped()) return;
  }
}
