// SPDX-License-Identifier: MIT
// A test network fit for a random-source SYN flood (tests and bench/guard): the host side
// answers every source through the veth, never through its default route, and the
// namespace side can receive XDP_TX frames. Traffic stays between the two ends.
import { execFileSync, spawn, ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import type { TestNet } from './testnet';

export interface FloodNet {
  /** Removes the routing rules (the TestNet itself is the caller's). */
  destroy(): void;
}

function ip(args: string[]): void {
  execFileSync('ip', args, { stdio: 'pipe' });
}

/**
 * Replies from the host's veth addresses go back through the veth (a policy rule and a
 * table of their own), so SYN-ACKs to forged sources reach the namespace, which drops them
 * (it does not forward), instead of the host's default route. GRO on the namespace's end
 * enables the NAPI a veth needs to receive frames sent back with XDP_TX.
 */
export function prepareFloodNet(tn: TestNet): FloodNet {
  const table = String(1000 + (process.pid % 30000) * 2 + (Number(/x(\d+)$/.exec(tn.hostIf)?.[1] ?? 0) % 2));
  const rules: string[][] = [];
  const destroy = (): void => {
    for (const r of rules) { try { ip(r); } catch { /* gone already */ } }
    rules.length = 0;
  };
  try {
    for (const [fam, addr, via] of [['-4', tn.hostV4, tn.nsV4], ['-6', tn.hostV6, tn.nsV6]] as const) {
      // Through the namespace's address as a gateway: one neighbour entry for every forged
      // source (on-link, each would need its own resolution and overflow the table).
      ip([fam, 'route', 'add', 'default', 'via', via, 'dev', tn.hostIf, 'table', table]);
      rules.push([fam, 'route', 'flush', 'table', table]);
      ip([fam, 'rule', 'add', 'from', addr, 'lookup', table, 'pref', '90']);
      rules.unshift([fam, 'rule', 'del', 'from', addr, 'lookup', table, 'pref', '90']);
    }
    tn.exec('ethtool', ['-K', tn.nsIf, 'gro', 'on']);
  } catch (e) {
    destroy();
    throw e;
  }
  return { destroy };
}

export interface Flood {
  child: ChildProcess;
  /** Resolves when hping3 has exited (the flood is over). */
  done: Promise<void>;
  stop(): void;
}

/**
 * A SYN flood from random IPv4 sources (hping3 -S --flood --rand-source) from the
 * namespace to `host`:`port`, bounded by `seconds` (timeout sends SIGINT, then SIGKILL).
 */
export function startSynFlood(tn: TestNet, host: string, port: number, seconds: number): Flood {
  const child = spawn('ip', ['netns', 'exec', tn.ns, 'timeout', '-s', 'INT', '-k', '2', String(seconds),
    'hping3', '-q', '-S', '--flood', '--rand-source', '-p', String(port), host], { stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr?.resume();
  const done = once(child, 'exit').then(() => undefined);
  return {
    child,
    done,
    stop() { if (child.exitCode === null && child.signalCode === null) child.kill('SIGINT'); },
  };
}
