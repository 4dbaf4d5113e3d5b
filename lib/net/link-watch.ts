// SPDX-License-Identifier: MIT
// Interfaces created while tcpscope runs (a pod's veth, a VPN tunnel), from the kernel's
// rtnetlink link notifications as `ip -o monitor link` prints them (iproute2).
import { spawn, ChildProcess } from 'node:child_process';
import readline from 'node:readline';

export interface LinkWatch {
  /** Stops following (kills the monitor). */
  close(): void;
}

/** `N: NAME[@PEER]: <FLAGS> ...` of a new or changed link; undefined for Deleted lines. */
export function parseMonitorLine(line: string): { ifindex: number; name: string } | undefined {
  const m = /^(\d+): ([^:@\s]+)(?:@\S+)?: </.exec(line);
  return m ? { ifindex: Number(m[1]), name: m[2]! } : undefined;
}

/**
 * Calls `onLink` for every link the kernel announces from now on (new links, and changes
 * of existing ones: the caller keeps what it has seen). `onError` hears why following
 * stopped (no `ip` command, ...).
 */
export function watchLinks(onLink: (link: { ifindex: number; name: string }) => void, onError: (message: string) => void): LinkWatch {
  let child: ChildProcess | undefined;
  let closed = false;
  try {
    child = spawn('ip', ['-o', 'monitor', 'link'], { stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    onError(`cannot follow new interfaces: ${(e as Error).message}`);
    return { close() {} };
  }
  child.on('error', (e) => { if (!closed) onError(`cannot follow new interfaces (ip -o monitor link): ${e.message}`); });
  child.on('exit', (code) => { if (!closed) onError(`stopped following new interfaces: ip monitor exited (${code})`); });
  readline.createInterface({ input: child.stdout! }).on('line', (line) => {
    const link = parseMonitorLine(line);
    if (link) onLink(link);
  });
  return {
    close() {
      if (closed) return;
      closed = true;
      child?.kill();
    },
  };
}
