// SPDX-License-Identifier: MIT
// Keeps the host's answers to a spoofed flood on the test's own veth. A random-source SYN
// flood makes the host answer SYN-ACKs (and RSTs) to random addresses, which the main
// routing table would send out of the default route, to hosts that are not ours. A policy
// rule sends everything from the test's host-side address through a table whose only route
// is the veth, where the namespace (not a router) drops what is not its own.
import { execFileSync } from 'node:child_process';

function ip(args: string[]): void {
  execFileSync('ip', args, { stdio: 'pipe' });
}

/** Table ids used here: one per process and call, away from the usual small ids. */
let calls = 0;

/**
 * Routes every IPv4 packet from `address` into `iface`, whatever its destination; returns
 * the function that removes the rule and its table (idempotent).
 */
export function confineReplies(address: string, iface: string): () => void {
  const table = String(100000 + ((process.pid * 8 + calls++) % 1000000));
  ip(['route', 'add', 'default', 'dev', iface, 'table', table]);
  try {
    ip(['rule', 'add', 'from', `${address}/32`, 'lookup', table, 'pref', '90']);
  } catch (e) {
    try { ip(['route', 'flush', 'table', table]); } catch { /* nothing to flush */ }
    throw e;
  }
  let removed = false;
  return () => {
    if (removed) return;
    removed = true;
    try { ip(['rule', 'del', 'from', `${address}/32`, 'lookup', table, 'pref', '90']); } catch { /* already gone */ }
    try { ip(['route', 'flush', 'table', table]); } catch { /* gone with the interface */ }
  };
}

/** The interface the kernel would send a packet from `from` to `to` through (e.g. to check confineReplies). */
export function routeDevice(from: string, to: string): string | undefined {
  const out = execFileSync('ip', ['route', 'get', to, 'from', from], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return /\bdev (\S+)/.exec(out)?.[1];
}
