// SPDX-License-Identifier: MIT
// The kernel's events-per-second cap (bpf/include/rate_cap.h): beyond it events are counted
// as sampled, never silently dropped: delivered + sampled + lost equals what happened.
import { describe, expect, it } from 'vitest';
import { packets } from '../lib/probes/packets';
import { resets } from '../lib/probes';
import { bpfAvailable, eventually } from './helpers/bpf';
import { connectRefused, freePort } from './helpers/tcpprobe';
import { readSynTables } from '../lib/probes/syn-counts';
import net from 'node:net';
import { once } from 'node:events';

const enabled = bpfAvailable('event-cap');

describe('events-per-second cap', () => {
  it('rejects a cap that is not a number >= 10, naming the option', () => {
    expect(() => packets({ interfaces: ['lo'], maxEventsPerSec: 0 })).toThrow(/maxEventsPerSec must be a number >= 10, got 0/);
    expect(() => packets({ interfaces: ['lo'], maxEventsPerSec: Number.NaN })).toThrow(/maxEventsPerSec must be a number >= 10/);
    expect(() => resets({ maxEventsPerSec: 5 })).toThrow(/resets\(\): maxEventsPerSec must be a number >= 10, got 5/);
    expect(() => packets({ interfaces: ['lo'], synAdmission: -1 })).toThrow(/synAdmission must be an integer 0\.\./);
  });

  it.skipIf(!enabled)('packets: SYNs beyond the cap are counted as sampled; delivered + sampled + lost = matched', async () => {
    const port = await freePort();
    const probe = packets({ interfaces: ['lo'], filter: `dst port ${port} and syn`, maxEventsPerSec: 50 });
    let delivered = 0;
    const reading = (async () => { for await (const _ of probe) delivered++; })();
    try {
      for (let i = 0; i < 300; i++) await connectRefused('127.0.0.1', port);
      await eventually(() => probe.program.counters().matched >= 300, 5000, '300 SYNs matched');
      const matched = probe.program.counters().matched;
      await eventually(() => probe.stats().received + probe.stats().sampled + probe.stats().lost === matched, 5000, 'the ring drained');
      const s = probe.stats();
      expect(s.sampled).toBeGreaterThan(0);
      expect(s.received).toBeGreaterThan(0);
      // At most 5 per 100 ms slot for as many slots as the burst took (+1 for a partial slot).
      expect(s.received).toBeLessThan(300);
      expect(delivered).toBe(s.received);
    } finally {
      probe.close();
      await reading;
    }
  });

  it.skipIf(!enabled)('resets: resets beyond the cap are counted as sampled', async () => {
    // Connections aborted with SO_LINGER 0: a reset sent on every kernel (a closed port's
    // reset is traced only from 6.10).
    const server = net.createServer((c) => c.on('error', () => {}));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as net.AddressInfo).port;
    const probe = resets({ ports: [port], directions: ['sent'], maxEventsPerSec: 20 });
    const reading = (async () => { for await (const _ of probe) { /* count only */ } })();
    try {
      for (let i = 0; i < 200; i++) {
        const socket = net.connect({ host: '127.0.0.1', port });
        await once(socket, 'connect');
        socket.resetAndDestroy();
        await once(socket, 'close');
      }
      await eventually(() => probe.stats().received + probe.stats().sampled + probe.stats().lost >= 200, 5000, 'every reset accounted for');
      const s = probe.stats();
      expect(s.sampled).toBeGreaterThan(0);
      expect(s.received).toBeLessThan(200);
      expect(s.received + s.sampled + s.lost).toBe(200);
    } finally {
      probe.close();
      await reading;
      server.close();
    }
    // Still readable after close.
    expect(probe.stats().sampled).toBeGreaterThan(0);
  });

  it.skipIf(!enabled)('SYN sources enter the table through the sketch once heavy; SYN-ACKs and closed-port RSTs are counted at egress', async () => {
    const open = net.createServer((c) => c.destroy());
    open.listen(0, '127.0.0.1');
    await once(open, 'listening');
    const openPort = (open.address() as net.AddressInfo).port;
    const closedPort = await freePort();
    const probe = packets({ interfaces: ['lo'], filter: `dst port ${openPort} or dst port ${closedPort}`, countSyns: true, synAdmission: 20, egressCounters: true, maxEventsPerSec: 100 });
    try {
      // 10 SYNs: under the admission threshold, no row for 127.0.0.1 yet.
      for (let i = 0; i < 10; i++) await connectRefused('127.0.0.1', closedPort);
      expect(readSynTables(probe.program).sources.filter((r) => r.address === '127.0.0.1')).toEqual([]);
      // 120 more at once: whichever epochs they fall in, one holds >= 20 of them (unless they
      // spread over six epochs, 1.6 s), so the estimate reaches the threshold and the row appears.
      await Promise.all(Array.from({ length: 120 }, () => connectRefused('127.0.0.1', closedPort)));
      const row = readSynTables(probe.program).sources.find((r) => r.address === '127.0.0.1');
      expect(row).toBeDefined();
      // Entered with the sketch's estimate (>= 20), exact from then on: never more than were sent.
      expect(row!.count).toBeGreaterThanOrEqual(20);
      expect(row!.count).toBeLessThanOrEqual(130);
      // The port table counts every SYN however the sources fare.
      expect(readSynTables(probe.program).ports.find((p) => p.port === closedPort)?.count).toBe(130);
      for (let i = 0; i < 5; i++) {
        const c = net.connect(openPort, '127.0.0.1');
        c.on('error', () => {});
        await once(c, 'close');
      }
      const k = probe.program.counters();
      expect(k.syns).toBe(135);
      expect(k.rstsOut).toBeGreaterThanOrEqual(130);
      expect(k.synacksOut).toBeGreaterThanOrEqual(5);
    } finally {
      probe.close();
      open.close();
    }
  });
});
