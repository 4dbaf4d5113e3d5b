// SPDX-License-Identifier: MIT
// A consumer that never catches up with its ring must not starve the event loop: the
// reader yields a macrotask turn between bounded runs of batches, so timers (a detector's
// tick, a /metrics scrape) fire on time during a flood. Real SYNs from hping3 to loopback.
import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { packets } from '../lib/probes';
import { bpfAvailable } from './helpers/bpf';
import { freePort } from './helpers/tcpprobe';

const enabled = bpfAvailable('reader turns');

/** Spins the CPU for `ms`: a consumer slower than the flood keeps the ring from ever emptying. */
function busy(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) { /* spin */ }
}

describe.skipIf(!enabled)('reader event-loop turns', () => {
  it('a timer scheduled while the ring is flooded fires within budget', async () => {
    const port = freePort();
    const stop = new AbortController();
    const probe = packets({ interfaces: ['lo'], filter: `dst port ${port} and syn`, latencyMs: 10, signal: stop.signal });
    // 10k SYN/s for at most 4 s, to a closed port on loopback (answered with RSTs).
    const flood = spawn('hping3', ['-S', '-q', '-i', 'u100', '-c', '40000', '-p', String(port), '127.0.0.1'], { stdio: 'ignore' });
    const floodEnded = new Promise<void>((resolve) => flood.once('exit', () => resolve()));
    const guard = setTimeout(() => stop.abort(), 10_000);
    const delay = monitorEventLoopDelay({ resolution: 5 });
    const lateness: number[] = [];
    let armed = false;
    let armedAt = 0;
    // Time spent working on batches, and the share of the timed window it took.
    let busyMs = 0;
    let busyShare = 0;
    try {
      const TIMERS = 10;
      const PERIOD = 50;
      const tick = (due: number, left: number): void => {
        setTimeout(() => {
          lateness.push(performance.now() - due);
          if (left > 1) tick(performance.now() + PERIOD, left - 1);
          else {
            busyShare = busyMs / (performance.now() - armedAt);
            stop.abort();
          }
        }, PERIOD);
      };
      for await (const _batch of probe.batches()) {
        // 8 ms of work per batch (under the reader's 10 ms turn budget, so it reads a second
        // batch before it yields): longer than hping3, paced but late on a loaded machine,
        // leaves the ring without a record, so every read finds one.
        const started = performance.now();
        busy(8);
        if (armed) busyMs += performance.now() - started;
        else {
          // the flood has reached the ring: time timers from now on
          armed = true;
          armedAt = performance.now();
          delay.enable();
          tick(performance.now() + PERIOD, TIMERS);
        }
      }
      delay.disable();
      expect(lateness).toHaveLength(TIMERS);
      // The reader kept reading while the timers ran: the ring was busy all along. Had a read
      // found it empty, the reader would have slept (10 ms, or until the producer's wake-up)
      // and the timers would have run in that sleep. So most of the window went on batches,
      // one after the other. (A count of records would measure hping3's rate instead, which
      // falls to a fraction under load, while one record per batch keeps the reader busy.)
      expect(busyShare).toBeGreaterThan(0.5);
      expect(Math.max(...lateness)).toBeLessThan(100);
      expect(delay.percentile(99) / 1e6).toBeLessThan(100);
    } finally {
      clearTimeout(guard);
      flood.kill();
      await floodEnded;
      probe.close();
    }
  });
});
