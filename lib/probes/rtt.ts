// SPDX-License-Identifier: MIT
// Smoothed RTT of TCP connections from tcp:tcp_probe: per-sample events and in-kernel log2
// histograms keyed by local port, remote address, or one for everything.
import { addr, compileFilter, familyName, TcpFilterOptions, EventCapOptions, TcpProbe } from './tcp_common';
import { BASE_FIELDS, RawTcpEvent, TcpEventBase, openTcpEvents } from './tcp_events';
import { lazyEvents } from './stream';
import type { RttHist as RawHist, RttHistKey as RawHistKey } from '../generated/tcpevents';

export interface RttEvent extends TcpEventBase {
  type: 'rtt';
  /** Smoothed RTT (tcp_sock srtt_us >> 3) in microseconds. saddr/sport are local. */
  srttUs: number;
  sndCwnd: number;
}

export type RttHistogramKey = 'local-port' | 'remote-addr' | 'all';

export interface RttBucket {
  /** Inclusive lower bound, microseconds. */
  lowUs: number;
  /** Inclusive upper bound, microseconds. */
  highUs: number;
  count: number;
}

export interface RttHistogramRow {
  /** 'port 8080', 'addr 10.0.0.1' or 'all' */
  label: string;
  port?: number;
  addr?: string;
  family?: 'ipv4' | 'ipv6';
  count: number;
  avgUs: number;
  /** Non-empty range from the first to the last non-zero bucket. */
  buckets: RttBucket[];
}

export interface RttOptions extends TcpFilterOptions, EventCapOptions {
  /** Deliver one event per sample. Default true (false: histograms only). */
  events?: boolean;
  /** Keep in-kernel histograms by this key. Default: none. */
  histogram?: RttHistogramKey | false;
}

export interface RttProbeExtra {
  /** Reads the kernel histograms now. Empty without the histogram option. */
  histogram(): RttHistogramRow[];
  /** Empties the kernel histograms (for interval output). */
  resetHistogram(): void;
}

const HIST_BY: Record<RttHistogramKey, number> = { 'local-port': 1, 'remote-addr': 2, all: 3 };


/** Turns log2 slot counts (slot s = [2^(s-1), 2^s - 1], slot 0 = 0) into buckets. */
export function log2Buckets(slots: ArrayLike<number | bigint>): RttBucket[] {
  let first = -1, last = -1;
  for (let i = 0; i < slots.length; i++) if (Number(slots[i]) > 0) { if (first < 0) first = i; last = i; }
  if (first < 0) return [];
  const out: RttBucket[] = [];
  for (let s = first; s <= last; s++) {
    out.push({ lowUs: s === 0 ? 0 : 2 ** (s - 1), highUs: s === 0 ? 0 : 2 ** s - 1, count: Number(slots[s]) });
  }
  return out;
}

const rttEvent = lazyEvents<RawTcpEvent, RttEvent>('RttEvent', {
  type: () => 'rtt',
  ...BASE_FIELDS,
  srttUs: (r) => r.srtt_us,
  sndCwnd: (r) => r.snd_cwnd,
});

/**
 * RTT samples of TCP connections, and optional in-kernel histograms.
 *
 * @example
 * await using r = rtt({ events: false, histogram: 'local-port' });
 * setTimeout(() => { console.log(r.histogram()); r.close(); }, 5000);
 */
export function rtt(options: RttOptions = {}): TcpProbe<RttEvent, RttProbeExtra> {
  const filter = compileFilter(options, 'rtt', ['maxEventsPerSec', 'events', 'histogram']);
  if (options.events !== undefined && typeof options.events !== 'boolean') throw new TypeError('rtt(): events must be a boolean');
  const by = options.histogram === undefined || options.histogram === false ? 0 : HIST_BY[options.histogram];
  if (by === undefined) throw new TypeError(`rtt(): histogram must be 'local-port', 'remote-addr', 'all' or false, got '${String(options.histogram)}'`);
  const events = options.events ?? true;
  if (!events && !by) throw new TypeError('rtt(): with events: false, choose a histogram key');
  const probe = openTcpEvents<RttEvent>({
    probe: 'rtt',
    filter,
    programs: [{ program: 'tev_rtt', tracepoint: 'tcp/tcp_probe', provides: 'RTT samples' }],
    globals: { rtt_events: events ? 1 : 0, rtt_hist_by: by },
    toEvent: rttEvent,
  }, options);
  const extra: RttProbeExtra = {
    histogram() {
      if (!by || probe.isClosed) return [];
      const rows: RttHistogramRow[] = [];
      for (const [key, value] of probe.object.map<RawHistKey, RawHist>('rtt_hists').entries()) {
        const count = Number(value.count);
        const row: RttHistogramRow = { label: 'all', count, avgUs: count ? Number(value.sum_us) / count : 0, buckets: log2Buckets(value.slots) };
        if (by === 1) { row.port = key.port; row.family = familyName(key.family); row.label = `port ${key.port}`; }
        if (by === 2) { row.addr = addr(key.addr, key.family); row.family = familyName(key.family); row.label = `addr ${row.addr}`; }
        rows.push(row);
      }
      return rows.sort((a, b) => b.count - a.count);
    },
    resetHistogram() {
      if (!by || probe.isClosed) return;
      probe.object.map('rtt_hists').clear();
    },
  };
  return Object.assign(probe, extra);
}
