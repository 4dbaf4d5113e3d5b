// SPDX-License-Identifier: MIT
// SYN accounting: the packets program counts SYNs (SYN without ACK) per source address
// (/32, /128), per source prefix (/24, /64) and per destination port in per-CPU LRU maps.
// synCounts() runs it without events; snapshot() reads the maps into sorted rows.
import type { InterfaceRef } from '../bpf/netif';
import type { XdpMode } from '../bpf/program';
import type { PacketFilter } from '../filter/compile';
import { formatAddress } from '../net/addr';
import { familyName } from './tcp_common';
import { PacketCounters, PacketHook, PacketProgram, openPacketProgram } from './packets';

export interface SynCountsOptions {
  interfaces: InterfaceRef[];
  /** tc ingress (default) or XDP. */
  hook?: PacketHook;
  xdpMode?: XdpMode;
  /** Only SYNs this filter accepts are counted. */
  filter?: PacketFilter;
}

export interface SynSourceRow {
  /** Address or prefix base, as text. */
  address: string;
  family: 'ipv4' | 'ipv6';
  /** 32/128 for addresses, 24/64 for prefixes. */
  prefixLen: number;
  /** `address/prefixLen` */
  cidr: string;
  count: number;
  /** CLOCK_MONOTONIC ns of the last SYN. */
  lastNs: bigint;
}

export interface SynPortRow {
  port: number;
  count: number;
  lastNs: bigint;
}

export interface SynSnapshot {
  /** SYNs counted since start (or the last reset), from the kernel counter. */
  total: number;
  /** Per source address, most SYNs first. */
  sources: SynSourceRow[];
  /** Per /24 (IPv4) or /64 (IPv6) source prefix, most SYNs first. */
  prefixes: SynSourceRow[];
  /** Per destination port, most SYNs first. */
  ports: SynPortRow[];
}

interface AddrKey { addr: number[]; family: number; prefix_len: number }
interface CountValue { count: bigint; last_ns: bigint }

function sumCpus(values: CountValue[]): { count: number; lastNs: bigint } {
  let count = 0;
  let lastNs = 0n;
  for (const v of values) {
    count += Number(v.count);
    if (v.last_ns > lastNs) lastNs = v.last_ns;
  }
  return { count, lastNs };
}

function wordsToBytes(words: number[]): Uint8Array {
  const out = new Uint8Array(16);
  const view = new DataView(out.buffer);
  words.forEach((w, i) => view.setUint32(i * 4, w, true));
  return out;
}

function byCount<T extends { count: number }>(a: T, b: T): number {
  return b.count - a.count;
}

/** Reads the SYN tables of a running packet program. */
export function readSynTables(program: PacketProgram, limit = Infinity): SynSnapshot {
  const rows = (map: string): SynSourceRow[] => program.object.perCpuMap<AddrKey, CountValue>(map).entries().map(([k, v]) => {
    const { count, lastNs } = sumCpus(v);
    const address = formatAddress(wordsToBytes(k.addr), k.family);
    return { address, family: familyName(k.family), prefixLen: k.prefix_len, cidr: `${address}/${k.prefix_len}`, count, lastNs };
  }).sort(byCount).slice(0, limit);
  const ports = program.object.perCpuMap<number, CountValue>('syn_by_port').entries().map(([port, v]) => ({ port, ...sumCpus(v) })).sort(byCount).slice(0, limit);
  return { total: program.counters().syns, sources: rows('syn_by_addr'), prefixes: rows('syn_by_prefix'), ports };
}

/** A running SYN counter. */
export class SynCounter implements Disposable {
  readonly program: PacketProgram;
  private closed = false;

  /** @internal */
  constructor(program: PacketProgram) {
    this.program = program;
  }

  /** Current counts, sorted by count (most first); `limit` rows per table. */
  snapshot(options: { limit?: number } = {}): SynSnapshot {
    if (this.closed) throw new Error('synCounts: the counter is closed');
    return readSynTables(this.program, options.limit ?? Infinity);
  }

  /** Empties the tables (the total counter keeps counting). */
  reset(): void {
    for (const map of ['syn_by_addr', 'syn_by_prefix', 'syn_by_port']) this.program.object.map(map).clear();
  }

  setFilter(filter: PacketFilter | undefined): void {
    this.program.setFilter(filter);
  }

  counters(): PacketCounters {
    return this.program.counters();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.program.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * Counts incoming SYNs per source, source prefix and destination port, in the kernel.
 *
 * @example
 * using syns = synCounts({ interfaces: ['eth0'] });
 * setInterval(() => console.table(syns.snapshot({ limit: 10 }).sources), 1000);
 */
export function synCounts(options: SynCountsOptions): SynCounter {
  return new SynCounter(openPacketProgram(options, 'synCounts'));
}
