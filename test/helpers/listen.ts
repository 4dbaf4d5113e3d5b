// SPDX-License-Identifier: MIT
// A TCP server for tests, resolved once it listens.
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { eventually } from './bpf';

export interface ListenOptions {
  /** Accept queue length (Node's default: 511). */
  backlog?: number;
  /** 'drain' (default): read and discard, end when the peer ends; 'destroy': close each connection at once. */
  connections?: 'drain' | 'destroy';
}

/** Listens on `port` (0: any free port) of `host`; connection errors are ignored. */
export async function listen(port = 0, host = '127.0.0.1', options: ListenOptions = {}): Promise<net.Server> {
  const server = net.createServer((s) => {
    s.on('error', () => {});
    if (options.connections === 'destroy') { s.destroy(); return; }
    s.resume();
    s.on('end', () => s.end());
  });
  server.listen({ port, host, ...(options.backlog !== undefined ? { backlog: options.backlog } : {}) });
  await once(server, 'listening');
  return server;
}

/** A loopback port nothing listens on now (the kernel's pick for port 0). */
export async function unusedPort(): Promise<number> {
  const server = net.createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * Runs `connections` connections to `port` of `host` (a loopback address), one after
 * another, each sending `bytes` bytes and closing; resolves once the last has closed.
 */
export async function loopbackExchange(port: number, connections: number, bytes: number, host = '127.0.0.1'): Promise<void> {
  const server = await listen(port, host);
  for (let i = 0; i < connections; i++) {
    const c = net.connect(port, host);
    await once(c, 'connect');
    c.end(Buffer.alloc(bytes, 0x62));
    c.resume();
    await once(c, 'close');
  }
  server.close();
}

/**
 * Resolves once no connection of this host on `port` is still closing: only the listener and
 * TIME-WAIT are left, so every segment of them, the last ACK included, has been through the
 * stack and whatever watches it (tc ingress, packet sockets).
 */
export async function connectionsSettled(port: number, ms = 5000): Promise<void> {
  await eventually(() => {
    const rows = execFileSync('ss', ['-Htan', `( sport = :${port} or dport = :${port} )`], { encoding: 'utf8' });
    return rows.split('\n').every((row) => !row.trim() || /^(LISTEN|TIME-WAIT)\s/.test(row));
  }, ms, `the connections on port ${port} to finish closing`);
}
