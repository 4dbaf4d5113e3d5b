// SPDX-License-Identifier: MIT
// Interfaces created and removed while tcpscope runs (a pod's veth, a VPN tunnel), from the
// kernel's rtnetlink link notifications as `ip -o monitor link` prints them (iproute2).
import { spawn, ChildProcess } from 'node:child_process';
import readline from 'node:readline';

export interface LinkWatch {
  /** Stops following (kills the monitor). */
  close(): void;
}

/** A link the kernel announced: new or changed, or `deleted`. */
export interface LinkNotice {
  ifindex: number;
  name: string;
  deleted: boolean;
}

/**
 * What follows interfaces (a packet program, a detector, a guard): attaches to one created
 * later, and lets go of one that disappeared (the kernel detached it already; letting go
 * drops the links and names kept for it). Both return false when there was nothing to do.
 */
export interface LinkFollower {
  addInterface(ifindex: number, name: string): boolean;
  removeInterface(ifindex: number): boolean;
}

/** `[Deleted ]N: NAME[@PEER]: <FLAGS> ...` of a new, changed or deleted link. */
export function parseMonitorLine(line: string): LinkNotice | undefined {
  const m = /^(Deleted )?(\d+): ([^:@\s]+)(?:@\S+)?: </.exec(line);
  return m ? { ifindex: Number(m[2]), name: m[3]!, deleted: m[1] !== undefined } : undefined;
}

/**
 * Calls `onLink` for every link the kernel announces from now on (new links, changes of
 * existing ones, deletions: the caller keeps what it has seen). `onError` hears why
 * following stopped (no `ip` command, ...).
 */
export function watchLinks(onLink: (link: LinkNotice) => void, onError: (message: string) => void): LinkWatch {
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
