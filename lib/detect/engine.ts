// SPDX-License-Identifier: MIT
// The decision side of detect(): normalized signals in, alerts out. No kernel, no timers:
// every call carries its time (ms since the epoch), so tests replay synthetic timelines.
import type { AlertEmitter, DetectAlert } from './alert';
import { AnomalyDetector } from './anomaly';
import { PortScanDetector, stealthProbeKind } from './portscan';
import { Segment, SequenceDetector } from './sequence';
import { SynFloodDetector, prefixOf } from './synflood';
import type { Thresholds } from './thresholds';

export type DetectorName = 'synFlood' | 'portScan' | 'anomaly' | 'sequence';
export const DETECTORS: readonly DetectorName[] = ['synFlood', 'portScan', 'anomaly', 'sequence'];

/** SYNs counted by the kernel since the previous poll. */
export interface SynDeltas {
  sources: Iterable<[string, number]>;
  prefixes: Iterable<[string, number]>;
  ports: Iterable<[number, number]>;
  /**
   * All SYNs since the previous poll (the kernel's total; the per-source table may hold only
   * heavy sources). Default: the sum over `sources`.
   */
  total?: number;
  /** Time since the previous poll, ms: gives each key's current rate. */
  intervalMs?: number;
}

export class DetectionEngine {
  readonly synFlood: SynFloodDetector | undefined;
  readonly portScan: PortScanDetector | undefined;
  readonly anomaly: AnomalyDetector | undefined;
  readonly sequence: SequenceDetector | undefined;
  private readonly active = new Map<string, DetectAlert>();

  constructor(readonly thresholds: Thresholds, emit: AlertEmitter, enabled: Partial<Record<DetectorName, boolean>> = {}) {
    const out: AlertEmitter = (alert) => {
      if (alert.state === 'raised') this.active.set(alert.key, alert);
      else this.active.delete(alert.key);
      emit(alert);
    };
    const on = (d: DetectorName) => enabled[d] ?? true;
    this.synFlood = on('synFlood') ? new SynFloodDetector(thresholds.synFlood, out) : undefined;
    this.portScan = on('portScan') ? new PortScanDetector(thresholds.portScan, out) : undefined;
    this.anomaly = on('anomaly') ? new AnomalyDetector(thresholds.anomaly, out) : undefined;
    this.sequence = on('sequence') ? new SequenceDetector(thresholds.sequence, out) : undefined;
  }

  /** Raised alerts not yet cleared. */
  activeAlerts(): DetectAlert[] {
    return [...this.active.values()];
  }

  /** Kernel SYN counter increases (per source address, source prefix CIDR, destination port). */
  synCounts(now: number, d: SynDeltas): void {
    let total = 0;
    const interval = d.intervalMs;
    for (const [source, n] of d.sources) {
      this.synFlood?.syn(now, 'source', source, n, interval);
      this.anomaly?.recordScoped(now, 'syn', 'source', source, n);
      total += n;
    }
    for (const [prefix, n] of d.prefixes) this.synFlood?.syn(now, 'prefix', prefix, n, interval);
    for (const [port, n] of d.ports) {
      this.synFlood?.syn(now, 'port', String(port), n, interval);
      this.anomaly?.recordScoped(now, 'syn', 'port', String(port), n);
    }
    this.anomaly?.recordScoped(now, 'syn', 'all', 'all', d.total ?? total);
  }

  /** SYNs without counters (e.g. from events only): counts and attributes them. */
  syn(now: number, source: string, port: number): void {
    this.synCounts(now, { sources: [[source, 1]], prefixes: [[prefixOf(source), 1]], ports: [[port, 1]] });
    this.synFlood?.synSample(now, source, port);
  }

  /** A SYN seen as a packet event, when the counts come from the kernel maps. */
  synSample(now: number, source: string, port: number): void {
    this.synFlood?.synSample(now, source, port);
  }

  /** A segment with no ACK, SYN or RST (FIN, NULL, XMAS probes). Returns whether it was one. */
  stealthSegment(now: number, source: string, dest: string, port: number, flags: number): boolean {
    const kind = stealthProbeKind(flags);
    if (!kind) return false;
    this.portScan?.probe(now, source, port, kind, dest);
    return true;
  }

  /** A handshake completed on a local port (passive open). */
  passiveOpen(now: number, remote: string, localPort: number): void {
    this.synFlood?.completedHandshake(now, remote, localPort);
    this.anomaly?.record(now, 'connection', { source: remote, port: localPort });
  }

  /** This host sent a RST to `remote` from `localPort`; reason as the kernel names it. */
  resetSent(now: number, local: string, localPort: number, remote: string, reason: string | undefined): void {
    if (reason === 'NO_SOCKET') this.portScan?.probe(now, remote, localPort, 'closed_port', local);
    this.anomaly?.record(now, 'reset', { source: remote, port: localPort });
  }

  /** A retransmission by this host toward `remote` (synack: of a SYN-ACK). */
  retransmit(now: number, remote: string, localPort: number, synack: boolean): void {
    if (synack) this.synFlood?.synackRetransmit(now, localPort);
    this.anomaly?.record(now, 'retransmit', { source: remote, port: localPort });
  }

  /** A dropped incoming segment with the kernel's reason. */
  drop(now: number, reason: string | undefined, seg: Segment): void {
    this.sequence?.drop(now, reason, seg);
  }

  badChecksum(now: number, seg: Segment): void {
    this.sequence?.badChecksum(now, seg);
  }

  /** TcpExt counter increases since the last read. */
  netstat(now: number, delta: { listenOverflows?: number; listenDrops?: number; syncookiesSent?: number }): void {
    this.synFlood?.netstat(now, delta);
  }

  /** Evaluates windows and baselines at `now`. */
  tick(now: number): void {
    this.synFlood?.tick(now);
    this.portScan?.tick(now);
    this.anomaly?.tick(now);
    this.sequence?.tick(now);
  }
}
