// SPDX-License-Identifier: MIT
// The demo behind `tcpscope watch` on a machine without traffic: a veth pair into a
// namespace made for the purpose, a server on the host side, and a short burst of real
// connections from inside the namespace. The namespace has no name and dies with this
// process (see netns.ts): nothing outlives it, even a SIGKILL.
import { once } from 'node:events';
import net from 'node:net';
import { createDemoNet, DemoNet } from './netns';

export interface Demo {
  net: DemoNet;
  port: number;
  /** Runs `connections` connections over IPv4 and half as many over IPv6, `bytes` each; returns how many. */
  drive(connections: number, bytes: number): Promise<number>;
  close(): void;
}

export async function startDemo(): Promise<Demo> {
  const tn = await createDemoNet();
  const servers: net.Server[] = [];
  try {
    const port = 18000 + (process.pid % 1000);
    for (const host of [tn.hostV4, tn.hostV6]) {
      const server = net.createServer((s) => { s.on('data', () => {}); s.on('end', () => s.end('ok\n')); s.on('error', () => {}); });
      server.listen(port, host);
      await once(server, 'listening');
      servers.push(server);
    }
    const run = async (host: string, count: number, bytes: number): Promise<void> => {
      try {
        await tn.traffic(host, port, count, bytes);
      } catch (e) {
        throw new Error(`demo traffic to ${host}:${port} failed: ${(e as Error).message}`);
      }
    };
    return {
      net: tn,
      port,
      async drive(connections, bytes) {
        const v6 = Math.max(1, Math.floor(connections / 2));
        await run(tn.hostV4, connections, bytes);
        await run(tn.hostV6, v6, bytes);
        return connections + v6;
      },
      close() {
        for (const s of servers) s.close();
        tn.destroy();
      },
    };
  } catch (e) {
    for (const s of servers) s.close();
    tn.destroy();
    throw e;
  }
}
