// SPDX-License-Identifier: MIT
// TcpExt counters of /proc/net/netstat (this process's network namespace).
import fs from 'node:fs';

export interface ListenCounters {
  listenOverflows: number;
  listenDrops: number;
  syncookiesSent: number;
}

/** Parses the TcpExt section of /proc/net/netstat text. */
export function parseNetstat(text: string): Record<string, number> {
  const lines = text.split('\n');
  const out: Record<string, number> = {};
  for (let i = 0; i + 1 < lines.length; i++) {
    if (!lines[i]!.startsWith('TcpExt:') || !lines[i + 1]!.startsWith('TcpExt:')) continue;
    const names = lines[i]!.trim().split(/\s+/).slice(1);
    const values = lines[i + 1]!.trim().split(/\s+/).slice(1);
    names.forEach((n, j) => { out[n] = Number(values[j] ?? 0); });
    break;
  }
  return out;
}

/** Reads ListenOverflows, ListenDrops and SyncookiesSent; undefined when unreadable. */
export function readListenCounters(file = '/proc/net/netstat'): ListenCounters | undefined {
  try {
    const ext = parseNetstat(fs.readFileSync(file, 'utf8'));
    return { listenOverflows: ext['ListenOverflows'] ?? 0, listenDrops: ext['ListenDrops'] ?? 0, syncookiesSent: ext['SyncookiesSent'] ?? 0 };
  } catch {
    return undefined;
  }
}

/** Increase from `prev` to `next` (counters that went back count from zero). */
export function counterDelta(prev: ListenCounters, next: ListenCounters): ListenCounters {
  const d = (a: number, b: number) => (b >= a ? b - a : b);
  return { listenOverflows: d(prev.listenOverflows, next.listenOverflows), listenDrops: d(prev.listenDrops, next.listenDrops), syncookiesSent: d(prev.syncookiesSent, next.syncookiesSent) };
}
