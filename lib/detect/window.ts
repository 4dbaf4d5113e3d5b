// SPDX-License-Identifier: MIT
// Sliding-window counters: counts per key in fixed time buckets, summed over the last
// `windowMs`. Time is passed in (ms), so tests drive it with synthetic clocks.

export interface SlidingCounterOptions {
  /** Length of the window, ms. */
  windowMs: number;
  /** Bucket width, ms (window resolution). Default windowMs / 10. */
  bucketMs?: number;
  /** Most keys kept; the least recently updated is dropped beyond it. Default 16384. */
  maxKeys?: number;
  /** Extra history kept before the window, ms, for sumBetween() (default 0). */
  historyMs?: number;
}

interface Ring {
  counts: Float64Array;
  /** Bucket number (floor(t / bucketMs)) each slot holds. */
  slots: Float64Array;
  last: number;
}

/** Counts per key over a sliding time window, in buckets. */
export class SlidingCounter<K = string> {
  readonly windowMs: number;
  readonly bucketMs: number;
  readonly maxKeys: number;
  private readonly nb: number;
  private readonly windowBuckets: number;
  private readonly rings = new Map<K, Ring>();

  constructor(options: SlidingCounterOptions) {
    if (!(options.windowMs > 0)) throw new RangeError('windowMs must be > 0');
    this.windowMs = options.windowMs;
    this.bucketMs = options.bucketMs ?? Math.max(1, options.windowMs / 10);
    if (!(this.bucketMs > 0) || this.bucketMs > this.windowMs) throw new RangeError('bucketMs must be in (0, windowMs]');
    this.nb = Math.ceil((this.windowMs + (options.historyMs ?? 0)) / this.bucketMs);
    this.windowBuckets = Math.ceil(this.windowMs / this.bucketMs);
    this.maxKeys = options.maxKeys ?? 16384;
  }

  /** Adds `n` at time `t` (ms). */
  add(key: K, t: number, n = 1): void {
    let ring = this.rings.get(key);
    if (!ring) {
      if (this.rings.size >= this.maxKeys) this.evictOldest();
      ring = { counts: new Float64Array(this.nb), slots: new Float64Array(this.nb).fill(-Infinity), last: t };
      this.rings.set(key, ring);
    }
    const bucket = Math.floor(t / this.bucketMs);
    const i = ((bucket % this.nb) + this.nb) % this.nb;
    if (ring.slots[i] !== bucket) {
      ring.slots[i] = bucket;
      ring.counts[i] = 0;
    }
    ring.counts[i]! += n;
    if (t > ring.last) ring.last = t;
  }

  /**
   * Adds like add() when `key` is tracked or there is room; otherwise leaves the counter as
   * it is and returns false (no eviction scan: for keys that arrive faster than they matter).
   */
  addIfRoom(key: K, t: number, n = 1): boolean {
    if (this.rings.size >= this.maxKeys && !this.rings.has(key)) return false;
    this.add(key, t, n);
    return true;
  }

  /** Sum over the window ending at `now` (buckets after now - windowMs, up to now). */
  sum(key: K, now: number): number {
    const ring = this.rings.get(key);
    if (!ring) return 0;
    const newest = Math.floor(now / this.bucketMs);
    return this.sumBuckets(ring, newest - this.windowBuckets + 1, newest);
  }

  /** Sum of the window ending at `end` (which may lie up to historyMs in the past). */
  sumEndingAt(key: K, end: number): number {
    const ring = this.rings.get(key);
    if (!ring) return 0;
    const newest = Math.floor(end / this.bucketMs);
    return this.sumBuckets(ring, newest - this.windowBuckets + 1, newest);
  }

  /** Sum of the buckets that hold the last `ms` before `now` (at least the bucket of `now`). */
  sumLast(key: K, now: number, ms: number): number {
    const ring = this.rings.get(key);
    if (!ring) return 0;
    const newest = Math.floor(now / this.bucketMs);
    return this.sumBuckets(ring, newest - Math.max(1, Math.ceil(ms / this.bucketMs)) + 1, newest);
  }

  private sumBuckets(ring: Ring, oldest: number, newest: number): number {
    let total = 0;
    for (let i = 0; i < this.nb; i++) {
      const b = ring.slots[i]!;
      if (b >= oldest && b <= newest) total += ring.counts[i]!;
    }
    return total;
  }

  /** Average per second over the window. */
  rate(key: K, now: number): number {
    return this.sum(key, now) / (this.windowMs / 1000);
  }

  has(key: K): boolean {
    return this.rings.has(key);
  }

  keys(): IterableIterator<K> {
    return this.rings.keys();
  }

  get size(): number {
    return this.rings.size;
  }

  /** Drops keys with nothing in the window ending at `now`. */
  prune(now: number): void {
    const keep = this.nb * this.bucketMs + this.bucketMs;
    for (const [key, ring] of this.rings) if (now - ring.last >= keep) this.rings.delete(key);
  }

  private evictOldest(): void {
    let oldestKey: K | undefined;
    let oldest = Infinity;
    for (const [key, ring] of this.rings) if (ring.last < oldest) { oldest = ring.last; oldestKey = key; }
    if (oldestKey !== undefined) this.rings.delete(oldestKey);
  }
}

/**
 * Raise/clear hysteresis for one condition: raised when `over` holds, cleared only after
 * `clear` has held continuously for `clearAfterMs`.
 */
export class Hysteresis {
  raised = false;
  raisedAt = 0;
  private calmSince: number | undefined;

  constructor(readonly clearAfterMs: number) {}

  /** Returns 'raise', 'clear' or undefined. */
  update(now: number, over: boolean, calm: boolean): 'raise' | 'clear' | undefined {
    if (!this.raised) {
      if (over) {
        this.raised = true;
        this.raisedAt = now;
        this.calmSince = undefined;
        return 'raise';
      }
      return undefined;
    }
    if (!calm) {
      this.calmSince = undefined;
      return undefined;
    }
    this.calmSince ??= now;
    if (now - this.calmSince >= this.clearAfterMs) {
      this.raised = false;
      this.calmSince = undefined;
      return 'clear';
    }
    return undefined;
  }
}
