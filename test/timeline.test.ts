// SPDX-License-Identifier: MIT
// Connection timelines joined from every probe, on a real connection.
import { describe, expect, it } from 'vitest';
import net from 'node:net';
import { once } from 'node:events';
import { timelines } from '../lib/timeline/stream';
import { TimelineBuilder } from '../lib/timeline';
import type { ConnectionTimeline } from '../lib/timeline';
import type { ConnectionEvent } from '../lib/probes/connections';
import { bpfAvailable } from './helpers/bpf';

const enabled = bpfAvailable('timeline');

describe('TimelineBuilder', () => {
  const conn = (type: ConnectionEvent['type'], tsNs: bigint, over: Partial<ConnectionEvent> = {}): ConnectionEvent => ({
    type, time: new Date(), tsNs, cookie: 7n, pid: 10, tid: 10, comm: 'srv', owner: 'listener', direction: 'passive', family: 'ipv4',
    saddr: '10.0.0.1', sport: 80, daddr: '10.0.0.2', dport: 5555, oldstate: 'SYN_RECV', newstate: 'ESTABLISHED', durationNs: 0, bytesReceived: 0, bytesAcked: 0, netns: 1, ...over,
  });

  it('orders entries by kernel time and joins cookie-less events by endpoints', () => {
    const b = new TimelineBuilder();
    b.addConnection(conn('open', 200n));
    b.addTcpEvent('rtt', { type: 'rtt', time: new Date(), tsNs: 150n, cookie: 0n, family: 'ipv4', saddr: '10.0.0.2', sport: 5555, daddr: '10.0.0.1', dport: 80 });
    b.addTcpEvent('retransmit', { type: 'retransmit', time: new Date(), tsNs: 250n, cookie: 7n, family: 'ipv4', saddr: '10.0.0.1', sport: 80, daddr: '10.0.0.2', dport: 5555 });
    const done = b.addConnection(conn('close', 300n, { oldstate: 'LAST_ACK', newstate: 'CLOSE' }))!;
    expect(done.closed).toBe(true);
    expect(done.entries.map((e) => `${e.kind}@${e.tsNs}`)).toEqual(['rtt@150', 'state@200', 'retransmit@250', 'state@300']);
    expect(done.comm).toBe('srv');
    expect(b.size).toBe(0);
  });

  it('keeps at most maxEntries and counts the rest', () => {
    const b = new TimelineBuilder({ maxEntries: 2 });
    for (let i = 0; i < 5; i++) b.addTcpEvent('rtt', { type: 'rtt', time: new Date(), tsNs: BigInt(i), cookie: 9n, family: 'ipv4', saddr: 'a', sport: 1, daddr: 'b', dport: 2 });
    expect(b.get(9n)?.entries.length).toBe(2);
    expect(b.get(9n)?.truncated).toBe(3);
  });
});

describe.skipIf(!enabled)('timelines() on a real connection', () => {
  it('joins the SYN, the state changes and RTT samples of one loopback connection', async () => {
    const port = 30000 + Math.floor(Math.random() * 20000);
    const controller = new AbortController();
    const stream = timelines({ interfaces: ['lo'], ports: [port], signal: controller.signal });
    const first = stream.next();
    await new Promise((r) => setTimeout(r, 500)); // probes attached
    const server = net.createServer((s) => { s.on('data', () => {}); s.on('end', () => s.end()); });
    server.listen(port, '127.0.0.1');
    await once(server, 'listening');
    const client = net.connect({ port, host: '127.0.0.1' });
    await once(client, 'connect');
    client.end(Buffer.alloc(50_000, 1));
    client.resume();
    await once(client, 'close');
    const timer = setTimeout(() => controller.abort(), 10_000);
    const value = (await first).value as ConnectionTimeline | undefined;
    clearTimeout(timer);
    controller.abort();
    server.close();
    await stream.return?.(undefined);
    expect(value).toBeDefined();
    const kinds = value!.entries.map((e) => e.kind);
    const syn = value!.entries.find((e) => e.kind === 'packet' && (e.packet.flags & 0x12) === 0x02);
    expect(syn).toBeDefined();
    expect(kinds.filter((k) => k === 'state').length).toBeGreaterThanOrEqual(3);
    expect(kinds).toContain('rtt');
    const times = value!.entries.map((e) => e.tsNs);
    expect([...times].sort((a, b) => (a < b ? -1 : 1))).toEqual(times);
    expect([value!.local, value!.remote].some((e) => e.endsWith(`:${port}`))).toBe(true);
  });
});
