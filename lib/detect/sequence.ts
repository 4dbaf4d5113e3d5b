// SPDX-License-Identifier: MIT
// Sequence anomalies, judged by the kernel's own receive checks (skb:kfree_skb drop
// reasons) and checksums (tcp:tcp_bad_csum):
//  - out_of_window: segments the kernel found outside the receive window
//    (TCP_INVALID_SEQUENCE, TCP_OVERWINDOW, TCP_OLD_SEQUENCE), counted per source;
//  - replay: copies of one already-received sequence number (TCP_OLD_DATA) on one
//    connection. Ordinary retransmissions resend a segment a few times, paced by the
//    retransmission timer (>= 200 ms, backing off); replay-like means more copies than
//    that (replayCopies within replayWindowMs) or copies faster than any timer
//    (burstCopies within burstMs);
//  - bad_checksum: segments failing their checksum, per source.
import { AlertEmitter } from './alert';
import { SlidingCounter } from './window';
import type { SequenceThresholds } from './thresholds';
import { formatEndpoint } from '../net/addr';

/** Kernel drop reasons meaning "outside the receive window". */
export const OUT_OF_WINDOW_REASONS = new Set(['TCP_INVALID_SEQUENCE', 'TCP_OVERWINDOW', 'TCP_OLD_SEQUENCE']);
/** Kernel drop reason of a segment whose data was already received. */
export const OLD_DATA_REASON = 'TCP_OLD_DATA';

export interface Segment {
  source: string;
  sport: number;
  dest: string;
  dport: number;
  seq: number;
  /** tcpdump-style flags, for evidence. */
  flags?: string;
}

type SeqType = 'out_of_window' | 'replay' | 'bad_checksum';

interface Condition {
  type: SeqType;
  source: string;
  first: number;
  last: number;
  count: number;
  raisedAt: number;
  evidence: Record<string, unknown>;
  samples: Array<Record<string, unknown>>;
}

interface FlowSeqs {
  /** seq -> arrival times of its copies (most recent last, bounded). */
  copies: Map<number, number[]>;
  last: number;
}

const MAX_SAMPLES = 20;
const MAX_SEQS_PER_FLOW = 256;

export class SequenceDetector {
  private readonly outOfWindow: SlidingCounter<string>;
  private readonly badCsum: SlidingCounter<string>;
  private readonly recent = new Map<string, Array<Record<string, unknown>>>();
  private readonly flows = new Map<string, FlowSeqs>();
  private readonly raised = new Map<string, Condition>();

  constructor(private readonly t: SequenceThresholds, private readonly emit: AlertEmitter) {
    this.outOfWindow = new SlidingCounter({ windowMs: t.windowMs, bucketMs: t.windowMs / 10 });
    this.badCsum = new SlidingCounter({ windowMs: t.windowMs, bucketMs: t.windowMs / 10 });
  }

  /** A segment the kernel dropped with `reason`; other reasons are ignored. Returns whether it counted. */
  drop(now: number, reason: string | undefined, seg: Segment): boolean {
    if (reason === undefined) return false;
    if (OUT_OF_WINDOW_REASONS.has(reason)) {
      this.outOfWindow.add(seg.source, now);
      const sample = { ...flowText(seg), seq: seg.seq, reason, flags: seg.flags, at: new Date(now) };
      this.sample(`out_of_window/${seg.source}`, sample);
      this.check('out_of_window', seg.source, now, this.outOfWindow.sum(seg.source, now), this.t.outOfWindowCount, sample);
      return true;
    }
    if (reason === OLD_DATA_REASON) {
      this.duplicate(now, seg);
      return true;
    }
    return false;
  }

  /** A copy of an already-received segment (from a drop reason or seen twice at tc). */
  duplicate(now: number, seg: Segment): void {
    const fk = flowKey(seg);
    let flow = this.flows.get(fk);
    if (!flow) {
      if (this.flows.size >= this.t.maxFlows) {
        const first = this.flows.keys().next();
        if (!first.done) this.flows.delete(first.value);
      }
      flow = { copies: new Map(), last: now };
      this.flows.set(fk, flow);
    }
    flow.last = now;
    let times = flow.copies.get(seg.seq);
    if (!times) {
      if (flow.copies.size >= MAX_SEQS_PER_FLOW) flow.copies.delete(flow.copies.keys().next().value!);
      times = [];
      flow.copies.set(seg.seq, times);
    }
    times.push(now);
    while (times.length && now - times[0]! > this.t.replayWindowMs) times.shift();
    if (times.length > 64) times.shift();
    const copies = times.length;
    const burst = times.slice(-this.t.burstCopies);
    const isBurst = this.t.burstCopies > 0 && burst.length >= this.t.burstCopies && burst[burst.length - 1]! - burst[0]! <= this.t.burstMs;
    const isMany = this.t.replayCopies > 0 && copies >= this.t.replayCopies;
    if (!isBurst && !isMany) return;
    const gaps = times.slice(1).map((x, i) => x - times![i]!);
    const sample = {
      ...flowText(seg), seq: seg.seq, copies, gapsMs: gaps, flags: seg.flags, at: new Date(now),
      why: isBurst ? `${burst.length} copies within ${burst[burst.length - 1]! - burst[0]!} ms (< ${this.t.burstMs} ms: faster than any retransmission timer)` : `${copies} copies within ${this.t.replayWindowMs} ms (ordinary retransmission resends fewer than ${this.t.replayCopies})`,
    };
    this.sample(`replay/${seg.source}`, sample);
    this.check('replay', seg.source, now, 1, 1, sample);
  }

  /** A segment with a bad checksum from `seg.source`. */
  badChecksum(now: number, seg: Segment): void {
    this.badCsum.add(seg.source, now);
    const sample = { ...flowText(seg), seq: seg.seq, at: new Date(now) };
    this.sample(`bad_checksum/${seg.source}`, sample);
    this.check('bad_checksum', seg.source, now, this.badCsum.sum(seg.source, now), this.t.badChecksumCount, sample);
  }

  /** Clears conditions quiet for clearAfterMs; forgets idle flows. */
  tick(now: number): void {
    for (const [id, c] of this.raised) {
      if (now - c.last < this.t.clearAfterMs) continue;
      this.raised.delete(id);
      this.emit({
        kind: 'sequence_anomaly', state: 'cleared', at: new Date(now), key: `sequence_anomaly/${id}`,
        summary: `${label(c.type)} from ${c.source} over: ${c.count} segments in ${c.last - c.first} ms`,
        evidence: { ...c.evidence, count: c.count, lastSeen: new Date(c.last), durationMs: now - c.raisedAt, samples: c.samples },
      });
    }
    for (const [fk, flow] of this.flows) if (now - flow.last > this.t.replayWindowMs) this.flows.delete(fk);
    for (const [k] of this.recent) if (!this.raised.has(k) && !this.outOfWindow.has(k.split('/')[1]!) && !this.badCsum.has(k.split('/')[1]!) && !k.startsWith('replay/')) this.recent.delete(k);
    this.outOfWindow.prune(now);
    this.badCsum.prune(now);
  }

  private check(type: SeqType, source: string, now: number, count: number, limit: number, sample: Record<string, unknown>): void {
    const id = `${type}/${source}`;
    const c = this.raised.get(id);
    if (c) {
      c.last = now;
      c.count++;
      if (c.samples.length < MAX_SAMPLES) c.samples.push(sample);
      return;
    }
    if (limit <= 0 || count < limit) return;
    const samples = (this.recent.get(id) ?? []).slice(-MAX_SAMPLES);
    this.recent.delete(id);
    const evidence: Record<string, unknown> = {
      type, source, count, threshold: limit,
      windowMs: type === 'replay' ? this.t.replayWindowMs : this.t.windowMs,
      connections: [...new Set(samples.map((s) => s['flow']))].slice(0, 10),
      sources: [source],
      ports: [...new Set(samples.map((s) => s['dport'] as number))].slice(0, 10),
      counts: { [type]: count },
      thresholds: { [type]: limit },
      samples,
    };
    this.raised.set(id, { type, source, first: now, last: now, count, raisedAt: now, evidence, samples: [...samples] });
    this.emit({
      kind: 'sequence_anomaly', state: 'raised', at: new Date(now), key: `sequence_anomaly/${id}`, evidence,
      summary: type === 'replay'
        ? `replay-like repeats from ${source}: ${String(sample['flow'])} seq ${String(sample['seq'])} ${String(sample['why'])}`
        : `${label(type)} from ${source}: ${count} in ${this.t.windowMs} ms (threshold ${limit})`,
    });
  }

  private sample(id: string, sample: Record<string, unknown>): void {
    let list = this.recent.get(id);
    if (!list) {
      if (this.recent.size > 4 * this.t.maxFlows) this.recent.delete(this.recent.keys().next().value!);
      list = [];
      this.recent.set(id, list);
    }
    list.push(sample);
    if (list.length > MAX_SAMPLES) list.shift();
  }
}

function label(type: SeqType): string {
  return type === 'out_of_window' ? 'segments outside the receive window' : type === 'replay' ? 'replay-like repeats' : 'bad TCP checksums';
}

function flowKey(s: Segment): string {
  return `${s.source}|${s.sport}|${s.dest}|${s.dport}`;
}

function flowText(s: Segment): { flow: string; dport: number } {
  return { flow: `${formatEndpoint(s.source, s.sport)} > ${formatEndpoint(s.dest, s.dport)}`, dport: s.dport };
}
