// SPDX-License-Identifier: MIT
// A consumer that never catches up with its ring must not starve the event loop: the
// reader yields a macrotask turn between bounded runs of batches, so timers (a detector's
// tick, a /metrics scrape) fire on time during a flood. Real SYNs from hping3 to loopback.
import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { packets } from '../lib/probes';
import { bpfAvailable } from './helpers/bpf';

const enabled = bpfAvailable('reader turns');

/** Spins the CPU for `ms`: a consumer slower than the flood keeps the ring from ever emptying. */
function busy(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) { /* spin */ }
}

describe.skipIf(!enabled)('reader event-loop turns', () => {
  it('a timer scheduled while the ring is flooded fires within budget', async () => {
    const port = 20000 + Math.floor(Math.random() * 20000);
    const stop = new AbortController();
    const probe = packets({ interfaces: ['lo'], filter: `dst port ${port} and syn`, latencyMs: 10, signal: stop.signal });
    // 10k SYN/s for at most 4 s, to a closed port on loopback (answered with RSTs).
    const flood = spawn('hping3', ['-S', '-q', '-i', 'u100', '-c', '40000', '-p', String(port), '127.0.0.1'], { stdio: 'ignore' });
    const floodEnded = new Promise<void>((resolve) => flood.once('exit', () => resolve()));
    const guard = setTimeout(() => stop.abort(), 10_000);
    const delay = monitorEventLoopDelay({ resolution: 5 });
    const lateness: number[] = [];
    let armed = false;
    let receivedWhileTiming = 0;
    let emptyAfterArming = 0;
    try {
      const TIMERS = 10;
      const PERIOD = 50;
      let received0 = 0;
      const tick = (due: number, left: number): void => {
        setTimeout(() => {
          lateness.push(performance.now() - due);
          if (left > 1) tick(performance.now() + PERIOD, left - 1);
          else {
            receivedWhileTiming = probe.stats().received - received0;
            stop.abort();
          }
        }, PERIOD);
      };
      for await (const events of probe.batches()) {
        if (events.length === 0) emptyAfterArming++;
        busy(3);
        if (!armed) {
          // the flood has reached the ring: time timers from now on
          armed = true;
          received0 = probe.stats().received;
          delay.enable();
          tick(performance.now() + PERIOD, TIMERS);
        }
      }
      delay.disable();
      expect(lateness).toHaveLength(TIMERS);
      // The reader kept reading while the timers ran: the ring was busy all along.
      expect(receivedWhileTiming).toBeGreaterThan(TIMERS * PERIOD * 2);
      expect(emptyAfterArming).toBe(0);
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
