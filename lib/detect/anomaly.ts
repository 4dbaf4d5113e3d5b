// SPDX-License-Identifier: MIT
// Rate anomalies: for each metric (SYNs, connections, resets, retransmits) and each key
// (a source address, a local port, and 'all'), the rate per interval is folded into an
// EWMA mean and deviation. After warm-up, a rate above mean + k deviations (and above an
// absolute floor) raises an alert; it clears after `clearIntervals` calm intervals.
// While raised the baseline learns at a fraction of alpha, so an attack is not learned
// as normal but a lasting change eventually is.
import { AlertEmitter, round } from './alert';
import { Ewma } from './ewma';
import type { AnomalyMetric, AnomalyThresholds } from './thresholds';

export type AnomalyScope = 'source' | 'port' | 'all';

interface KeyState {
  ewma: Ewma;
  /** Events in the current interval. */
  current: number;
  idle: number;
  raised: boolean;
  raisedAt: number;
  calm: number;
  peak: number;
  raisedEvidence?: Record<string, unknown>;
}

export const ANOMALY_METRICS: readonly AnomalyMetric[] = ['syn', 'connection', 'reset', 'retransmit'];

export class AnomalyDetector {
  private readonly keys = new Map<string, KeyState>();
  private intervalStart: number | undefined;

  constructor(private readonly t: AnomalyThresholds, private readonly emit: AlertEmitter) {}

  /** `n` events of `metric` for a source address and/or a local port at `now`. */
  record(now: number, metric: AnomalyMetric, where: { source?: string; port?: number }, n = 1): void {
    this.roll(now);
    if (n <= 0) return;
    if (where.source !== undefined) this.bump(`${metric}/source/${where.source}`, n);
    if (where.port !== undefined) this.bump(`${metric}/port/${where.port}`, n);
    this.bump(`${metric}/all/all`, n);
  }

  /** Count for the 'all' key only (e.g. SYNs known per source and per port separately). */
  recordScoped(now: number, metric: AnomalyMetric, scope: AnomalyScope, key: string, n: number): void {
    this.roll(now);
    if (n > 0) this.bump(`${metric}/${scope}/${key}`, n);
  }

  /** Closes every interval that ended by `now`. */
  tick(now: number): void {
    this.roll(now);
  }

  /** Baseline of a key (tests, stats). */
  baseline(metric: AnomalyMetric, scope: AnomalyScope, key: string): { mean: number; stdDev: number; intervals: number } | undefined {
    const st = this.keys.get(`${metric}/${scope}/${key}`);
    return st && { mean: st.ewma.mean, stdDev: st.ewma.stdDev, intervals: st.ewma.count };
  }

  get tracked(): number {
    return this.keys.size;
  }

  private bump(id: string, n: number): void {
    let st = this.keys.get(id);
    if (!st) {
      if (this.keys.size >= this.t.maxKeys * ANOMALY_METRICS.length * 2) this.evict();
      st = { ewma: new Ewma(this.t.alpha), current: 0, idle: 0, raised: false, raisedAt: 0, calm: 0, peak: 0 };
      this.keys.set(id, st);
    }
    st.current += n;
  }

  private roll(now: number): void {
    if (this.intervalStart === undefined) {
      this.intervalStart = Math.floor(now / this.t.intervalMs) * this.t.intervalMs;
      return;
    }
    // Close each whole interval up to now; long gaps fold in zeros (bounded to idleIntervals).
    let closed = 0;
    let start: number = this.intervalStart;
    while (now >= start + this.t.intervalMs) {
      const end: number = start + this.t.intervalMs;
      this.closeInterval(end);
      start = end;
      if (++closed >= this.t.idleIntervals) {
        start = Math.floor(now / this.t.intervalMs) * this.t.intervalMs;
        break;
      }
    }
    this.intervalStart = start;
  }

  private closeInterval(end: number): void {
    const perSec = this.t.intervalMs / 1000;
    for (const [id, st] of this.keys) {
      const rate = st.current / perSec;
      st.current = 0;
      st.idle = rate === 0 ? st.idle + 1 : 0;
      const warm = st.ewma.count >= this.t.warmupIntervals;
      const mean = st.ewma.mean;
      const sd = Math.max(st.ewma.stdDev, this.t.minStdDev);
      if (warm && !st.raised && rate >= this.t.minRate && rate > mean + this.t.k * sd) {
        st.raised = true;
        st.raisedAt = end;
        st.calm = 0;
        st.peak = rate;
        const ev = this.evidence(id, rate, mean, sd, end);
        st.raisedEvidence = ev;
        const [metric, scope, key] = splitId(id);
        this.emit({
          kind: 'rate_anomaly', state: 'raised', at: new Date(end), key: `rate_anomaly/${id}`, evidence: ev,
          summary: `${metric} rate ${scope === 'all' ? 'overall' : `for ${scope} ${key}`} ${round(rate)}/s vs baseline ${round(mean)}±${round(sd)}/s (${round((rate - mean) / sd)} sigma > ${this.t.k})`,
        });
      } else if (st.raised) {
        st.peak = Math.max(st.peak, rate);
        if (rate <= mean + this.t.clearK * sd) st.calm++;
        else st.calm = 0;
        if (st.calm >= this.t.clearIntervals) {
          st.raised = false;
          const [metric, scope, key] = splitId(id);
          this.emit({
            kind: 'rate_anomaly', state: 'cleared', at: new Date(end), key: `rate_anomaly/${id}`,
            evidence: { ...st.raisedEvidence, peakRate: round(st.peak), rate: round(rate), raisedAt: new Date(st.raisedAt), durationMs: end - st.raisedAt },
            summary: `${metric} rate ${scope === 'all' ? 'overall' : `for ${scope} ${key}`} back to ${round(rate)}/s (baseline ${round(mean)}/s)`,
          });
        }
      }
      st.ewma.update(rate, st.raised ? this.t.alpha * this.t.raisedAlphaFraction : this.t.alpha);
      if (!st.raised && st.idle >= this.t.idleIntervals) this.keys.delete(id);
    }
  }

  private evidence(id: string, rate: number, mean: number, sd: number, end: number): Record<string, unknown> {
    const [metric, scope, key] = splitId(id);
    return {
      metric, scope, [scope === 'all' ? 'all' : scope]: scope === 'port' ? Number(key) : key,
      rate: round(rate), mean: round(mean), stdDev: round(sd), sigma: round((rate - mean) / sd), k: this.t.k,
      intervalMs: this.t.intervalMs, windowMs: this.t.intervalMs, intervals: this.keys.get(id)?.ewma.count ?? 0, minRate: this.t.minRate, at: new Date(end),
      sources: scope === 'source' ? [key] : [],
      ports: scope === 'port' ? [Number(key)] : [],
      rates: { [metric]: round(rate), baseline: round(mean) },
      thresholds: { [metric]: round(Math.max(mean + this.t.k * sd, this.t.minRate)) },
    };
  }

  private evict(): void {
    let victim: string | undefined;
    let most = -1;
    for (const [id, st] of this.keys) if (!st.raised && st.idle > most) { most = st.idle; victim = id; }
    if (victim) this.keys.delete(victim);
  }
}

function splitId(id: string): [AnomalyMetric, AnomalyScope, string] {
  const [metric, scope, ...rest] = id.split('/');
  return [metric as AnomalyMetric, scope as AnomalyScope, rest.join('/')];
}
