// SPDX-License-Identifier: MIT
// The demo's network: a veth pair whose far end lives in a network namespace with no name,
// held by a child process (lib/demo/holder.js under `unshare --net`). The namespace exists
// only as long as that child, and the child only as long as the pipe from this process:
// when this process ends, however it ends, the kernel removes the namespace and the veth
// pair. Nothing is named in /run/netns, so nothing can be left behind for `cleanup`.
import { execFileSync, spawn, ChildProcessWithoutNullStreams } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { packageRoot } from '../bpf/paths';
import { BpfPermissionError } from '../bpf/errors';
import { hasCapability } from '../bpf/sys';

export interface DemoNet {
  /** Host-side interface (its ingress sees what the namespace sends). */
  readonly hostIf: string;
  /** The interface's name inside the namespace. */
  readonly nsIf: string;
  /** The process holding the namespace. */
  readonly holderPid: number;
  readonly hostV4: string;
  readonly nsV4: string;
  readonly hostV6: string;
  readonly nsV6: string;
  /** Makes `connections` connections from the namespace to host:port, writing `bytes` on each. */
  traffic(host: string, port: number, connections: number, bytes: number): Promise<void>;
  /** Removes the veth pair and ends the holder (the namespace goes with it). Idempotent. */
  destroy(): void;
}

/** Host-side veth names of the demo: `tsd<pid>x<n>` (interfaces.ts leaves them out of "every interface"). */
export const DEMO_VETH_PATTERN = /^tsd\d+x\d+$/;

const HOLDER_SCRIPT = path.join(packageRoot(), 'lib', 'demo', 'holder.js');
let counter = 0;

function ip(args: string[]): void {
  execFileSync('ip', args, { stdio: 'pipe' });
}

export async function createDemoNet(): Promise<DemoNet> {
  if (!hasCapability('CAP_SYS_ADMIN')) {
    throw new BpfPermissionError('the demo needs root (CAP_SYS_ADMIN, to create its network namespace): run it as root, or watch real traffic with --no-demo');
  }
  const n = counter++;
  const octet = (process.pid + n * 7) % 200 + 20;
  const hostIf = `tsd${process.pid}x${n}`;
  const nsIf = 'demo0';
  const hostV4 = `10.198.${octet}.1`, nsV4 = `10.198.${octet}.2`;
  const hostV6 = `fd00:198:${octet.toString(16)}::1`, nsV6 = `fd00:198:${octet.toString(16)}::2`;

  let holder: ChildProcessWithoutNullStreams;
  try {
    holder = spawn('unshare', ['--net', '--', process.execPath, HOLDER_SCRIPT], { stdio: ['pipe', 'pipe', 'pipe'] });
  } catch (e) {
    throw new Error(`demo: cannot start the namespace holder: ${(e as Error).message}`);
  }
  let stderr = '';
  holder.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  holder.stdin.on('error', () => { /* the holder is gone: requests fail below */ });
  const waiting = new Map<number, { resolve(): void; reject(e: Error): void }>();
  let ready: (() => void) | undefined;
  let exited: Error | undefined;
  const failAll = (e: Error): void => {
    for (const w of waiting.values()) w.reject(e);
    waiting.clear();
  };
  readline.createInterface({ input: holder.stdout }).on('line', (line) => {
    let msg: { ready?: boolean; id?: number; ok?: boolean; error?: string };
    try { msg = JSON.parse(line) as typeof msg; } catch { return; }
    if (msg.ready) { ready?.(); return; }
    const w = msg.id === undefined ? undefined : waiting.get(msg.id);
    if (!w) return;
    waiting.delete(msg.id!);
    if (msg.ok) w.resolve(); else w.reject(new Error(msg.error ?? 'failed'));
  });
  const exit = new Promise<void>((resolve) => holder.once('exit', () => resolve()));
  holder.once('exit', (code, signal) => {
    exited = new Error(`demo: the namespace holder ended (${signal ?? `exit ${code}`})${stderr.trim() ? `: ${stderr.trim().split('\n')[0]}` : ''}`);
    failAll(exited);
  });
  holder.once('error', (e) => { exited = new Error(`demo: cannot start the namespace holder (unshare): ${e.message}`); failAll(exited); });

  let id = 0;
  const request = (body: object): Promise<void> => new Promise((resolve, reject) => {
    if (exited) return reject(exited);
    const key = ++id;
    waiting.set(key, { resolve, reject });
    holder.stdin.write(`${JSON.stringify({ id: key, ...body })}\n`);
  });

  let destroyed = false;
  const destroy = (): void => {
    if (destroyed) return;
    destroyed = true;
    try { ip(['link', 'del', hostIf]); } catch { /* not made yet, or gone with the namespace */ }
    holder.stdin.end();
    holder.kill('SIGKILL');
  };

  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      new Promise<void>((resolve) => { ready = resolve; }),
      exit.then(() => { throw exited ?? new Error('demo: the namespace holder ended'); }),
      new Promise<void>((_, reject) => { timer = setTimeout(() => reject(new Error('demo: the namespace holder did not start within 10 s')), 10_000); }),
    ]);
    clearTimeout(timer);
    const pid = holder.pid!;
    ip(['link', 'add', hostIf, 'type', 'veth', 'peer', 'name', nsIf, 'netns', String(pid)]);
    ip(['addr', 'add', `${hostV4}/24`, 'dev', hostIf]);
    ip(['-6', 'addr', 'add', `${hostV6}/64`, 'dev', hostIf, 'nodad']);
    ip(['link', 'set', hostIf, 'up']);
    await request({ setup: { ifname: nsIf, v4: `${nsV4}/24`, v6: `${nsV6}/64` } });
  } catch (e) {
    clearTimeout(timer);
    destroy();
    throw e;
  }
  return {
    hostIf, nsIf, holderPid: holder.pid!, hostV4, nsV4, hostV6, nsV6,
    traffic: (host, port, connections, bytes) => request({ traffic: { host, port, connections, bytes } }),
    destroy,
  };
}
