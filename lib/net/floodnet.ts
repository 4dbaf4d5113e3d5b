// SPDX-License-Identifier: MIT
// A test network fit for a random-source SYN flood (tests, bench/detect, bench/guard): the
// flooded side answers every forged source through the veth, never through its default
// route, and the namespace side can receive XDP_TX frames. Traffic stays between the two ends.
//
// Why: a random-source SYN flood makes the flooded host answer SYN-ACKs (and RSTs) to random
// addresses, which its main routing table would send out of the default route, to hosts that
// are not ours. A policy rule sends everything from the flooded side's addresses through a
// table whose only route is the veth, where the namespace (not a router) drops what is not
// its own. prepareFloodNet checks with `ip route get` that it worked before anyone floods.
import { execFileSync, spawn, ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import type { TestNet } from './testnet';

export interface FloodNet {
  /** Removes the routing rules and tables (the TestNet itself is the caller's); idempotent. */
  destroy(): void;
}

export interface FloodNetOptions {
  /**
   * The network namespace the TestNet's host side lives in (its interface moved there by
   * the caller), when not the caller's own: rules, routes and the check are made in it.
   */
  netns?: string;
}

/** Forged sources the route check asks about (documentation ranges: RFC 5737, RFC 3849). */
const PROBE_V4 = '198.51.100.7';
const PROBE_V6 = '2001:db8::7';

function ipIn(netns: string | undefined, args: string[]): string {
  return execFileSync('ip', netns ? ['-n', netns, ...args] : args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Table ids used here: one per process and call, away from the usual small ids. */
let calls = 0;

/** The interface the kernel would send a packet from `from` to `to` through (in `netns`, default the caller's); undefined when it has no route. */
export function routeDevice(from: string, to: string, netns?: string): string | undefined {
  let out: string;
  try {
    out = ipIn(netns, ['route', 'get', to, 'from', from]);
  } catch {
    return undefined; // unreachable
  }
  return /\bdev (\S+)/.exec(out)?.[1];
}

/**
 * Replies from the host side's veth addresses go back through the veth (a policy rule and a
 * table of their own, IPv4 and IPv6), so SYN-ACKs to forged sources reach the namespace,
 * which drops them (it does not forward), instead of the default route. Throws, with
 * nothing left behind, unless `ip route get` then sends a forged source's reply through the
 * veth. GRO on the namespace's end enables the NAPI a veth needs to receive frames sent back
 * with XDP_TX.
 */
export function prepareFloodNet(tn: TestNet, options: FloodNetOptions = {}): FloodNet {
  const { netns } = options;
  const table = String(100000 + ((process.pid * 8 + calls++) % 1000000));
  const undo: string[][] = [];
  const destroy = (): void => {
    for (const r of undo) { try { ipIn(netns, r); } catch { /* gone already, or with the interface */ } }
    undo.length = 0;
  };
  try {
    for (const [fam, addr, via, probe] of [['-4', tn.hostV4, tn.nsV4, PROBE_V4], ['-6', tn.hostV6, tn.nsV6, PROBE_V6]] as const) {
      // Through the namespace's address as a gateway: one neighbour entry for every forged
      // source (on-link, each would need its own resolution and overflow the table).
      ipIn(netns, [fam, 'route', 'add', 'default', 'via', via, 'dev', tn.hostIf, 'table', table]);
      undo.push([fam, 'route', 'flush', 'table', table]);
      ipIn(netns, [fam, 'rule', 'add', 'from', addr, 'lookup', table, 'pref', '90']);
      undo.unshift([fam, 'rule', 'del', 'from', addr, 'lookup', table, 'pref', '90']);
      const dev = routeDevice(addr, probe, netns);
      if (dev !== tn.hostIf) throw new Error(`replies from ${addr} to a forged source would leave through ${dev ?? 'no route'}, not ${tn.hostIf}: refusing to flood`);
    }
    execFileSync('ip', ['netns', 'exec', tn.ns, 'ethtool', '-K', tn.nsIf, 'gro', 'on'], { stdio: 'pipe' });
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
 * Call prepareFloodNet first.
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
