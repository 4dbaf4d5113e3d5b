// SPDX-License-Identifier: MIT
// Port scans, weighted as scanlogd does: each distinct destination port a source probes
// adds 3 (below 1024) or 1; a source whose weight reaches 21 while no gap between its
// probes exceeds 3 s is a scanner. Probes are the kprobe-free signals that only scans
// make: probes of closed ports (the kernel's RST with reason NO_SOCKET, sent back to the
// scanner) and FIN / NULL / XMAS segments outside any connection seen at tc/XDP.
import { AlertEmitter, portRanges } from './alert';
import type { PortScanThresholds } from './thresholds';
import { TCP_FLAGS } from '../bpf/packet';

/** How a port was probed. */
export type ProbeKind = 'closed_port' | 'fin' | 'null' | 'xmas' | 'other_flags';

interface SourceState {
  first: number;
  last: number;
  weight: number;
  /** Ports of the current run (reset after a gap longer than delayMs unless raised). */
  ports: Map<number, ProbeKind>;
  kinds: Map<ProbeKind, number>;
  probes: number;
  raised: boolean;
  raisedAt: number;
  /** Local addresses probed. */
  targets: Set<string>;
}

const { fin: FIN, syn: SYN, rst: RST, psh: PSH, ack: ACK, urg: URG } = TCP_FLAGS;

/** Classifies TCP flags of a segment with no connection: FIN, NULL, XMAS scans. */
export function stealthProbeKind(flags: number): ProbeKind | undefined {
  if (flags & (SYN | RST | ACK)) return undefined;
  if (flags === 0) return 'null';
  if ((flags & (FIN | PSH | URG)) === (FIN | PSH | URG)) return 'xmas';
  if (flags === FIN) return 'fin';
  return 'other_flags';
}

export class PortScanDetector {
  private readonly sources = new Map<string, SourceState>();

  constructor(private readonly t: PortScanThresholds, private readonly emit: AlertEmitter) {}

  /** One probe: `source` touched `port` (on local address `target`) at `now` ms. */
  probe(now: number, source: string, port: number, kind: ProbeKind, target = ''): void {
    let st = this.sources.get(source);
    if (st && !st.raised && now - st.last > this.t.delayMs) {
      this.sources.delete(source);
      st = undefined;
    }
    if (!st) {
      if (this.sources.size >= this.t.maxSources) this.evict();
      st = { first: now, last: now, weight: 0, ports: new Map(), kinds: new Map(), probes: 0, raised: false, raisedAt: 0, targets: new Set() };
      this.sources.set(source, st);
    } else {
      // Keep recently active sources at the end (eviction takes the first).
      this.sources.delete(source);
      this.sources.set(source, st);
    }
    st.probes++;
    st.last = Math.max(st.last, now);
    if (target && st.targets.size < 16) st.targets.add(target);
    st.kinds.set(kind, (st.kinds.get(kind) ?? 0) + 1);
    if (!st.ports.has(port)) {
      st.ports.set(port, kind);
      st.weight += port < 1024 ? this.t.privilegedWeight : this.t.highWeight;
    }
    if (!st.raised && st.weight >= this.t.weightThreshold) {
      st.raised = true;
      st.raisedAt = now;
      this.emit({
        kind: 'port_scan',
        state: 'raised',
        at: new Date(now),
        key: `port_scan/${source}`,
        summary: `port scan from ${source}: ${st.ports.size} ports (${portRanges(st.ports.keys())}) in ${now - st.first} ms, weight ${st.weight} >= ${this.t.weightThreshold}`,
        evidence: this.evidence(source, st, now),
      });
    }
  }

  /** Clears scans whose source has been quiet for clearAfterMs; forgets stale runs. */
  tick(now: number): void {
    for (const [source, st] of this.sources) {
      if (st.raised) {
        if (now - st.last >= this.t.clearAfterMs) {
          this.sources.delete(source);
          this.emit({
            kind: 'port_scan',
            state: 'cleared',
            at: new Date(now),
            key: `port_scan/${source}`,
            summary: `port scan from ${source} over: ${st.ports.size} ports (${portRanges(st.ports.keys())}) in ${st.last - st.first} ms`,
            evidence: this.evidence(source, st, now),
          });
        }
      } else if (now - st.last > this.t.delayMs) {
        this.sources.delete(source);
      }
    }
  }

  /** Sources currently tracked (for stats). */
  get tracked(): number {
    return this.sources.size;
  }

  private evidence(source: string, st: SourceState, now: number): Record<string, unknown> {
    const ports = [...st.ports.keys()].sort((a, b) => a - b);
    return {
      source,
      ports: ports.slice(0, this.t.maxPortsListed),
      portCount: ports.length,
      portRanges: portRanges(ports),
      weight: st.weight,
      weightThreshold: this.t.weightThreshold,
      sources: [source],
      thresholds: { weight: this.t.weightThreshold },
      counts: { ports: ports.length, probes: st.probes, weight: st.weight },
      probes: st.probes,
      probeKinds: Object.fromEntries(st.kinds),
      targets: [...st.targets],
      firstSeen: new Date(st.first),
      lastSeen: new Date(st.last),
      durationMs: st.last - st.first,
      delayMs: this.t.delayMs,
      ...(st.raised ? { raisedAt: new Date(st.raisedAt) } : {}),
      at: new Date(now),
    };
  }

  private evict(): void {
    for (const [source, st] of this.sources) {
      if (!st.raised) { this.sources.delete(source); return; }
    }
    const first = this.sources.keys().next();
    if (!first.done) this.sources.delete(first.value);
  }
}
