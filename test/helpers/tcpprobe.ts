// SPDX-License-Identifier: MIT
// Helpers for the tests of the tracepoint TCP probes: collect events in the background,
// run a server child process, make connections.
import { spawn, ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import path from 'node:path';
import fs from 'node:fs';

export const TCP_SERVER = path.join(__dirname, 'tcp_server.js');

/** Reads a probe in the background; `events` fills as they arrive. */
export function collect<E>(probe: AsyncIterable<E>): { events: E[]; done: Promise<void> } {
  const events: E[] = [];
  const done = (async () => { for await (const e of probe) events.push(e); })();
  return { events, done };
}

/**
 * A random port below the kernel's ephemeral range (32768-60999 by default), so that it does
 * not collide with the local port of a connection some other test holds (EADDRINUSE).
 */
export function freePort(): number {
  return 20000 + Math.floor(Math.random() * 12768);
}

export interface ServerChild { child: ChildProcess; pid: number; comm: string; stop(): Promise<void> }

/** Starts tcp_server.js (optionally via a prefix command, e.g. `ip netns exec NS`). */
export async function startServer(host: string, port: number, title: string, prefix: string[] = []): Promise<ServerChild> {
  const argv = [...prefix, process.execPath, TCP_SERVER, host, String(port), title];
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const pid = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server on ${host}:${port} did not start: ${out}`)), 10000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /ready (\d+)/.exec(out);
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`server exited (${code}): ${out}`)); });
  });
  const comm = fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  return {
    child, pid, comm,
    async stop() {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      await once(child, 'exit');
    },
  };
}

/** Connects, writes `bytes`, half-closes, waits for the server's close. */
export async function connectAndWrite(host: string, port: number, bytes: number): Promise<{ localPort: number }> {
  const socket = net.connect({ host, port });
  await once(socket, 'connect');
  const localPort = socket.localPort!;
  socket.end(Buffer.alloc(bytes, 0x63));
  socket.resume();
  await once(socket, 'close');
  return { localPort };
}

/** Tries to connect to a closed port; resolves on the refusal. */
export async function connectRefused(host: string, port: number): Promise<number> {
  const socket = net.connect({ host, port });
  let localPort = 0;
  socket.on('lookup', () => {});
  await new Promise<void>((resolve) => {
    socket.on('error', () => resolve());
    socket.on('connect', () => { socket.destroy(); resolve(); });
    socket.on('ready', () => { localPort = socket.localPort ?? 0; });
  });
  return localPort;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export function selfComm(): string {
  return fs.readFileSync('/proc/self/comm', 'utf8').trim();
}
