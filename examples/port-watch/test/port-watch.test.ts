// SPDX-License-Identifier: MIT
// The probe on a real kernel: real connections over loopback, observed at tc ingress.
// Needs root (CAP_BPF, CAP_NET_ADMIN). Under other kernels: npm run test:kernels.
import { describe, expect, it } from 'vitest';
import net from 'node:net';
import { once } from 'node:events';
import { attachedPrograms } from 'tcpscope/bpf';
import { watchPort } from '../src/port-watch.js';
import type { NewConnection } from '../src/port-watch.js';

async function listen(host: string): Promise<net.Server> {
  const server = net.createServer((s) => { s.resume(); s.on('end', () => s.end()); });
  server.listen(0, host);
  await once(server, 'listening');
  return server;
}

async function connect(port: number, host: string): Promise<number> {
  const socket = net.connect({ port, host });
  await once(socket, 'connect');
  const local = socket.localPort!;
  socket.end('hello');
  socket.resume();
  await once(socket, 'close');
  return local;
}

const isRoot = process.getuid?.() === 0;
if (!isRoot && process.env.TCPSCOPE_REQUIRE_BPF === '1') throw new Error('port-watch needs root (BPF and tc), and TCPSCOPE_REQUIRE_BPF=1 forbids skipping');

describe.skipIf(!isRoot)('port-watch', () => {
  it('reports each new connection to the watched port, IPv4 and IPv6, and counts per port', async () => {
    const server = await listen('::'); // dual-stack: IPv4 and IPv6 clients
    const port = (server.address() as net.AddressInfo).port;
    const other = await listen('127.0.0.1');
    const otherPort = (other.address() as net.AddressInfo).port;
    try {
      using watcher = watchPort(port, { interface: 'lo' });
      const clientPorts = [await connect(port, '127.0.0.1'), await connect(port, '127.0.0.1'), await connect(port, '::1')];
      await connect(otherPort, '127.0.0.1'); // counted for its port, not reported

      const seen: NewConnection[] = [];
      for await (const c of watcher) {
        seen.push(c);
        if (seen.length === 3) break;
      }
      expect(seen.map((c) => c.sourcePort)).toEqual(clientPorts);
      expect(seen.map((c) => c.source)).toEqual(['127.0.0.1', '127.0.0.1', '::1']);
      expect(seen.map((c) => c.family)).toEqual(['ipv4', 'ipv4', 'ipv6']);
      expect(seen.every((c) => c.port === port && c.window > 0)).toBe(true);

      const stats = watcher.stats(port);
      expect(stats?.syns).toBe(3n);
      // At least SYN, ACK and data+FIN from each of the three clients.
      expect(stats!.segments).toBeGreaterThanOrEqual(9n);
      expect(stats!.bytes).toBeGreaterThan(0n);
      expect(watcher.stats(otherPort)?.syns).toBe(1n);
      expect(watcher.segmentsTotal()).toBeGreaterThanOrEqual(stats!.segments);
      expect(attachedPrograms('lo').some((p) => p.name === 'watch_port')).toBe(true);
    } finally {
      server.close();
      other.close();
    }
    // Disposing the watcher detached the program.
    expect(attachedPrograms('lo').some((p) => p.name === 'watch_port')).toBe(false);
  });

  it('refuses a port out of range before attaching anything', () => {
    expect(() => watchPort(70000)).toThrow('port must be 1-65535, got 70000');
  });
});
