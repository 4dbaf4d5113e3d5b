// SPDX-License-Identifier: MIT
// SYN floods: SYNs that never complete a handshake, per source address, per source
// prefix (/24, /64) and per destination port, over a sliding window; plus listen-queue
// pressure (TcpExt ListenOverflows/ListenDrops/SyncookiesSent, SYN-ACK retransmissions).
// SYN counts come from the kernel (packets probe maps), completions from the
// connections probe; decisions are made here on every tick.
import net from 'node:net';
import { formatAddress, parseCidr } from '../net/addr';
import { AlertEmitter, round, top } from './alert';
import { Hysteresis, SlidingCounter } from './window';
import type { SynFloodThresholds } from './thresholds';

export type SynScope = 'source' | 'prefix' | 'port';

/** Sources given an attribution counter without being counted as heavy by the kernel. */
const ATTRIBUTION_ROOM = 1024;

/** The /24 (IPv4) or /64 (IPv6) prefix of an address, as the kernel tables print it: 'a.b.c.0/24', 'fd00:1::/64'. */
export function prefixOf(address: string): string {
  const v6 = net.isIPv6(address);
  const len = v6 ? 64 : 24;
  const cidr = parseCidr(`${address}/${len}`);
  return `${formatAddress(cidr.addr, cidr.family)}/${len}`;
}

interface ListenCounters {
  listenDrops: number;
  syncookies: number;
  synackRetransmits: number;
}

export class SynFloodDetector {
  private readonly syns: Record<SynScope, SlidingCounter<string>>;
  private readonly completed: Record<SynScope, SlidingCounter<string>>;
  /** (source -> port) and (port -> source) SYN attributions from packet events (samples). */
  private readonly bySourcePort = new Map<string, SlidingCounter<number>>();
  private readonly byPortSource = new Map<string, SlidingCounter<string>>();
  /** Per port: SYN samples, and those from a source not seen on the port before (spread). */
  private readonly portSamples: SlidingCounter<string>;
  private readonly portNovel: SlidingCounter<string>;
  private readonly listen: SlidingCounter<keyof ListenCounters>;
  private readonly synackByPort: SlidingCounter<string>;
  private readonly states = new Map<string, Hysteresis>();
  private readonly raisedEvidence = new Map<string, Record<string, unknown>>();
  /** SYN/s of each key over the latest poll interval (exact kernel deltas), and when that poll was. */
  private readonly rateNow: Record<SynScope, Map<string, number>> = { source: new Map(), prefix: new Map(), port: new Map() };
  private lastPollAt = -Infinity;

  constructor(private readonly t: SynFloodThresholds, private readonly emit: AlertEmitter) {
    const mk = <K>() => new SlidingCounter<K>({ windowMs: t.windowMs, bucketMs: t.bucketMs, maxKeys: t.maxKeys });
    // SYNs keep graceMs of extra history (judged at now - graceMs); completions count over
    // the window plus the grace, so a SYN's completion is counted wherever it lands.
    const syns = () => new SlidingCounter<string>({ windowMs: t.windowMs, bucketMs: t.bucketMs, maxKeys: t.maxKeys, historyMs: t.graceMs });
    const done = () => new SlidingCounter<string>({ windowMs: t.windowMs + t.graceMs, bucketMs: t.bucketMs, maxKeys: t.maxKeys });
    this.syns = { source: syns(), prefix: syns(), port: syns() };
    this.completed = { source: done(), prefix: done(), port: done() };
    this.listen = mk();
    this.synackByPort = mk();
    this.portSamples = mk();
    this.portNovel = mk();
  }

  /**
   * SYNs counted by the kernel since the last poll, for one key of one scope; `intervalMs`,
   * the time since that poll, gives the key's current rate.
   */
  syn(now: number, scope: SynScope, key: string, n = 1, intervalMs?: number): void {
    if (n > 0) this.syns[scope].add(key, now, n);
    if (intervalMs !== undefined && intervalMs > 0) {
      if (now !== this.lastPollAt) {
        for (const m of Object.values(this.rateNow)) m.clear();
        this.lastPollAt = now;
      }
      this.rateNow[scope].set(key, (n * 1000) / intervalMs);
    }
  }

  /** A SYN seen as an event (source and port known): attribution for evidence only. */
  synSample(now: number, source: string, port: number): void {
    const p = String(port);
    // A source gets an attribution counter while there is room, or once the kernel counts
    // it as heavy: a random-source flood then fills the room once instead of allocating a
    // counter per sample.
    if (this.bySourcePort.has(source) || this.bySourcePort.size < ATTRIBUTION_ROOM || this.syns.source.has(source)) {
      this.attribution(this.bySourcePort, source).add(port, now);
    }
    const bySource = this.attribution(this.byPortSource, p);
    this.portSamples.add(p, now);
    if (!bySource.has(source)) this.portNovel.add(p, now);
    bySource.addIfRoom(source, now);
  }

  /** A handshake completed (passive open) from `source` to local `port`. */
  completedHandshake(now: number, source: string, port: number): void {
    this.completed.source.add(source, now);
    this.completed.prefix.add(prefixOf(source), now);
    this.completed.port.add(String(port), now);
  }

  /** Increases of the TcpExt counters since the last read. */
  netstat(now: number, delta: { listenOverflows?: number; listenDrops?: number; syncookiesSent?: number }): void {
    const drops = (delta.listenOverflows ?? 0) + (delta.listenDrops ?? 0);
    if (drops > 0) this.listen.add('listenDrops', now, drops);
    if (delta.syncookiesSent) this.listen.add('syncookies', now, delta.syncookiesSent);
  }

  /** A SYN-ACK was retransmitted for a pending connection to local `port`. */
  synackRetransmit(now: number, port: number): void {
    this.listen.add('synackRetransmits', now, 1);
    this.synackByPort.add(String(port), now, 1);
  }

  /** Evaluates every key; emits raised/cleared alerts. */
  tick(now: number): void {
    const seen = new Set<string>();
    for (const scope of ['source', 'prefix', 'port'] as const) {
      const limit = scope === 'source' ? this.t.sourceRate : scope === 'prefix' ? this.t.prefixRate : this.t.portRate;
      for (const key of [...this.syns[scope].keys()]) {
        const id = `syn_flood/${scope}/${key}`;
        seen.add(id);
        const m = this.measure(scope, key, now);
        const surge = this.t.surgeFactor > 0 && m.recentHalfOpenRate >= this.t.surgeFactor * limit;
        const over = (surge || (m.halfOpenRate >= limit && m.halfOpenRatio >= this.t.minHalfOpenRatio)) && !this.explained(scope, key, m, now);
        const calm = m.halfOpenRate < limit * this.t.clearFraction;
        this.step(id, now, over, calm, () => this.floodEvidence(scope, key, m, limit, now),
          (ev) => `SYN flood ${scope === 'port' ? `to port ${key}` : `from ${key}`}: ${round(Number(ev['synRate']))} SYN/s now; ${round(Number(ev['halfOpenRate']))} half-open SYN/s (${ev['syns']} SYNs, ${ev['completed']} completed in ${ev['measuredOverMs']} ms; threshold ${limit}/s)${topText(ev)}`);
      }
    }
    // Listen-queue pressure (host-wide counters and SYN-ACK retransmissions).
    const lq = this.listenCounters(now);
    const lqOver = lq.listenDrops >= this.t.listenDrops || lq.syncookies >= this.t.syncookies || lq.synackRetransmits >= this.t.synackRetransmits;
    const lqCalm = lq.listenDrops < this.t.listenDrops * this.t.clearFraction && lq.syncookies < this.t.syncookies * this.t.clearFraction
      && lq.synackRetransmits < this.t.synackRetransmits * this.t.clearFraction;
    const lqId = 'syn_flood/listen_queue';
    seen.add(lqId);
    this.step(lqId, now, lqOver, lqCalm, () => {
      const byPort = top([...this.synackByPort.keys()].map((p) => [p, this.synackByPort.sum(p, now)] as [string, number]), 10);
      return {
        scope: 'listen_queue',
        ...lq,
        counts: { ...lq },
        windowMs: this.t.windowMs,
        thresholds: { listenDrops: this.t.listenDrops, syncookies: this.t.syncookies, synackRetransmits: this.t.synackRetransmits },
        ports: byPort.map(([p]) => Number(p)),
        synackRetransmitsByPort: Object.fromEntries(byPort),
        sources: [],
      };
    }, () => `listen queue pressure: ${lq.listenDrops} listen drops/overflows, ${lq.syncookies} SYN cookies, ${lq.synackRetransmits} SYN-ACK retransmits in ${this.t.windowMs} ms`);

    // Keys that left the window entirely are calm.
    for (const id of [...this.states.keys()]) {
      if (!seen.has(id)) this.step(id, now, false, true, () => this.raisedEvidence.get(id) ?? {}, () => '');
    }
    for (const scope of ['source', 'prefix', 'port'] as const) {
      this.syns[scope].prune(now);
      this.completed[scope].prune(now);
    }
    this.portSamples.prune(now);
    this.portNovel.prune(now);
    for (const m of [this.bySourcePort, this.byPortSource]) {
      for (const [k, c] of m) { c.prune(now); if (c.size === 0) m.delete(k); }
    }
  }

  /** Conditions raised now. */
  get active(): string[] {
    return [...this.states].filter(([, h]) => h.raised).map(([id]) => id);
  }

  private step(id: string, now: number, over: boolean, calm: boolean, evidence: () => Record<string, unknown>, summary: (ev: Record<string, unknown>) => string): void {
    let h = this.states.get(id);
    if (!h) {
      if (!over) return;
      h = new Hysteresis(this.t.clearAfterMs);
      this.states.set(id, h);
    }
    const what = h.update(now, over, calm);
    if (what === 'raise') {
      const ev = evidence();
      this.raisedEvidence.set(id, ev);
      this.emit({ kind: 'syn_flood', state: 'raised', at: new Date(now), key: id, summary: summary(ev), evidence: ev });
    } else if (what === 'clear') {
      const raised = this.raisedEvidence.get(id) ?? {};
      this.raisedEvidence.delete(id);
      this.states.delete(id);
      const ev = { ...raised, raisedAt: new Date(h.raisedAt), durationMs: now - h.raisedAt, current: this.currentOf(id, now) };
      this.emit({ kind: 'syn_flood', state: 'cleared', at: new Date(now), key: id, summary: `${id.replace(/\//g, ' ').replace('syn_flood', 'SYN flood')} over after ${now - h.raisedAt} ms`, evidence: ev });
    } else if (h.raised && over) {
      // Keep the strongest evidence seen while raised (what the clear reports).
      const ev = evidence();
      const prev = this.raisedEvidence.get(id);
      if (!prev || Number(ev['halfOpenRate'] ?? 0) > Number(prev['peakHalfOpenRate'] ?? prev['halfOpenRate'] ?? 0)) {
        this.raisedEvidence.set(id, { ...(prev ?? ev), peakHalfOpenRate: ev['halfOpenRate'], peakAt: new Date(now) });
      }
    } else if (!h.raised && !over) {
      this.states.delete(id);
    }
  }

  private currentOf(id: string, now: number): Record<string, unknown> {
    const parts = id.split('/');
    if (parts[1] === 'listen_queue') return { ...this.listenCounters(now) };
    const m = this.measure(parts[1] as SynScope, parts.slice(2).join('/'), now);
    return { halfOpenRate: round(m.halfOpenRate), syns: m.syns, completed: m.completed };
  }

  private measure(scope: SynScope, key: string, now: number) {
    const syns = this.syns[scope].sumEndingAt(key, now - this.t.graceMs);
    const completed = Math.min(syns, this.completed[scope].sum(key, now));
    const halfOpen = Math.max(0, syns - completed);
    // The SYNs not judged yet (the last graceMs), against every completion seen so far.
    const grace = Math.max(this.t.graceMs, this.t.bucketMs);
    const recentSyns = this.syns[scope].sumLast(key, now, grace);
    const recentHalfOpen = Math.max(0, recentSyns - this.completed[scope].sumLast(key, now, grace));
    return {
      syns, completed, halfOpen, halfOpenRate: halfOpen / (this.t.windowMs / 1000), halfOpenRatio: syns > 0 ? halfOpen / syns : 0,
      recentSyns, recentHalfOpen, recentHalfOpenRate: recentHalfOpen / (grace / 1000),
    };
  }

  /** A prefix whose half-open SYNs come mostly (>= 80 %) from one source already over its own limit: the source alert says it. */
  private explained(scope: SynScope, key: string, m: { halfOpen: number }, now: number): boolean {
    if (scope !== 'prefix') return false;
    for (const src of this.syns.source.keys()) {
      if (prefixOf(src) !== key) continue;
      const s = this.measure('source', src, now);
      if (s.halfOpenRate >= this.t.sourceRate && s.halfOpen >= 0.8 * m.halfOpen) return true;
    }
    return false;
  }

  private listenCounters(now: number): ListenCounters {
    return {
      listenDrops: this.listen.sum('listenDrops', now),
      syncookies: this.listen.sum('syncookies', now),
      synackRetransmits: this.listen.sum('synackRetransmits', now),
    };
  }

  private floodEvidence(scope: SynScope, key: string, m: ReturnType<SynFloodDetector['measure']>, limit: number, now: number): Record<string, unknown> {
    // Raised by a surge, the judged window may still be empty: the evidence then describes
    // the SYNs of the last graceMs.
    const surge = m.syns === 0 || (m.halfOpenRate < limit && m.recentHalfOpen > 0);
    const grace = Math.max(this.t.graceMs, this.t.bucketMs);
    const overMs = surge ? grace : this.t.windowMs;
    const syns = surge ? m.recentSyns : m.syns;
    const halfOpen = surge ? m.recentHalfOpen : m.halfOpen;
    const completed = syns - halfOpen;
    const ev: Record<string, unknown> = {
      scope,
      [scope]: key,
      halfOpenRate: round(halfOpen / (overMs / 1000)),
      // The rate of the latest poll interval (exact kernel counts); the window average
      // when the key had no SYNs in it.
      synRate: round(this.rateNow[scope].get(key) ?? syns / (overMs / 1000)),
      windowSynRate: round(syns / (overMs / 1000)),
      completedRate: round(completed / (overMs / 1000)),
      syns,
      completed,
      halfOpenRatio: round(syns > 0 ? halfOpen / syns : 0),
      measuredOverMs: overMs,
      surge,
      threshold: limit,
      windowMs: this.t.windowMs,
      graceMs: this.t.graceMs,
      listenQueue: this.listenCounters(now),
    };
    const perSec = this.t.windowMs / 1000;
    ev['rates'] = { halfOpen: ev['halfOpenRate'], syn: ev['synRate'], completed: ev['completedRate'] };
    ev['thresholds'] = { halfOpen: limit, halfOpenRatio: this.t.minHalfOpenRatio, surge: this.t.surgeFactor * limit };
    ev['counts'] = { syns, completed, halfOpen };
    if (scope === 'source') {
      const ports = this.bySourcePort.get(key);
      const topPorts = ports ? top([...ports.keys()].map((p) => [p, ports.sum(p, now)] as [number, number]), 10).map(([port, n]) => ({ port, synRate: round(n / perSec) })) : [];
      ev['prefix'] = prefixOf(key);
      ev['sources'] = [key];
      ev['ports'] = topPorts.map((p) => p.port);
      ev['topPorts'] = topPorts;
    } else if (scope === 'port') {
      const sources = this.byPortSource.get(key);
      const topSources = sources ? top([...sources.keys()].map((s) => [s, sources.sum(s, now)] as [string, number]), 10).map(([source, n]) => ({ source, synRate: round(n / perSec) })) : [];
      ev['port'] = Number(key);
      ev['ports'] = [Number(key)];
      ev['sources'] = topSources.map((s) => s.source);
      ev['topSources'] = topSources;
      ev['synackRetransmits'] = this.synackByPort.sum(key, now);
      // What a mitigation keys on: the flooded port, and whether denying sources could
      // help (near 1: nearly every sampled SYN came from a new address, a random-source
      // flood; near 0: a few sources).
      const sampled = this.portSamples.sum(key, now);
      ev['sampledSyns'] = sampled;
      ev['sourceSpread'] = sampled > 0 ? round(this.portNovel.sum(key, now) / sampled) : 0;
    } else {
      const members = [...this.syns.source.keys()].filter((s) => prefixOf(s) === key);
      const topSources = top(members.map((s) => [s, this.measure('source', s, now).halfOpen] as [string, number]), 10).map(([source, n]) => ({ source, halfOpenRate: round(n / perSec) }));
      ev['sources'] = topSources.map((s) => s.source);
      ev['topSources'] = topSources;
    }
    return ev;
  }

  private attribution<K>(map: Map<string, SlidingCounter<K>>, key: string): SlidingCounter<K> {
    let c = map.get(key);
    if (!c) {
      if (map.size >= this.t.maxKeys) {
        const first = map.keys().next();
        if (!first.done) map.delete(first.value);
      }
      c = new SlidingCounter<K>({ windowMs: this.t.windowMs, bucketMs: this.t.bucketMs, maxKeys: 256 });
      map.set(key, c);
    }
    return c;
  }
}

function topText(ev: Record<string, unknown>): string {
  const sources = ev['sources'] as string[] | undefined;
  const ports = ev['ports'] as number[] | undefined;
  const parts: string[] = [];
  if (ev['scope'] !== 'source' && sources?.length) parts.push(`sources ${sources.slice(0, 5).join(', ')}`);
  if (ev['scope'] !== 'port' && ports?.length) parts.push(`ports ${ports.slice(0, 5).join(', ')}`);
  return parts.length ? `; ${parts.join('; ')}` : '';
}
