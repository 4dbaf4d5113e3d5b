// SPDX-License-Identifier: MIT
// connections(): lifecycle, owners and byte counts on real traffic, IPv4 and IPv6, over
// loopback and over a veth pair into a namespace the test creates.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connections, ConnectionEvent } from '../lib/probes';
import { bpfAvailable, eventually } from './helpers/bpf';
import { createTestNet, TestNet, TRAFFIC_SCRIPT } from './helpers/netns';
import { collect, connectAndWrite, freePort, selfComm, startServer, ServerChild } from './helpers/tcpprobe';
import { once } from 'node:events';

const enabled = bpfAvailable('connections');

function closesOn(events: ConnectionEvent[], port: number): ConnectionEvent[] {
  return events.filter((e) => e.type === 'close' && (e.sport === port || e.dport === port));
}

describe.skipIf(!enabled)('connections()', () => {
  it('rejects bad options before attaching anything', () => {
    expect(() => connections({ ports: [70000] })).toThrow(/connections\(\): bad port '70000'/);
    expect(() => connections({ cidrs: ['10.0.0.0/33'] })).toThrow(/bad prefix length/);
    expect(() => connections({ pids: [-1] })).toThrow(/bad pid '-1'/);
    expect(() => connections({ events: ['opened' as never] })).toThrow(/bad event type 'opened'/);
    expect(() => connections({ family: 'ipx' as never })).toThrow(/family must be/);
    expect(() => connections({ colour: 1 } as never)).toThrow(/unknown option 'colour'/);
  });

  for (const [family, host] of [['ipv4', '127.0.0.1'], ['ipv6', '::1']] as const) {
    it(`${family} loopback: owner of passive (listener seeded at start) and active opens, payload bytes, duration`, async () => {
      const port = freePort();
      // Listening before the probe starts: its owner comes from the /proc seed.
      const server = await startServer(host, port, 'tcps-srv-seed');
      try {
        await using probe = connections({ ports: [port] });
        const { events } = collect(probe);
        const { localPort } = await connectAndWrite(host, port, 12345);
        const closes = await eventually(() => { const c = closesOn(events, port); return c.length >= 2 ? c : undefined; }, 5000, 'two close events');
        const passive = closes.find((e) => e.sport === port)!;
        const active = closes.find((e) => e.dport === port)!;
        expect(passive.direction).toBe('passive');
        expect(passive.pid).toBe(server.pid);
        expect(passive.comm).toBe('tcps-srv-seed');
        expect(passive.bytesReceived).toBe(12345);
        expect(passive.bytesAcked).toBe(0);
        expect(passive.family).toBe(family);
        expect(passive.daddr).toBe(host === '::1' ? '::1' : host);
        expect(passive.dport).toBe(localPort);
        expect(active.direction).toBe('active');
        expect(active.pid).toBe(process.pid);
        expect(active.comm).toBe(selfComm());
        expect(active.owner).not.toBe('listener');
        expect(active.bytesAcked).toBe(12345);
        expect(active.bytesReceived).toBe(0);
        expect(active.durationNs).toBeGreaterThan(0);
        expect(active.cookie).toBeGreaterThan(0n);
        expect(passive.cookie).toBeGreaterThan(0n);
        expect(passive.cookie).not.toBe(active.cookie);
        // The passive open is completed in softirq on this (the client's) CPU: the owner
        // must still be the server, as found through the listener.
        const passiveOpen = events.find((e) => e.type === 'open' && e.sport === port)!;
        expect(passiveOpen).toBeDefined();
        expect(passiveOpen.owner).toBe('listener');
        expect(passiveOpen.pid).toBe(server.pid);
        expect(passiveOpen.cookie).toBe(passive.cookie);
        // Every transition of the active side, in order.
        const activeStates = events.filter((e) => e.type === 'state' && e.cookie === active.cookie).map((e) => e.newstate);
        expect(activeStates).toEqual(['ESTABLISHED', 'FIN_WAIT1', 'FIN_WAIT2', 'CLOSE']);
        expect(probe.stats().lost).toBe(0);
      } finally {
        await server.stop();
      }
    });
  }

  it('owner of a listener started after the probe (CLOSE->LISTEN in process context), filtered by pid', async () => {
    const port = freePort();
    await using probe = connections({ ports: [port], events: ['open', 'close'] });
    const { events } = collect(probe);
    const server = await startServer('127.0.0.1', port, 'tcps-srv-late');
    try {
      await connectAndWrite('127.0.0.1', port, 777);
      const passive = await eventually(() => closesOn(events, port).find((e) => e.sport === port), 5000, 'passive close');
      expect(passive.pid).toBe(server.pid);
      expect(passive.comm).toBe('tcps-srv-late');
      expect(passive.bytesReceived).toBe(777);
      expect(events.every((e) => e.type !== 'state')).toBe(true);
    } finally {
      await server.stop();
    }
    // A pid filter keeps only that process's connections.
    const server2 = await startServer('127.0.0.1', port + 1, 'tcps-srv-pid');
    try {
      await using byPid = connections({ pids: [server2.pid], events: ['close'] });
      const { events: mine } = collect(byPid);
      await connectAndWrite('127.0.0.1', port + 1, 10);
      // The client (this process) reaches TIME_WAIT before the server takes the last ACK and
      // closes: had the filter let the client's close through, it would be read first.
      await eventually(() => mine.some((e) => e.sport === port + 1), 5000, 'close of the server connection');
      expect(mine.every((e) => e.pid === server2.pid)).toBe(true);
      expect(mine.some((e) => e.sport === port + 1)).toBe(true);
    } finally {
      await server2.stop();
    }
  });

  describe('over a veth pair into a namespace', () => {
    let tn: TestNet;
    beforeAll(() => { tn = createTestNet(); });
    afterAll(() => tn?.destroy());

    for (const family of ['ipv4', 'ipv6'] as const) {
      it(`${family}: passive connections from the namespace to a host server, bytes and owner`, async () => {
        const port = freePort();
        const hostAddr = family === 'ipv4' ? tn.hostV4 : tn.hostV6;
        const server: ServerChild = await startServer(hostAddr, port, 'tcps-srv-veth');
        try {
          await using probe = connections({ ports: [port], events: ['close'], cidrs: [family === 'ipv4' ? `${tn.nsV4}/32` : `${tn.nsV6}/128`] });
          const { events } = collect(probe);
          const child = tn.spawnNode(TRAFFIC_SCRIPT, [hostAddr, String(port), '3', '4096']);
          const [code] = (await once(child, 'exit')) as [number];
          expect(code).toBe(0);
          const passive = await eventually(() => { const c = events.filter((e) => e.sport === port); return c.length >= 3 ? c : undefined; }, 5000, 'three passive closes');
          for (const e of passive) {
            expect(e.pid).toBe(server.pid);
            expect(e.comm).toBe('tcps-srv-veth');
            expect(e.bytesReceived).toBe(4096);
            expect(e.family).toBe(family);
            expect(e.daddr).toBe(family === 'ipv4' ? tn.nsV4 : tn.nsV6);
          }
          // The client side lives in the namespace; CIDR filtering keeps only the ns address.
          const clientSide = events.filter((e) => e.dport === port);
          for (const e of clientSide) expect(e.saddr).toBe(family === 'ipv4' ? tn.nsV4 : tn.nsV6);
        } finally {
          await server.stop();
        }
      });
    }
  });
});
