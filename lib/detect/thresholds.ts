// SPDX-License-Identifier: MIT
// Every number a detector decides with: options with documented defaults (also listed in
// lib/detect/README.md). detect() takes any subset and fills in the rest.

/** SYN flood: SYNs without a completed handshake, over a sliding window. */
export interface SynFloodThresholds {
  /** Sliding window, ms. @defaultValue 5000 */
  windowMs: number;
  /** Window resolution (bucket width), ms. @defaultValue 500 */
  bucketMs: number;
  /**
   * SYNs are judged once they are this old, ms, so that a handshake completed just now (and
   * its event still on the way) is not taken for a half-open one. Delays SYN flood alerts
   * by as much. @defaultValue 1000
   */
  graceMs: number;
  /** Half-open SYNs per second from one source address that raise an alert. @defaultValue 50 */
  sourceRate: number;
  /** Half-open SYNs per second from one /24 (IPv4) or /64 (IPv6) prefix. @defaultValue 100 */
  prefixRate: number;
  /** Half-open SYNs per second to one destination port. @defaultValue 100 */
  portRate: number;
  /** Least share of a key's SYNs that must be half-open (0..1) to raise. @defaultValue 0.5 */
  minHalfOpenRatio: number;
  /**
   * A key also raises before its SYNs are graceMs old when its half-open SYNs of the last
   * graceMs, counted against every completion seen so far, reach this many times its limit:
   * a flood is then plain without waiting for late completion events. 0: never.
   * @defaultValue 10
   */
  surgeFactor: number;
  /** A raised key is calm when its rate falls below this fraction of its raise rate. @defaultValue 0.5 */
  clearFraction: number;
  /** How long a raised condition must stay calm before it is cleared, ms. @defaultValue 3000 */
  clearAfterMs: number;
  /** Listen-queue pressure: TcpExt ListenOverflows + ListenDrops increase within the window. @defaultValue 10 */
  listenDrops: number;
  /** Listen-queue pressure: TcpExt SyncookiesSent increase within the window. @defaultValue 10 */
  syncookies: number;
  /** Listen-queue pressure: SYN-ACK retransmissions within the window. @defaultValue 50 */
  synackRetransmits: number;
  /** Most keys (sources, prefixes, ports) tracked per scope. @defaultValue 16384 */
  maxKeys: number;
}

/** Port scan: scanlogd's weighting of distinct destination ports per source. */
export interface PortScanThresholds {
  /** Weight at which a source is a scanner. @defaultValue 21 */
  weightThreshold: number;
  /** Weight of a port below 1024. @defaultValue 3 */
  privilegedWeight: number;
  /** Weight of a port from 1024 up. @defaultValue 1 */
  highWeight: number;
  /** Longest gap between probes of one source that still continue its scan, ms. @defaultValue 3000 */
  delayMs: number;
  /** A raised scan clears after this long with no probe from its source, ms. @defaultValue 10000 */
  clearAfterMs: number;
  /** Most sources tracked. @defaultValue 4096 */
  maxSources: number;
  /** Most ports listed in an alert's evidence (the count is always exact). @defaultValue 1024 */
  maxPortsListed: number;
}

export type AnomalyMetric = 'syn' | 'connection' | 'reset' | 'retransmit';

/** Rate anomalies: an EWMA baseline per source and per port for each metric. */
export interface AnomalyThresholds {
  /** Rates are measured over intervals of this length, ms. @defaultValue 5000 */
  intervalMs: number;
  /** EWMA weight of the newest interval. @defaultValue 0.1 */
  alpha: number;
  /** Raise when a rate exceeds mean + k deviations. @defaultValue 4 */
  k: number;
  /** Calm when a rate is below mean + clearK deviations. @defaultValue 2 */
  clearK: number;
  /** Intervals a key must have been observed before it can alert. @defaultValue 12 */
  warmupIntervals: number;
  /** Rates (per second) below this never alert, whatever the baseline. @defaultValue 5 */
  minRate: number;
  /** Floor of the deviation (per second), so flat baselines do not alert on noise. @defaultValue 1 */
  minStdDev: number;
  /** Calm intervals in a row before an anomaly clears. @defaultValue 2 */
  clearIntervals: number;
  /** Baseline weight while raised, as a fraction of alpha (a lasting change is learned slowly). @defaultValue 0.1 */
  raisedAlphaFraction: number;
  /** Keys idle this many intervals are forgotten. @defaultValue 720 */
  idleIntervals: number;
  /** Most keys (per scope and metric) tracked. @defaultValue 4096 */
  maxKeys: number;
}

/** Sequence anomalies, from the kernel's own sequence checks (drop reasons) and checksums. */
export interface SequenceThresholds {
  /** Window for counting, ms. @defaultValue 10000 */
  windowMs: number;
  /** Segments outside the receive window (TCP_INVALID_SEQUENCE, TCP_OVERWINDOW, TCP_OLD_SEQUENCE drops) per source within the window. @defaultValue 10 */
  outOfWindowCount: number;
  /** Copies of one sequence number dropped as already received (TCP_OLD_DATA) within replayWindowMs that make it replay-like. @defaultValue 4 */
  replayCopies: number;
  /** Window for replayCopies, ms. @defaultValue 30000 */
  replayWindowMs: number;
  /** Also replay-like: this many copies of one sequence number ... @defaultValue 3 */
  burstCopies: number;
  /** ... all within this many ms (faster than any retransmission timer, TCP_RTO_MIN = 200 ms). @defaultValue 200 */
  burstMs: number;
  /** Bad TCP checksums (tcp:tcp_bad_csum) per source within the window. @defaultValue 5 */
  badChecksumCount: number;
  /** A raised condition clears after this long with no new evidence, ms. @defaultValue 10000 */
  clearAfterMs: number;
  /** Most connections tracked for repeats. @defaultValue 8192 */
  maxFlows: number;
}

export interface Thresholds {
  synFlood: SynFloodThresholds;
  portScan: PortScanThresholds;
  anomaly: AnomalyThresholds;
  sequence: SequenceThresholds;
}

export type ThresholdOptions = { [K in keyof Thresholds]?: Partial<Thresholds[K]> };

export const DEFAULT_THRESHOLDS: Readonly<Thresholds> = Object.freeze({
  synFlood: Object.freeze({
    windowMs: 5000, bucketMs: 500, graceMs: 1000, sourceRate: 50, prefixRate: 100, portRate: 100, minHalfOpenRatio: 0.5, surgeFactor: 10,
    clearFraction: 0.5, clearAfterMs: 3000, listenDrops: 10, syncookies: 10, synackRetransmits: 50, maxKeys: 16384,
  }),
  portScan: Object.freeze({
    weightThreshold: 21, privilegedWeight: 3, highWeight: 1, delayMs: 3000, clearAfterMs: 10000, maxSources: 4096, maxPortsListed: 1024,
  }),
  anomaly: Object.freeze({
    intervalMs: 5000, alpha: 0.1, k: 4, clearK: 2, warmupIntervals: 12, minRate: 5, minStdDev: 1, clearIntervals: 2,
    raisedAlphaFraction: 0.1, idleIntervals: 720, maxKeys: 4096,
  }),
  sequence: Object.freeze({
    windowMs: 10000, outOfWindowCount: 10, replayCopies: 4, replayWindowMs: 30000, burstCopies: 3, burstMs: 200,
    badChecksumCount: 5, clearAfterMs: 10000, maxFlows: 8192,
  }),
});

const FRACTIONS = new Set(['minHalfOpenRatio', 'clearFraction', 'alpha', 'raisedAlphaFraction']);

/** Fills in defaults and validates; throws TypeError naming the bad option. */
export function resolveThresholds(options: ThresholdOptions = {}): Thresholds {
  if (options === null || typeof options !== 'object') throw new TypeError('thresholds must be an object');
  const out = {} as Record<string, Record<string, number>>;
  for (const group of Object.keys(options)) {
    if (!Object.hasOwn(DEFAULT_THRESHOLDS, group)) throw new TypeError(`thresholds: unknown group '${group}' (known: ${Object.keys(DEFAULT_THRESHOLDS).join(', ')})`);
  }
  for (const [group, defaults] of Object.entries(DEFAULT_THRESHOLDS) as unknown as Array<[string, Record<string, number>]>) {
    const given = (options as Record<string, Record<string, unknown> | undefined>)[group] ?? {};
    if (given === null || typeof given !== 'object') throw new TypeError(`thresholds.${group} must be an object`);
    for (const key of Object.keys(given)) {
      if (!Object.hasOwn(defaults, key)) throw new TypeError(`thresholds.${group}: unknown option '${key}' (known: ${Object.keys(defaults).join(', ')})`);
      const v = given[key];
      if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new TypeError(`thresholds.${group}.${key} must be a finite number >= 0, got ${String(v)}`);
      if (FRACTIONS.has(key) && (v > 1 || (key === 'alpha' && v === 0))) throw new TypeError(`thresholds.${group}.${key} must be in ${key === 'alpha' ? '(0, 1]' : '[0, 1]'}, got ${v}`);
    }
    out[group] = { ...defaults, ...(given as Record<string, number>) };
  }
  const t = out as unknown as Thresholds;
  if (t.synFlood.bucketMs <= 0 || t.synFlood.bucketMs > t.synFlood.windowMs) throw new TypeError('thresholds.synFlood.bucketMs must be in (0, windowMs]');
  if (t.anomaly.intervalMs <= 0) throw new TypeError('thresholds.anomaly.intervalMs must be > 0');
  if (t.sequence.windowMs <= 0 || t.synFlood.windowMs <= 0) throw new TypeError('windowMs must be > 0');
  return t;
}
