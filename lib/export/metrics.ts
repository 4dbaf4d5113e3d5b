// SPDX-License-Identifier: MIT
// The metrics model: the one place where probe events, probe stats and alerts become
// counters, gauges and histograms. It knows nothing of Prometheus or OpenTelemetry; the
// exporters read `collect()` snapshots. Every label is bounded: flag classes, directions and
// kernel reasons come from finite sets, and open-ended values (interfaces, ports, alert
// kinds, probe names) go through a cap that folds anything past its limit into `other`,
// because one label value per address or port would grow the series without bound.
import type { ReaderStats } from '../bpf/ringbuf';
import { KNOWN_ALERT_KINDS } from '../alerts/types';
import { TCP_FLAGS } from '../bpf/packet';

// ---- what the model reads from events -------------------------------------------------
// Small structural types of our own, so the model does not depend on every probe's full
// event type; the probes' events satisfy them (checked in lib/export/compat.ts).

/** A TCP segment seen by the packets probe. */
export interface PacketInput {
  /** Interface name; `ifindex` is used when absent. */
  ifname?: string;
  ifindex?: number;
  /** The TCP header's flag byte (as PacketEvent.flagBits). */
  flagBits: number;
  /** Frame length as received (counted in tcpscope_packet_bytes_total when present). */
  frameLen?: number;
}

/** SYNs seen one at a time (or `count` at once). */
export interface SynInput {
  /** Destination (listening) port of the SYNs. */
  dport?: number;
  /** How many SYNs this input stands for. Default 1. */
  count?: number;
}

/** Cumulative in-kernel SYN counts (the syn-counts probe's snapshot()). */
export interface SynCountsInput {
  /** SYNs counted since start or the last reset. */
  total: number;
  /** Per destination port (an LRU table: rows may be evicted). */
  ports: ReadonlyArray<{ port: number; count: number }>;
}

export interface SynCountsSource {
  snapshot(): SynCountsInput;
}

/** Cumulative in-kernel packet counts of one interface (serve's packet program counts, sends no events). */
export interface PacketCountsInput {
  ifname: string;
  /** Packets by flag class since the interface was attached. */
  packets: Readonly<Record<FlagClass, number>>;
  /** Frame bytes since the interface was attached. */
  bytes: number;
}

export interface PacketCountsSource {
  interfaceCounts(): readonly PacketCountsInput[];
}

/** Cumulative in-kernel drop counts of one reason (drops({ countOnly: true }).dropCounts()). */
export interface DropCountsInput {
  reason: string | undefined;
  count: number;
}

export interface DropCountsSource {
  dropCounts(): readonly DropCountsInput[];
}

export interface ConnectionInput {
  /** open: reached ESTABLISHED; close: reached CLOSE; other types are ignored. */
  type: string;
  direction: 'active' | 'passive' | 'unknown';
  /** Local port. */
  sport: number;
  /** Remote port. */
  dport: number;
  /** close: connection lifetime; 0 when the start was not seen. */
  durationNs?: number;
}

export interface RetransmitInput {
  /** 'retransmit' (data) or 'synack'. */
  type: string;
  /** Segments the retransmission carried (tcp_skb_pcount); 1 when absent. */
  segs?: number;
}

export interface ResetInput {
  type: 'sent' | 'received';
  /** Kernel enum sk_rst_reason name; undefined when the kernel gives none. */
  reason: string | undefined;
}

export interface DropInput {
  /** 'drop' (kfree_skb with a reason) or 'bad_csum'. */
  type: string;
  /** Kernel enum skb_drop_reason name; undefined before 5.17 and for bad_csum. */
  reason: string | undefined;
}

export interface RttInput {
  /** Smoothed RTT in microseconds. */
  srttUs: number;
}

/** What an alert contributes to metrics (lib/alerts' Alert satisfies it). */
export interface AlertInput {
  kind: string;
  state: 'raised' | 'cleared';
}

/** Anything with ProbeStream's stats(). */
export interface ProbeStatsSource {
  /** `sampled`: events the kernel counted instead of sending (sampling or an events-per-second cap). */
  stats(): ReaderStats & { sampled?: number };
}

/** What an attached probe has counted: delivered, lost (ring full), sampled out in the kernel. */
interface ProbeCounts { received: number; lost: number; sampled: number }

/** Inputs by kind, for `observe(kind, input)`. */
export interface MetricInputs {
  packet: PacketInput;
  syn: SynInput;
  synCounts: SynCountsInput;
  connection: ConnectionInput;
  retransmit: RetransmitInput;
  reset: ResetInput;
  drop: DropInput;
  rtt: RttInput;
  alert: AlertInput;
}

// ---- snapshots the exporters read ---------------------------------------------------

export type MetricType = 'counter' | 'gauge' | 'histogram';
export type LabelSet = Readonly<Record<string, string>>;

export interface ScalarSeries {
  labels: LabelSet;
  value: number;
  /** When the series was created (ms since epoch): the start of a cumulative counter. */
  startMs: number;
}

export interface HistogramSeries {
  labels: LabelSet;
  /** Observations per bucket (not cumulative): counts[i] is in (bounds[i-1], bounds[i]];
   * the last entry is above the last bound. */
  counts: readonly number[];
  sum: number;
  count: number;
  startMs: number;
}

interface FamilyBase {
  /** Base name: counters get `_total` appended in Prometheus exposition. */
  name: string;
  help: string;
  /** UCUM unit for OpenTelemetry ('1', 's', '{packet}'...). */
  unit: string;
  labelNames: readonly string[];
}

export interface CounterSnapshot extends FamilyBase { type: 'counter'; series: ScalarSeries[] }
export interface GaugeSnapshot extends FamilyBase { type: 'gauge'; series: ScalarSeries[] }
export interface HistogramSnapshot extends FamilyBase { type: 'histogram'; bounds: readonly number[]; series: HistogramSeries[] }
export type MetricSnapshot = CounterSnapshot | GaugeSnapshot | HistogramSnapshot;

/** The Prometheus names a family is exposed under (counters: `_total`; histograms: `_bucket`, `_sum`, `_count`). */
export function prometheusNames(family: Pick<MetricSnapshot, 'name' | 'type'>): string[] {
  if (family.type === 'counter') return [`${family.name}_total`];
  if (family.type === 'histogram') return [`${family.name}_bucket`, `${family.name}_sum`, `${family.name}_count`];
  return [family.name];
}

// ---- bounded label values -------------------------------------------------------------

export const OTHER = 'other';

/**
 * Admits label values first come, first served up to `max` (plus any `fixed` ones), then
 * answers `other`: a counter's label must not change once given, so "top N" here means
 * the first N distinct values, which for listening ports and interfaces are the stable ones.
 */
export class LabelCap {
  private readonly admitted = new Set<string>();
  private readonly fixed: ReadonlySet<string>;
  constructor(readonly max: number, fixed: Iterable<string> = []) {
    this.fixed = new Set(fixed);
  }
  get(value: string): string {
    if (this.fixed.has(value) || this.admitted.has(value)) return value;
    if (this.admitted.size < this.max) {
      this.admitted.add(value);
      return value;
    }
    return OTHER;
  }
}

/** Hard limit of series per family: a last guard should a cap be misconfigured. */
const MAX_SERIES = 2000;

class Family<S> {
  readonly series = new Map<string, { labels: LabelSet; data: S; startMs: number }>();
  constructor(readonly name: string, readonly help: string, readonly unit: string, readonly labelNames: readonly string[], private readonly init: () => S) {}

  /** The series for these label values (in labelNames order); past MAX_SERIES every label is `other`. */
  at(values: readonly string[]): S {
    let key = values.join('\u0000');
    let entry = this.series.get(key);
    if (!entry) {
      if (this.series.size >= MAX_SERIES) {
        values = values.map(() => OTHER);
        key = values.join('\u0000');
        entry = this.series.get(key);
      }
      if (!entry) {
        const labels: Record<string, string> = {};
        this.labelNames.forEach((n, i) => { labels[n] = values[i] ?? ''; });
        entry = { labels, data: this.init(), startMs: Date.now() };
        this.series.set(key, entry);
      }
    }
    return entry.data;
  }
}

interface Scalar { value: number }
interface Hist { counts: number[]; sum: number; count: number }

class Counter extends Family<Scalar> {
  constructor(name: string, help: string, unit: string, labelNames: readonly string[]) {
    super(name, help, unit, labelNames, () => ({ value: 0 }));
  }
  inc(values: readonly string[], by = 1): void {
    if (!(by >= 0) || !Number.isFinite(by)) return; // counters only go up; NaN/negative would corrupt rates
    this.at(values).value += by;
  }
  snapshot(): CounterSnapshot {
    return { type: 'counter', name: this.name, help: this.help, unit: this.unit, labelNames: this.labelNames, series: [...this.series.values()].map((s) => ({ labels: s.labels, value: s.data.value, startMs: s.startMs })) };
  }
}

class Gauge extends Family<Scalar> {
  constructor(name: string, help: string, unit: string, labelNames: readonly string[]) {
    super(name, help, unit, labelNames, () => ({ value: 0 }));
  }
  snapshot(): GaugeSnapshot {
    return { type: 'gauge', name: this.name, help: this.help, unit: this.unit, labelNames: this.labelNames, series: [...this.series.values()].map((s) => ({ labels: s.labels, value: s.data.value, startMs: s.startMs })) };
  }
}

class Histogram extends Family<Hist> {
  constructor(name: string, help: string, unit: string, labelNames: readonly string[], readonly bounds: readonly number[]) {
    super(name, help, unit, labelNames, () => ({ counts: new Array<number>(bounds.length + 1).fill(0), sum: 0, count: 0 }));
  }
  observe(values: readonly string[], v: number): void {
    if (!Number.isFinite(v) || v < 0) return;
    const h = this.at(values);
    // Bounds are few (~20): a linear scan beats a binary search's branches at this size.
    let i = 0;
    while (i < this.bounds.length && v > this.bounds[i]!) i++;
    h.counts[i]!++;
    h.sum += v;
    h.count++;
  }
  snapshot(): HistogramSnapshot {
    return { type: 'histogram', name: this.name, help: this.help, unit: this.unit, labelNames: this.labelNames, bounds: this.bounds, series: [...this.series.values()].map((s) => ({ labels: s.labels, counts: [...s.data.counts], sum: s.data.sum, count: s.data.count, startMs: s.startMs })) };
  }
}

// ---- bucket layouts -------------------------------------------------------------------

/** RTT buckets: powers of two microseconds, 16 µs to ~8.4 s (the kernel's srtt is in µs). */
export const RTT_BUCKETS_SECONDS: readonly number[] = Array.from({ length: 20 }, (_, i) => 2 ** (i + 4) / 1e6);

/** Connection lifetimes: 1 ms to a day. */
export const DURATION_BUCKETS_SECONDS: readonly number[] = [0.001, 0.01, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600, 14400, 86400];

// ---- flag classes -----------------------------------------------------------------------

const { fin: FIN, syn: SYN, rst: RST, ack: ACK } = TCP_FLAGS;

/** The finite classes packets are counted by. */
export const FLAG_CLASSES = ['syn', 'synack', 'rst', 'fin', 'ack', 'none'] as const;
export type FlagClass = typeof FLAG_CLASSES[number];

/** Classifies TCP flags (byte or tcpdump text) into one of FLAG_CLASSES. */
export function flagClass(flags: number | string): FlagClass {
  let bits = 0;
  if (typeof flags === 'number') bits = flags;
  else {
    if (flags.includes('F')) bits |= FIN;
    if (flags.includes('S')) bits |= SYN;
    if (flags.includes('R')) bits |= RST;
    if (flags.includes('.')) bits |= ACK;
  }
  if (bits & RST) return 'rst';
  if (bits & SYN) return bits & ACK ? 'synack' : 'syn';
  if (bits & FIN) return 'fin';
  if (bits & ACK) return 'ack';
  return 'none';
}


// ---- the model --------------------------------------------------------------------------

export interface MetricsOptions {
  /** Ports always given their own label value (e.g. the services watched). */
  ports?: number[];
  /** Further distinct ports labelled first come, first served before `other`. Default 32. */
  maxPorts?: number;
  /** Distinct interfaces labelled before `other`. Default 32. */
  maxInterfaces?: number;
  /** Distinct drop/reset reasons before `other` (kernel enums have ~100). Default 128. */
  maxReasons?: number;
  /** Distinct alert kinds before `other`. Default 32. */
  maxAlertKinds?: number;
}

/**
 * Counters, gauges and histograms of what tcpscope sees.
 *
 * @example
 * const metrics = new TcpscopeMetrics();
 * metrics.attachProbe('connections', probe);
 * for await (const ev of probe) metrics.observeConnection(ev);
 */
export class TcpscopeMetrics {
  private readonly ports: LabelCap;
  private readonly interfaces: LabelCap;
  private readonly reasons: LabelCap;
  private readonly alertKinds: LabelCap;
  private readonly probeNames = new LabelCap(64);
  private readonly sinkNames = new LabelCap(16);

  private readonly packets = new Counter('tcpscope_packets', 'TCP segments seen by the packets probe, by interface and flag class (syn, synack, rst, fin, ack, none).', '{packet}', ['interface', 'flags']);
  private readonly packetBytes = new Counter('tcpscope_packet_bytes', 'Bytes of the TCP segments seen by the packets probe (frames, link header included), by interface.', 'By', ['interface']);
  private readonly syns = new Counter('tcpscope_syns', 'SYNs (without ACK) received, by destination port (ports past the cap are "other").', '{packet}', ['port']);
  private readonly connOpened = new Counter('tcpscope_connections_opened', 'Connections that reached ESTABLISHED, by direction (passive: accepted, active: connected) and service port.', '{connection}', ['direction', 'port']);
  private readonly connClosed = new Counter('tcpscope_connections_closed', 'Connections that reached CLOSE, by direction and service port.', '{connection}', ['direction', 'port']);
  private readonly connDuration = new Histogram('tcpscope_connection_duration_seconds', 'Lifetime of closed connections whose start was seen.', 's', ['direction'], DURATION_BUCKETS_SECONDS);
  private readonly retransmits = new Counter('tcpscope_retransmits', 'TCP retransmissions, by kind (retransmit: data, synack: SYN-ACK).', '{segment}', ['kind']);
  private readonly resets = new Counter('tcpscope_resets', 'TCP resets sent or received, by reason (kernel enum sk_rst_reason; "unknown" when the kernel gives none).', '{segment}', ['direction', 'reason']);
  private readonly drops = new Counter('tcpscope_drops', 'TCP packets dropped by the kernel, by type (drop, bad_csum) and reason (kernel enum skb_drop_reason).', '{packet}', ['type', 'reason']);
  private readonly rtt = new Histogram('tcpscope_rtt_seconds', 'Smoothed TCP round-trip time samples.', 's', [], RTT_BUCKETS_SECONDS);
  private readonly alerts = new Counter('tcpscope_alerts', 'Alerts raised and cleared, by kind.', '{alert}', ['kind', 'state']);
  private readonly alertsActive = new Gauge('tcpscope_alerts_active', 'Alerts currently raised (raised minus cleared), by kind.', '{alert}', ['kind']);
  private readonly alertsUndelivered = new Counter('tcpscope_alerts_undelivered', 'Alerts a sink gave up on (queue full, retries exhausted, write failed), by sink.', '{alert}', ['sink']);
  private readonly guardDrops = new Counter('tcpscope_guard_drops', 'Packets the guard dropped, by reason.', '{packet}', ['reason']);
  private readonly guardActions = new Counter('tcpscope_guard_actions', 'What the guard did on its own: auto_deny (by alert kind), auto_deny_skipped (by why: allowed, established, protected, cap), protect/unprotect (a port against a SYN flood), syn_cookie (SYNs answered at XDP).', '{action}', ['action', 'reason']);
  private readonly ringReceived = new Counter('tcpscope_ringbuf_received', 'Ring-buffer records delivered to user space, by probe.', '{record}', ['probe']);
  private readonly ringLost = new Counter('tcpscope_ringbuf_lost', 'Ring-buffer records the kernel could not deliver (buffer full), by probe.', '{record}', ['probe']);

  private readonly synDeltas = new DeltaTracker();
  private readonly packetDeltas = new DeltaTracker();
  private readonly dropDeltas = new DeltaTracker();
  /** Readers of attached cumulative kernel counts (SYNs, packets, drops), run at every collect. */
  private readonly readers = new Set<() => void>();

  /** Attached probes, and what detached ones had counted (so a restarted probe's counters keep rising). */
  private readonly ringSampled = new Counter('tcpscope_events_sampled', 'Events the kernel counted instead of sending to user space (1-in-N sampling or the events-per-second cap), by probe.', '{record}', ['probe']);
  private readonly attached = new Map<string, { sources: Set<ProbeStatsSource>; last: Map<ProbeStatsSource, ProbeCounts>; base: ProbeCounts }>();

  constructor(options: MetricsOptions = {}) {
    this.ports = new LabelCap(options.maxPorts ?? 32, (options.ports ?? []).map(String));
    this.interfaces = new LabelCap(options.maxInterfaces ?? 32);
    this.reasons = new LabelCap(options.maxReasons ?? 128);
    this.alertKinds = new LabelCap(options.maxAlertKinds ?? 32, KNOWN_ALERT_KINDS);
    // Known kinds start at 0 so rate() and "no alerts" panels work before the first alert.
    for (const kind of KNOWN_ALERT_KINDS) {
      this.alerts.inc([kind, 'raised'], 0);
      this.alerts.inc([kind, 'cleared'], 0);
      this.alertsActive.at([kind]);
    }
  }

  private iface(ev: { ifname?: string; ifindex?: number }): string {
    if (ev.ifname) return this.interfaces.get(ev.ifname);
    if (ev.ifindex !== undefined) return this.interfaces.get(`if${ev.ifindex}`);
    return 'unknown';
  }

  private port(port: number | undefined): string {
    return port === undefined || port === 0 ? 'unknown' : this.ports.get(String(port));
  }

  observePacket(ev: PacketInput): void {
    const iface = this.iface(ev);
    this.packets.inc([iface, flagClass(ev.flagBits)]);
    if (ev.frameLen !== undefined) this.packetBytes.inc([iface], ev.frameLen);
  }

  observeSyn(ev: SynInput): void {
    this.syns.inc([this.port(ev.dport)], ev.count ?? 1);
  }

  /**
   * Cumulative SYN counts from the kernel tables: each port's increase since the last
   * snapshot is added; ports past the cap, and SYNs whose port row was evicted, land in
   * `other` (total minus the labelled ports), so the series sum to the kernel's total.
   * A count that went down (reset, eviction) counts from zero again.
   */
  observeSynCounts(snapshot: SynCountsInput): void {
    let labelled = 0;
    for (const row of snapshot.ports) {
      const label = this.port(row.port);
      if (label === OTHER || label === 'unknown') continue;
      labelled += row.count;
      this.syns.inc([label], this.synDeltas.delta(label, row.count));
    }
    this.syns.inc([OTHER], this.synDeltas.delta('\u0000other', Math.max(0, snapshot.total - labelled)));
  }

  /** Reads `source.snapshot()` into tcpscope_syns_total at every collect. Returns a detach function. */
  attachSynCounts(source: SynCountsSource): () => void {
    return this.attachReader(() => this.observeSynCounts(source.snapshot()));
  }

  /** Runs `read` at every collect, and once more at detach (the last counts). A reader that throws (its source closed) adds nothing. */
  private attachReader(read: () => void): () => void {
    this.readers.add(read);
    return () => {
      if (!this.readers.delete(read)) return;
      try { read(); } catch { /* closed: keep what was read */ }
    };
  }

  /**
   * Cumulative packet counts per interface from the kernel: each interface's increase
   * since the last reading is added to tcpscope_packets_total / tcpscope_packet_bytes_total,
   * as observePacket() would have for each packet. A count that went down (the interface
   * re-attached) counts from zero again.
   */
  observePacketCounts(rows: readonly PacketCountsInput[]): void {
    for (const row of rows) {
      const iface = this.iface(row);
      for (const c of FLAG_CLASSES) {
        const d = this.packetDeltas.delta(`${row.ifname}\u0000${c}`, row.packets[c] ?? 0);
        if (d > 0) this.packets.inc([iface, c], d);
      }
      const b = this.packetDeltas.delta(`${row.ifname}\u0000bytes`, row.bytes);
      if (b > 0) this.packetBytes.inc([iface], b);
    }
  }

  /** Reads `source.interfaceCounts()` into the packet counters at every collect. Returns a detach function. */
  attachPacketCounts(source: PacketCountsSource): () => void {
    return this.attachReader(() => this.observePacketCounts(source.interfaceCounts()));
  }

  observeConnection(ev: ConnectionInput): void {
    if (ev.type !== 'open' && ev.type !== 'close') return;
    // The service port: ours when we accepted, the peer's when we connected.
    const port = this.port(ev.direction === 'active' ? ev.dport : ev.sport);
    if (ev.type === 'open') {
      this.connOpened.inc([ev.direction, port]);
      return;
    }
    this.connClosed.inc([ev.direction, port]);
    if (ev.durationNs) this.connDuration.observe([ev.direction], ev.durationNs / 1e9);
  }

  observeRetransmit(ev: RetransmitInput): void {
    this.retransmits.inc([ev.type === 'synack' ? 'synack' : 'retransmit'], ev.segs ?? 1);
  }

  observeReset(ev: ResetInput): void {
    this.resets.inc([ev.type, ev.reason ? this.reasons.get(ev.reason) : 'unknown']);
  }

  observeDrop(ev: DropInput): void {
    const type = ev.type === 'bad_csum' ? 'bad_csum' : 'drop';
    this.drops.inc([type, ev.reason ? this.reasons.get(ev.reason) : 'unknown']);
  }

  /**
   * Cumulative drop counts per reason from the kernel: each reason's increase since the
   * last reading is added to tcpscope_drops_total{type="drop"}, as observeDrop() would have
   * for each drop.
   */
  observeDropCounts(rows: readonly DropCountsInput[]): void {
    for (const row of rows) {
      const d = this.dropDeltas.delta(row.reason ?? '\u0000unknown', row.count);
      if (d > 0) this.drops.inc(['drop', row.reason ? this.reasons.get(row.reason) : 'unknown'], d);
    }
  }

  /** Reads `source.dropCounts()` into tcpscope_drops_total at every collect. Returns a detach function. */
  attachDropCounts(source: DropCountsSource): () => void {
    return this.attachReader(() => this.observeDropCounts(source.dropCounts()));
  }

  observeRtt(ev: RttInput): void {
    this.rtt.observe([], ev.srttUs / 1e6);
  }

  observeAlert(alert: AlertInput): void {
    const kind = this.alertKinds.get(alert.kind);
    this.alerts.inc([kind, alert.state]);
    const active = this.alertsActive.at([kind]);
    active.value = Math.max(0, active.value + (alert.state === 'raised' ? 1 : -1));
  }

  /** A sink could not deliver `count` alerts. */
  observeUndelivered(sink: string, count = 1): void {
    this.alertsUndelivered.inc([this.sinkNames.get(sink)], count);
  }

  /** The guard dropped `count` packets for `reason`. */
  observeGuardDrop(reason: string, count = 1): void {
    this.guardDrops.inc([this.reasons.get(reason)], count);
  }

  /** The guard acted on its own `count` times: `action` for `reason` (see tcpscope_guard_actions). */
  observeGuardAction(action: string, reason: string, count = 1): void {
    this.guardActions.inc([this.reasons.get(action), this.reasons.get(reason)], count);
  }

  /** Any input by kind: for pipelines that route events by name. */
  observe<K extends keyof MetricInputs>(kind: K, input: MetricInputs[K]): void {
    switch (kind) {
      case 'packet': return this.observePacket(input as PacketInput);
      case 'syn': return this.observeSyn(input as SynInput);
      case 'synCounts': return this.observeSynCounts(input as SynCountsInput);
      case 'connection': return this.observeConnection(input as ConnectionInput);
      case 'retransmit': return this.observeRetransmit(input as RetransmitInput);
      case 'reset': return this.observeReset(input as ResetInput);
      case 'drop': return this.observeDrop(input as DropInput);
      case 'rtt': return this.observeRtt(input as RttInput);
      case 'alert': return this.observeAlert(input as AlertInput);
      default: throw new TypeError(`TcpscopeMetrics.observe(): unknown kind '${String(kind)}'`);
    }
  }

  /**
   * Counts a probe's ring-buffer records (received, lost) under `name`, read from its
   * stats() at every collect. Several probes may share a name (their counts add up).
   * Returns a detach function; counts read so far are kept.
   */
  attachProbe(name: string, probe: ProbeStatsSource): () => void {
    const label = this.probeNames.get(name);
    let entry = this.attached.get(label);
    if (!entry) {
      entry = { sources: new Set(), last: new Map(), base: { received: 0, lost: 0, sampled: 0 } };
      this.attached.set(label, entry);
    }
    const e = entry;
    e.sources.add(probe);
    this.ringReceived.at([label]);
    this.ringLost.at([label]);
    this.ringSampled.at([label]);
    return () => {
      if (!e.sources.delete(probe)) return;
      const last = readStats(probe) ?? e.last.get(probe);
      if (last) { e.base.received += last.received; e.base.lost += last.lost; e.base.sampled += last.sampled; }
      e.last.delete(probe);
    };
  }

  private refreshProbeStats(): void {
    for (const [label, e] of this.attached) {
      let received = e.base.received;
      let lost = e.base.lost;
      let sampled = e.base.sampled;
      for (const source of e.sources) {
        // A probe closed under us may throw: its last reading stands.
        const s = readStats(source) ?? e.last.get(source);
        if (!s) continue;
        e.last.set(source, s);
        received += s.received;
        lost += s.lost;
        sampled += s.sampled;
      }
      // Never go down (a counter reset would read as a huge rate in Prometheus).
      const r = this.ringReceived.at([label]);
      r.value = Math.max(r.value, received);
      const l = this.ringLost.at([label]);
      l.value = Math.max(l.value, lost);
      const sm = this.ringSampled.at([label]);
      sm.value = Math.max(sm.value, sampled);
    }
  }

  /** Every family, in a fixed order; attached probes' stats are read first. */
  collect(): MetricSnapshot[] {
    this.refreshProbeStats();
    for (const read of this.readers) {
      try { read(); } catch { /* a closed counter: nothing new */ }
    }
    return [
      this.packets.snapshot(), this.packetBytes.snapshot(), this.syns.snapshot(),
      this.connOpened.snapshot(), this.connClosed.snapshot(), this.connDuration.snapshot(),
      this.retransmits.snapshot(), this.resets.snapshot(), this.drops.snapshot(), this.rtt.snapshot(),
      this.alerts.snapshot(), this.alertsActive.snapshot(), this.alertsUndelivered.snapshot(),
      this.guardDrops.snapshot(), this.guardActions.snapshot(), this.ringReceived.snapshot(), this.ringLost.snapshot(),
      this.ringSampled.snapshot(),
    ];
  }
}

/** Turns cumulative readings into increments; a reading that went down starts over from 0. */
class DeltaTracker {
  private readonly last = new Map<string, number>();
  delta(key: string, value: number): number {
    const prev = this.last.get(key) ?? 0;
    this.last.set(key, value);
    return value >= prev ? value - prev : value;
  }
}

function readStats(source: ProbeStatsSource): ProbeCounts | undefined {
  try {
    const s = source.stats();
    return { received: s.received, lost: s.lost, sampled: s.sampled ?? 0 };
  } catch {
    return undefined;
  }
}
