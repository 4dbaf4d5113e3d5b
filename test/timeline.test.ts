// SPDX-License-Identifier: MIT
// Connection timelines joined from every probe, on a real connection.
import { describe, expect, it } from 'vitest';
import net from 'node:net';
import { once } from 'node:events';
import { timelines } from '../lib/timeline/stream';
import { TimelineBuilder, describeEntry } from '../lib/timeline';
import type { ConnectionTimeline } from '../lib/timeline';
import type { ConnectionEvent } from '../lib/probes/connections';
import { bpfAvailable } from './helpers/bpf';
import { freePort } from './helpers/tcpprobe';

const enabled = bpfAvailable('timeline');
// The builder joins on the text addresses; the bytes only fill the type.
const BYTES = new Uint8Array(16);

describe('TimelineBuilder', () => {
  const conn = (type: ConnectionEvent['type'], tsNs: bigint, over: Partial<ConnectionEvent> = {}): ConnectionEvent => ({
    type, time: new Date(), tsNs, cookie: 7n, pid: 10, tid: 10, comm: 'srv', owner: 'listener', direction: 'passive', family: 'ipv4',
    saddr: '10.0.0.1', sport: 80, daddr: '10.0.0.2', dport: 5555, saddrBytes: BYTES, daddrBytes: BYTES, oldstate: 'SYN_RECV', newstate: 'ESTABLISHED', durationNs: 0, bytesReceived: 0, bytesAcked: 0, netns: 1, ...over,
  });

  it('orders entries by kernel time and joins cookie-less events by endpoints', () => {
    const b = new TimelineBuilder();
    b.addConnection(conn('open', 200n));
    b.addTcpEvent('rtt', { type: 'rtt', time: new Date(), tsNs: 150n, cookie: 0n, family: 'ipv4', saddr: '10.0.0.1', sport: 80, daddr: '10.0.0.2', dport: 5555, saddrBytes: BYTES, daddrBytes: BYTES });
    b.addTcpEvent('retransmit', { type: 'retransmit', time: new Date(), tsNs: 250n, cookie: 7n, family: 'ipv4', saddr: '10.0.0.1', sport: 80, daddr: '10.0.0.2', dport: 5555, saddrBytes: BYTES, daddrBytes: BYTES });
    const done = b.addConnection(conn('close', 300n, { oldstate: 'LAST_ACK', newstate: 'CLOSE' }))!;
    expect(done.closed).toBe(true);
    expect(done.entries.map((e) => `${e.kind}@${e.tsNs}`)).toEqual(['rtt@150', 'state@200', 'retransmit@250', 'state@300']);
    expect(done.comm).toBe('srv');
    expect(b.size).toBe(0);
  });

  it('records a transition the kernel reports twice (state + open/close) once', () => {
    const b = new TimelineBuilder();
    b.addConnection(conn('state', 200n));
    b.addConnection(conn('open', 200n));
    b.addConnection(conn('state', 300n, { oldstate: 'LAST_ACK', newstate: 'CLOSE' }));
    const done = b.addConnection(conn('close', 300n, { oldstate: 'LAST_ACK', newstate: 'CLOSE', bytesReceived: 42 }))!;
    expect(done.entries.map((e) => `${e.kind}@${e.tsNs}`)).toEqual(['state@200', 'state@300']);
    const last = done.entries[1]!;
    expect(last.kind === 'state' && last.connection.type).toBe('close'); // the entry keeps the totals
    expect(describeEntry(last, 200n)).toMatch(/LAST_ACK -> CLOSE \(rx 42 B/);
  });

  it('keeps the two sockets of a connection with both ends on this host apart', () => {
    const b = new TimelineBuilder();
    const server = { cookie: 7n, saddr: '127.0.0.1', sport: 80, daddr: '127.0.0.1', dport: 5555 };
    const client = { cookie: 8n, saddr: '127.0.0.1', sport: 5555, daddr: '127.0.0.1', dport: 80, direction: 'active' as const };
    b.addConnection(conn('state', 100n, { ...client, oldstate: 'SYN_SENT', newstate: 'ESTABLISHED' }));
    b.addConnection(conn('state', 110n, server));
    // Packets arriving at the server come from the client, and vice versa.
    const pkt = (tsNs: bigint, sport: number, dport: number) => ({ tsNs, family: 'ipv4', saddr: '127.0.0.1', daddr: '127.0.0.1', sport, dport, flagBits: 0x10, seq: 1, ack: 1, window: 100, payloadLen: 0 });
    b.addPacket(pkt(120n, 5555, 80) as never);
    b.addPacket(pkt(130n, 80, 5555) as never);
    b.addTcpEvent('rtt', { type: 'rtt', time: new Date(), tsNs: 140n, cookie: 0n, family: 'ipv4', saddr: '127.0.0.1', sport: 80, daddr: '127.0.0.1', dport: 5555, saddrBytes: BYTES, daddrBytes: BYTES });
    const s = b.addConnection(conn('close', 200n, { ...server, oldstate: 'LAST_ACK', newstate: 'CLOSE' }))!;
    const c = b.addConnection(conn('close', 210n, { ...client, oldstate: 'FIN_WAIT2', newstate: 'CLOSE' }))!;
    expect(s.cookie).toBe(7n);
    expect(c.cookie).toBe(8n);
    expect(s.entries.map((e) => `${e.kind}@${e.tsNs}`)).toEqual(['state@110', 'packet@120', 'rtt@140', 'state@200']);
    expect(c.entries.map((e) => `${e.kind}@${e.tsNs}`)).toEqual(['state@100', 'packet@130', 'state@210']);
  });

  it('keeps at most maxEntries and counts the rest', () => {
    const b = new TimelineBuilder({ maxEntries: 2 });
    for (let i = 0; i < 5; i++) b.addTcpEvent('rtt', { type: 'rtt', time: new Date(), tsNs: BigInt(i), cookie: 9n, family: 'ipv4', saddr: 'a', sport: 1, daddr: 'b', dport: 2, saddrBytes: BYTES, daddrBytes: BYTES });
    expect(b.get(9n)?.entries.length).toBe(2);
    expect(b.get(9n)?.truncated).toBe(3);
  });
});

describe.skipIf(!enabled)('timelines() on a real connection', () => {
  it('joins the SYN, the state changes and RTT samples of one loopback connection, one timeline per socket', async () => {
    const port = freePort();
    const controller = new AbortController();
    let attached!: () => void;
    const ready = new Promise<void>((resolve) => { attached = resolve; });
    const stream = timelines({ interfaces: ['lo'], ports: [port], signal: controller.signal, onReady: () => attached() });
    const got: ConnectionTimeline[] = [];
    const collecting = (async () => { for await (const t of stream) { got.push(t); if (got.length === 2) break; } })();
    await ready; // every probe attached
    const server = net.createServer((s) => { s.on('data', () => {}); s.on('end', () => s.end()); });
    server.listen(port, '127.0.0.1');
    await once(server, 'listening');
    const client = net.connect({ port, host: '127.0.0.1' });
    await once(client, 'connect');
    client.end(Buffer.alloc(50_000, 1));
    client.resume();
    await once(client, 'close');
    const timer = setTimeout(() => controller.abort(), 5_000);
    const t0 = Date.now();
    await collecting; // breaking out of timelines() returns without waiting for more events
    clearTimeout(timer);
    controller.abort();
    server.close();
    // The client's and the server's sockets: two timelines, two cookies.
    expect(got).toHaveLength(2);
    expect(Date.now() - t0).toBeLessThan(5_000); // not ended by the abort
    expect(got[0]!.cookie).not.toBe(got[1]!.cookie);
    const serverSide = got.find((t) => t.local.endsWith(`:${port}`))!;
    const clientSide = got.find((t) => t.remote.endsWith(`:${port}`))!;
    expect(serverSide).toBeDefined();
    expect(clientSide).toBeDefined();
    const syn = serverSide.entries.find((e) => e.kind === 'packet' && (e.packet.flagBits & 0x12) === 0x02);
    expect(syn).toBeDefined();
    expect(clientSide.entries.some((e) => e.kind === 'packet' && (e.packet.flagBits & 0x12) === 0x02)).toBe(false);
    for (const t of got) {
      const states = t.entries.flatMap((e) => (e.kind === 'state' ? [`${e.connection.oldstate}->${e.connection.newstate}`] : []));
      expect(states.length).toBeGreaterThanOrEqual(3);
      expect(new Set(states).size).toBe(states.length); // no transition printed twice
      const times = t.entries.map((e) => e.tsNs);
      expect([...times].sort((a, b) => (a < b ? -1 : 1))).toEqual(times);
    }
    expect([...serverSide.entries, ...clientSide.entries].map((e) => e.kind)).toContain('rtt');
  });
});
