// SPDX-License-Identifier: MIT
// A network namespace joined to the host by a veth pair, made and removed by tests, the
// demo and benchmarks. Traffic between the two ends never leaves this machine.
import { execFileSync, spawn, ChildProcess } from 'node:child_process';
import path from 'node:path';
import { packageRoot } from '../bpf/paths';

let counter = 0;

export interface TestNet {
  ns: string;
  /** Host-side interface (its ingress sees packets sent from the namespace). */
  hostIf: string;
  nsIf: string;
  hostV4: string;
  nsV4: string;
  hostV6: string;
  nsV6: string;
  /** Runs a command inside the namespace and returns stdout. */
  exec(cmd: string, args: string[]): string;
  /** Starts a node script inside the namespace. */
  spawnNode(script: string, args: string[]): ChildProcess;
  destroy(): void;
}

function ip(args: string[]): void {
  execFileSync('ip', args, { stdio: 'pipe' });
}

/** Namespace names carry the creating pid so `tcpscope cleanup` can tell orphans apart. */
export const TESTNET_PATTERN = /^tcps-(\d+)-(\d+)$/;

export function createTestNet(): TestNet {
  const n = counter++;
  const octet = (process.pid + n * 7) % 200 + 20;
  const ns = `tcps-${process.pid}-${n}`;
  const hostIf = `tsh${process.pid}x${n}`;
  const nsIf = `tsn${process.pid}x${n}`;
  const net: TestNet = {
    ns,
    hostIf,
    nsIf,
    hostV4: `10.199.${octet}.1`,
    nsV4: `10.199.${octet}.2`,
    hostV6: `fd00:199:${octet.toString(16)}::1`,
    nsV6: `fd00:199:${octet.toString(16)}::2`,
    exec(cmd, args) {
      return execFileSync('ip', ['netns', 'exec', ns, cmd, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    },
    spawnNode(script, args) {
      return spawn('ip', ['netns', 'exec', ns, process.execPath, script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    },
    destroy() {
      try { ip(['link', 'del', hostIf]); } catch { /* gone with the namespace */ }
      try { ip(['netns', 'del', ns]); } catch { /* already removed */ }
    },
  };
  try {
    ip(['netns', 'add', ns]);
    ip(['link', 'add', hostIf, 'type', 'veth', 'peer', 'name', nsIf, 'netns', ns]);
    ip(['addr', 'add', `${net.hostV4}/24`, 'dev', hostIf]);
    ip(['-6', 'addr', 'add', `${net.hostV6}/64`, 'dev', hostIf, 'nodad']);
    ip(['link', 'set', hostIf, 'up']);
    ip(['-n', ns, 'addr', 'add', `${net.nsV4}/24`, 'dev', nsIf]);
    ip(['-n', ns, '-6', 'addr', 'add', `${net.nsV6}/64`, 'dev', nsIf, 'nodad']);
    ip(['-n', ns, 'link', 'set', nsIf, 'up']);
    ip(['-n', ns, 'link', 'set', 'lo', 'up']);
  } catch (e) {
    net.destroy();
    throw e;
  }
  return net;
}

/** Node script that opens connections and writes bytes: `client.js HOST PORT CONNECTIONS BYTES`. */
export const TRAFFIC_SCRIPT = path.join(packageRoot(), 'lib', 'demo', 'client.js');

/** Removes test/demo namespaces (and their host-side veths) whose creating process is gone. */
export function removeOrphanTestNets(all = false): string[] {
  let names: string[] = [];
  try {
    names = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n').map((l) => l.split(' ')[0] ?? '');
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const ns of names) {
    const m = TESTNET_PATTERN.exec(ns);
    if (!m) continue;
    const pid = Number(m[1]);
    let alive = true;
    try { process.kill(pid, 0); } catch (e) { alive = (e as NodeJS.ErrnoException).code === 'EPERM'; }
    if (alive && !all) continue;
    try { ip(['link', 'del', `tsh${m[1]}x${m[2]}`]); } catch { /* went with the namespace */ }
    try { ip(['netns', 'del', ns]); removed.push(ns); } catch { /* already gone */ }
  }
  return removed;
}
