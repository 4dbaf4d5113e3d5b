// SPDX-License-Identifier: MIT
// The examples the README points to run and do what they say.
import { describe, expect, it } from 'vitest';
import net from 'node:net';
import { once } from 'node:events';
import { countSyns } from '../examples/syn-counter/syncount';
import { slowConnections } from '../examples/library/slow-connections';
import { bpfAvailable } from './helpers/bpf';

const enabled = bpfAvailable('examples');

async function connect(port: number, host = '127.0.0.1', holdMs = 0): Promise<void> {
  const socket = net.connect({ port, host });
  await once(socket, 'connect');
  // Held open for its duration: how long a connection lasts is what slow-connections reports.
  if (holdMs) await new Promise((r) => setTimeout(r, holdMs));
  socket.end('hello');
  socket.resume();
  await once(socket, 'close');
}

describe.skipIf(!enabled)('examples', () => {
  it('syn-counter counts SYNs per source on loopback', async () => {
    const server = net.createServer((s) => { s.resume(); s.on('end', () => s.end()); });
    // Port 0: a random pick can collide with an ephemeral port in use (EADDRINUSE).
    server.listen(0);
    await once(server, 'listening');
    const port = (server.address() as net.AddressInfo).port;
    const reports: Array<Map<string, bigint>> = [];
    // countSyns loads and attaches before its first await: the SYNs below are all counted.
    const counting = countSyns('lo', 2, port, (c) => reports.push(c));
    for (let i = 0; i < 5; i++) await connect(port);
    for (let i = 0; i < 3; i++) await connect(port, '::1');
    const final = await counting;
    server.close();
    expect(final.get('127.0.0.1')).toBe(5n);
    expect(final.get('::1')).toBe(3n);
    expect(reports).toHaveLength(2);
  });

  it('slow-connections reports only connections above the threshold, with their owner', async () => {
    const server = net.createServer((s) => { s.resume(); s.on('end', () => s.end()); });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as net.AddressInfo).port;
    // The probe is attached before slowConnections' first await.
    const collecting = slowConnections(port, 3, 200);
    await connect(port);
    await connect(port, '127.0.0.1', 400);
    const rows = await collecting;
    server.close();
    // Both sides of the slow connection close on this host: the client's and the server's.
    expect(rows.length).toBe(2);
    expect(rows.every((r) => r.durationMs >= 200 && r.process.endsWith(`[${process.pid}]`))).toBe(true);
  });
});
