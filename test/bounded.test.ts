// SPDX-License-Identifier: MIT
// consumeBounded(): a source that never runs dry (every read resolves at once) must not keep
// timers from running; a plain `for await` over it would.
import { describe, expect, it } from 'vitest';
import { consumeBounded } from '../lib/util/bounded';

/** Batches of `size` numbers forever (until `stop()`), each available at once. */
function endless(size: number): { source: AsyncIterable<number[]>; stop(): void } {
  let stopped = false;
  return {
    stop: () => { stopped = true; },
    source: {
      async *[Symbol.asyncIterator]() {
        let n = 0;
        while (!stopped) yield Array.from({ length: size }, () => n++);
      },
    },
  };
}

describe('consumeBounded', () => {
  it('lets a timer fire while a source that never runs dry is consumed, and hands every event over in order', async () => {
    const { source, stop } = endless(1000);
    let handled = 0;
    let last = -1;
    let inOrder = true;
    const done = consumeBounded(source, (e) => {
      if (e !== last + 1) inOrder = false;
      last = e;
      handled++;
    });
    const fired = await new Promise<number>((resolve) => {
      const start = performance.now();
      setTimeout(() => resolve(performance.now() - start), 5);
    });
    stop();
    await done;
    expect(handled).toBeGreaterThan(0);
    expect(inOrder).toBe(true);
    // Fired at its turn (well within a second), not after the source ran dry.
    expect(fired).toBeLessThan(1000);
  });

  it('yields within a long batch, and stops when asked', async () => {
    const { source, stop } = endless(2_000_000);
    let handled = 0;
    let stopNow = false;
    const done = consumeBounded(source, () => { handled++; }, { sliceMs: 1, stopped: () => stopNow });
    await new Promise((r) => setTimeout(r, 1)); // the subject: a timer gets its turn mid-batch
    // The timer ran before the first 2M-event batch was through.
    expect(handled).toBeLessThan(2_000_000);
    stopNow = true;
    await done;
    stop();
    const at = handled;
    await new Promise((r) => setTimeout(r, 5)); // the subject: no turn left scheduled runs after the stop
    expect(handled).toBe(at);
  });

  it('passes the source\'s error on', async () => {
    const failing: AsyncIterable<number[]> = {
      async *[Symbol.asyncIterator]() {
        yield [1];
        throw new Error('ring closed under us');
      },
    };
    await expect(consumeBounded(failing, () => {})).rejects.toThrow('ring closed under us');
  });
});
