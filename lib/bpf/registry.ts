// SPDX-License-Identifier: MIT
// Attachments that outlive their process (legacy tc filters, netlink XDP) are recorded in
// /run/tcpscope/attachments so `tcpscope cleanup` can remove what a killed process left.
// BPF links (tcx, XDP links, cgroup, tracepoints) die with their fds and are not recorded.
import fs from 'node:fs';
import path from 'node:path';
import { native } from './native';
import type { NativeLinkDescription } from './native';
import { interfaceName } from './netif';

export const REGISTRY_DIR = process.env.TCPSCOPE_RUN_DIR ?? '/run/tcpscope/attachments';

export interface PersistentAttachment extends NativeLinkDescription {
  pid: number;
  program: string;
  programId: number;
  ifname: string | undefined;
  createdAt: string;
}

let sequence = 0;

/** Records an attachment; returns the file to remove on detach, or undefined if nothing persists. */
export function recordAttachment(description: NativeLinkDescription, program: string, programId: number): string | undefined {
  if (description.kind !== 'tc' && !(description.kind === 'xdp' && description.netlink)) return undefined;
  const entry: PersistentAttachment = {
    ...description,
    pid: process.pid,
    program,
    programId,
    ifname: description.ifindex ? interfaceName(description.ifindex) : undefined,
    createdAt: new Date().toISOString(),
  };
  try {
    fs.mkdirSync(REGISTRY_DIR, { recursive: true });
    const file = path.join(REGISTRY_DIR, `${process.pid}-${++sequence}.json`);
    fs.writeFileSync(file, JSON.stringify(entry));
    return file;
  } catch {
    return undefined; // an unwritable /run only costs the cleanup record
  }
}

export function forgetAttachment(file: string | undefined): void {
  if (file) fs.rmSync(file, { force: true });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export interface CleanupResult {
  removed: PersistentAttachment[];
  kept: PersistentAttachment[];
  failed: Array<{ entry: PersistentAttachment; error: string }>;
}

/** Removes recorded attachments of dead processes (or of every process with `all`). */
export function cleanupAttachments(options: { all?: boolean } = {}): CleanupResult {
  const result: CleanupResult = { removed: [], kept: [], failed: [] };
  if (!fs.existsSync(REGISTRY_DIR)) return result;
  for (const name of fs.readdirSync(REGISTRY_DIR)) {
    const file = path.join(REGISTRY_DIR, name);
    let entry: PersistentAttachment;
    try {
      entry = JSON.parse(fs.readFileSync(file, 'utf8')) as PersistentAttachment;
    } catch {
      fs.rmSync(file, { force: true });
      continue;
    }
    if (!options.all && alive(entry.pid)) {
      result.kept.push(entry);
      continue;
    }
    const err = entry.kind === 'tc'
      ? native().detachTcFilter(entry.ifindex ?? 0, entry.direction !== 'egress', entry.handle ?? 0, entry.priority ?? 0)
      : native().detachXdp(entry.ifindex ?? 0, entry.flags ?? 0, entry.programId);
    // ENOENT/ENODEV: already gone with its interface, or replaced by someone else's program.
    if (err === 0 || err === -2 || err === -19) {
      result.removed.push(entry);
      fs.rmSync(file, { force: true });
    } else {
      result.failed.push({ entry, error: `errno ${-err}` });
    }
  }
  return result;
}
