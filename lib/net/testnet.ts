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

export function createTestNet(): TestNet {
  const id = `${process.pid % 10000}${counter++}`;
  const octet = (process.pid + counter * 7) % 200 + 20;
  const ns = `tcps-${id}`;
  const hostIf = `tsh${id}`.slice(0, 15);
  const nsIf = `tsn${id}`.slice(0, 15);
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
