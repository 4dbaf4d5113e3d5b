// SPDX-License-Identifier: MIT
// The detectors' decisions on synthetic timelines: every call carries its own time, so
// there are no sleeps and no kernel.
import { describe, expect, it } from 'vitest';
import {
  AnomalyDetector, DEFAULT_THRESHOLDS, DetectAlert, DetectionEngine, Ewma, Hysteresis, PortScanDetector,
  SequenceDetector, SlidingCounter, SynFloodDetector, prefixOf, resolveThresholds, stealthProbeKind,
} from '../lib/detect';
import { counterDelta, parseNetstat } from '../lib/detect/netstat';

const T0 = Date.UTC(2026, 0, 1);

function sink(): { alerts: DetectAlert[]; emit: (a: DetectAlert) => void } {
  const alerts: DetectAlert[] = [];
  return { alerts, emit: (a) => alerts.push(a) };
}

describe('SlidingCounter', () => {
  it('sums what falls in the window and forgets what slid out', () => {
    const c = new SlidingCounter<string>({ windowMs: 1000, bucketMs: 100 });
    c.add('a', T0, 5);
    c.add('a', T0 + 450, 3);
    c.add('b', T0 + 450, 1);
    expect(c.sum('a', T0 + 500)).toBe(8);
    expect(c.sum('a', T0 + 999)).toBe(8);
    expect(c.sum('a', T0 + 1000)).toBe(3); // the first bucket left the window
    expect(c.rate('a', T0 + 1000)).toBe(3);
    expect(c.sum('a', T0 + 1500)).toBe(0);
    expect(c.sum('nope', T0)).toBe(0);
    c.prune(T0 + 2000);
    expect(c.size).toBe(0);
  });

  it('reuses ring slots without leaking old counts', () => {
    const c = new SlidingCounter<string>({ windowMs: 1000, bucketMs: 100 });
    c.add('a', T0, 100);
    c.add('a', T0 + 1000, 1); // same slot, next lap
    expect(c.sum('a', T0 + 1000)).toBe(1);
  });

  it('drops the least recently updated key beyond maxKeys', () => {
    const c = new SlidingCounter<number>({ windowMs: 1000, maxKeys: 2 });
    c.add(1, T0); c.add(2, T0 + 10); c.add(3, T0 + 20);
    expect([...c.keys()].sort()).toEqual([2, 3]);
  });
});

describe('Hysteresis', () => {
  it('raises at once and clears only after staying calm for clearAfterMs', () => {
    const h = new Hysteresis(1000);
    expect(h.update(T0, true, false)).toBe('raise');
    expect(h.update(T0 + 100, false, true)).toBeUndefined();
    expect(h.update(T0 + 600, false, false)).toBeUndefined(); // between the levels: not calm
    expect(h.update(T0 + 700, false, true)).toBeUndefined();
    expect(h.update(T0 + 1699, false, true)).toBeUndefined();
    expect(h.update(T0 + 1700, false, true)).toBe('clear');
    expect(h.raised).toBe(false);
  });
});

describe('Ewma', () => {
  it('tracks mean and deviation', () => {
    const e = new Ewma(0.1);
    for (let i = 0; i < 200; i++) e.update(i % 2 === 0 ? 9 : 11);
    expect(e.mean).toBeCloseTo(10, 0);
    expect(e.stdDev).toBeGreaterThan(0.8);
    expect(e.stdDev).toBeLessThan(1.2);
    expect(e.zScore(20, 0.1)).toBeGreaterThan(8);
    expect(e.zScore(20, 100)).toBeCloseTo(0.1, 1);
  });
});

describe('port scan (scanlogd weighting)', () => {
  it('raises at weight 21: 7 privileged ports', () => {
    const { alerts, emit } = sink();
    const d = new PortScanDetector(DEFAULT_THRESHOLDS.portScan, emit);
    for (let p = 1; p <= 6; p++) d.probe(T0 + p * 10, '192.0.2.9', p, 'closed_port', '198.51.100.1');
    expect(alerts).toHaveLength(0);
    d.probe(T0 + 70, '192.0.2.9', 7, 'closed_port');
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({ kind: 'port_scan', state: 'raised', key: 'port_scan/192.0.2.9' });
    expect(alerts[0]!.evidence).toMatchObject({ sources: ['192.0.2.9'], ports: [1, 2, 3, 4, 5, 6, 7], weight: 21, targets: ['198.51.100.1'] });
    expect(alerts[0]!.summary).toContain('1-7');
  });

  it('needs 21 high ports, and repeated ports add nothing', () => {
    const { alerts, emit } = sink();
    const d = new PortScanDetector(DEFAULT_THRESHOLDS.portScan, emit);
    for (let i = 0; i < 50; i++) d.probe(T0 + i, '192.0.2.1', 443, 'closed_port');
    for (let p = 0; p < 20; p++) d.probe(T0 + 100 + p, '192.0.2.2', 30000 + p, 'fin');
    expect(alerts).toHaveLength(0);
    d.probe(T0 + 200, '192.0.2.2', 40000, 'xmas');
    expect(alerts.map((a) => a.key)).toEqual(['port_scan/192.0.2.2']);
    expect(alerts[0]!.evidence['probeKinds']).toEqual({ fin: 20, xmas: 1 });
  });

  it('starts over after a gap longer than delayMs (slow scans stay below the radar, as in scanlogd)', () => {
    const { alerts, emit } = sink();
    const d = new PortScanDetector(DEFAULT_THRESHOLDS.portScan, emit);
    for (let p = 1; p <= 20; p++) d.probe(T0 + p * 3001, '192.0.2.3', p, 'closed_port');
    expect(alerts).toHaveLength(0);
    // Within the gap it adds up.
    for (let p = 1; p <= 7; p++) d.probe(T0 + 100_000 + p * 2999, '192.0.2.3', 100 + p, 'closed_port');
    expect(alerts).toHaveLength(1);
  });

  it('clears once the source is quiet for clearAfterMs, with every port touched', () => {
    const { alerts, emit } = sink();
    const d = new PortScanDetector({ ...DEFAULT_THRESHOLDS.portScan, clearAfterMs: 5000 }, emit);
    for (let p = 1; p <= 200; p++) d.probe(T0 + p, '2001:db8::5', p, 'closed_port');
    d.tick(T0 + 4000);
    expect(alerts).toHaveLength(1);
    d.tick(T0 + 5200);
    expect(alerts).toHaveLength(2);
    expect(alerts[1]).toMatchObject({ state: 'cleared', key: 'port_scan/2001:db8::5' });
    expect(alerts[1]!.evidence['portCount']).toBe(200);
    expect(alerts[1]!.evidence['portRanges']).toBe('1-200');
  });

  it('classifies stealth probes by flags', () => {
    expect(stealthProbeKind(0)).toBe('null');
    expect(stealthProbeKind(0x01)).toBe('fin');
    expect(stealthProbeKind(0x29)).toBe('xmas');
    expect(stealthProbeKind(0x02)).toBeUndefined();
    expect(stealthProbeKind(0x11)).toBeUndefined(); // FIN+ACK: an ordinary close
    expect(stealthProbeKind(0x04)).toBeUndefined();
    expect(stealthProbeKind(0x08)).toBe('other_flags');
  });
});

describe('SYN flood', () => {
  const t = { ...DEFAULT_THRESHOLDS.synFlood, windowMs: 5000, bucketMs: 500, clearAfterMs: 2000 };

  it('raises per source and per port when SYNs go unanswered, then clears with hysteresis', () => {
    const { alerts, emit } = sink();
    const d = new SynFloodDetector(t, emit);
    // 200 SYN/s from one source to port 80 for 3 s, no handshake completes.
    for (let s = 0; s < 6; s++) {
      const now = T0 + s * 500;
      d.syn(now, 'source', '203.0.113.7', 100);
      d.syn(now, 'prefix', '203.0.113.0/24', 100);
      d.syn(now, 'port', '80', 100);
      d.synSample(now, '203.0.113.7', 80);
      d.tick(now);
    }
    // It stops; the window drains (5 s), then stays calm for 2 s.
    for (let s = 6; s <= 30; s++) d.tick(T0 + s * 500);
    const raised = alerts.filter((a) => a.state === 'raised');
    expect(raised.map((a) => a.key).sort()).toEqual(['syn_flood/port/80', 'syn_flood/source/203.0.113.7']); // the prefix is explained by the source
    const src = raised.find((a) => a.evidence['scope'] === 'source')!;
    expect(src.evidence).toMatchObject({ sources: ['203.0.113.7'], ports: [80], threshold: 50, completed: 0 });
    // Raised when 250 half-open SYNs (50/s over 5 s) were reached (at the 3rd half second),
    // judged graceMs (1 s) later.
    expect(src.at.getTime()).toBe(T0 + 2000);

    const cleared = alerts.filter((a) => a.state === 'cleared').map((a) => a.key).sort();
    expect(cleared).toEqual(['syn_flood/port/80', 'syn_flood/source/203.0.113.7']);
    const c = alerts.find((a) => a.state === 'cleared' && a.key === 'syn_flood/source/203.0.113.7')!;
    // Calm from when the rate fell under half the threshold (< 125 left in the window).
    expect(c.at.getTime()).toBeGreaterThanOrEqual(T0 + 8000);
    expect(c.at.getTime()).toBeLessThanOrEqual(T0 + 10000);
    expect(c.evidence['peakHalfOpenRate']).toBe(120);
  });

  it('does not alert on many SYNs that complete', () => {
    const { alerts, emit } = sink();
    const d = new SynFloodDetector(t, emit);
    for (let i = 0; i < 1000; i++) {
      const now = T0 + i * 5;
      d.syn(now, 'source', '198.51.100.4', 1);
      d.syn(now, 'prefix', '198.51.100.0/24', 1);
      d.syn(now, 'port', '443', 1);
      d.completedHandshake(now + 3, '198.51.100.4', 443);
      if (i % 100 === 0) d.tick(now);
    }
    d.tick(T0 + 5000);
    expect(alerts).toEqual([]);
  });

  it('waits graceMs before judging a SYN, so late completion events are not half-open', () => {
    const run = (graceMs: number) => {
      const { alerts, emit } = sink();
      const d = new SynFloodDetector({ ...t, graceMs }, emit);
      // 300 connections in 1 s; their completion events arrive 800 ms after the SYN counts.
      for (let i = 0; i < 300; i++) {
        const now = T0 + Math.floor(i * 3.33);
        d.syn(now, 'source', '198.51.100.9', 1);
        if (i % 30 === 0) d.tick(now);
      }
      for (let i = 0; i < 300; i++) d.completedHandshake(T0 + Math.floor(i * 3.33), '198.51.100.9', 443);
      for (let s = 0; s < 20; s++) d.tick(T0 + 1000 + s * 500);
      return alerts;
    };
    expect(run(0).map((a) => a.key)).toContain('syn_flood/source/198.51.100.9'); // the race without grace
    expect(run(1000)).toEqual([]);
  });

  it('raises per prefix for a spread-out flood and names its sources', () => {
    const { alerts, emit } = sink();
    const d = new SynFloodDetector({ ...t, portRate: 1e9 }, emit);
    for (let s = 0; s < 10; s++) {
      for (let h = 1; h <= 20; h++) {
        d.syn(T0 + s * 500, 'source', `192.0.2.${h}`, 10); // 20/s each: below the source limit
        d.syn(T0 + s * 500, 'prefix', '192.0.2.0/24', 10);
      }
      d.tick(T0 + s * 500);
    }
    expect(alerts.map((a) => a.key)).toEqual(['syn_flood/prefix/192.0.2.0/24']);
    expect((alerts[0]!.evidence.sources as string[]).length).toBe(10);
  });

  it('reports listen-queue pressure from netstat deltas and SYN-ACK retransmits', () => {
    const { alerts, emit } = sink();
    const d = new SynFloodDetector(t, emit);
    d.netstat(T0, { listenOverflows: 4, listenDrops: 8, syncookiesSent: 0 });
    for (let i = 0; i < 3; i++) d.synackRetransmit(T0 + i, 8443);
    d.tick(T0 + 10);
    expect(alerts[0]).toMatchObject({ key: 'syn_flood/listen_queue', state: 'raised' });
    expect(alerts[0]!.evidence).toMatchObject({ listenDrops: 12, synackRetransmits: 3, ports: [8443] });
    d.tick(T0 + 6000);
    d.tick(T0 + 8100);
    expect(alerts[1]).toMatchObject({ key: 'syn_flood/listen_queue', state: 'cleared' });
  });

  it('computes /24 and /64 prefixes as the kernel tables print them', () => {
    expect(prefixOf('10.1.2.3')).toBe('10.1.2.0/24');
    expect(prefixOf('fd00:199:1e::2')).toBe('fd00:199:1e::/64');
    expect(prefixOf('2001:db8:1:2:3:4:5:6')).toBe('2001:db8:1:2::/64');
  });
});

describe('SYN flood during a random-source flood', () => {
  const t = { ...DEFAULT_THRESHOLDS.synFlood };

  it('raises on the first poll of a surge, before graceMs, with the rate of the poll interval', () => {
    const { alerts, emit } = sink();
    const d = new SynFloodDetector(t, emit);
    // One 250 ms poll: 50000 SYNs to port 80 (200k/s), random sources (none heavy).
    d.syn(T0, 'port', '80', 50000, 250);
    for (let i = 0; i < 1000; i++) d.synSample(T0, `198.18.${i >> 8}.${i & 255}`, 80);
    d.tick(T0);
    expect(alerts).toHaveLength(1);
    const a = alerts[0]!;
    expect(a).toMatchObject({ state: 'raised', key: 'syn_flood/port/80', at: new Date(T0) });
    expect(a.evidence).toMatchObject({ surge: true, synRate: 200000, ports: [80], sampledSyns: 1000, sourceSpread: 1 });
    expect(a.summary).toContain('200000 SYN/s now');
  });

  it('names few sources through sourceSpread near 0', () => {
    const { alerts, emit } = sink();
    const d = new SynFloodDetector(t, emit);
    d.syn(T0, 'port', '443', 20000, 250);
    for (let i = 0; i < 1000; i++) d.synSample(T0, i % 2 ? '192.0.2.1' : '192.0.2.2', 443);
    d.tick(T0);
    expect(Number(alerts[0]!.evidence['sourceSpread'])).toBeLessThan(0.01);
  });

  it('no surge when the SYNs complete, nor below surgeFactor times the limit', () => {
    const { alerts, emit } = sink();
    const d = new SynFloodDetector(t, emit);
    d.syn(T0, 'port', '443', 5000, 250);
    for (let i = 0; i < 5000; i++) d.completedHandshake(T0, `198.51.100.${i & 255}`, 443);
    d.syn(T0, 'port', '8080', 900, 250); // 900 half-open in the last second: < 10 x 100/s
    d.tick(T0);
    expect(alerts).toEqual([]);
  });
});

describe('rate anomalies (EWMA baseline)', () => {
  const t = { ...DEFAULT_THRESHOLDS.anomaly, intervalMs: 1000, warmupIntervals: 10, k: 4, minRate: 5, minStdDev: 1, clearIntervals: 2 };

  function steady(d: AnomalyDetector, from: number, intervals: number, perInterval: (i: number) => number, port = 443): number {
    let now = from;
    for (let i = 0; i < intervals; i++) {
      now = from + i * 1000;
      d.record(now + 1, 'connection', { source: '192.0.2.10', port }, perInterval(i));
      d.tick(now + 999);
    }
    return from + intervals * 1000;
  }

  it('learns a baseline, raises on a k-sigma jump after warm-up, clears when back', () => {
    const { alerts, emit } = sink();
    const d = new AnomalyDetector(t, emit);
    let now = steady(d, T0, 30, (i) => 10 + (i % 3)); // 10..12 per second
    expect(alerts).toEqual([]);
    const base = d.baseline('connection', 'source', '192.0.2.10')!;
    expect(base.mean).toBeGreaterThan(9);
    expect(base.mean).toBeLessThan(13);
    now = steady(d, now, 2, () => 60);
    d.tick(now + 1);
    const raised = alerts.filter((a) => a.state === 'raised').map((a) => a.key).sort();
    expect(raised).toEqual(['rate_anomaly/connection/all/all', 'rate_anomaly/connection/port/443', 'rate_anomaly/connection/source/192.0.2.10']);
    const src = alerts.find((a) => a.key === 'rate_anomaly/connection/source/192.0.2.10')!;
    expect(src.evidence).toMatchObject({ metric: 'connection', scope: 'source', sources: ['192.0.2.10'], rate: 60 });
    expect(Number(src.evidence['sigma'])).toBeGreaterThan(4);
    // The baseline was barely moved by the attack.
    expect(d.baseline('connection', 'source', '192.0.2.10')!.mean).toBeLessThan(15);
    now = steady(d, now, 4, () => 11);
    d.tick(now + 1);
    expect(alerts.filter((a) => a.state === 'cleared').map((a) => a.key).sort()).toEqual(raised);
  });

  it('stays quiet during warm-up and below minRate', () => {
    const { alerts, emit } = sink();
    const d = new AnomalyDetector(t, emit);
    let now = steady(d, T0, 5, () => 1);
    now = steady(d, now, 1, () => 100); // not warm yet
    now = steady(d, now, 30, () => 0, 22);
    now = steady(d, now, 1, () => 4, 22); // far above a zero baseline, but under minRate
    d.tick(now + 1);
    expect(alerts.filter((a) => a.key.includes('/source/') || a.key.includes('/port/22'))).toEqual([]);
  });

  it('counts zero intervals for keys it knows (a silent gap lowers the mean)', () => {
    const { emit } = sink();
    const d = new AnomalyDetector(t, emit);
    steady(d, T0, 10, () => 20);
    d.tick(T0 + 40_000);
    expect(d.baseline('connection', 'source', '192.0.2.10')!.mean).toBeLessThan(2);
  });
});

describe('sequence anomalies', () => {
  const seg = (seq: number, source = '192.0.2.50') => ({ source, sport: 40000, dest: '198.51.100.1', dport: 80, seq, flags: 'P.' });

  it('raises when segments outside the receive window reach the count, and clears when they stop', () => {
    const { alerts, emit } = sink();
    const d = new SequenceDetector({ ...DEFAULT_THRESHOLDS.sequence, outOfWindowCount: 5, clearAfterMs: 3000 }, emit);
    for (let i = 0; i < 4; i++) d.drop(T0 + i * 100, 'TCP_INVALID_SEQUENCE', seg(1_000_000 * i));
    expect(d.drop(T0 + 450, 'NO_SOCKET', seg(1))).toBe(false);
    expect(alerts).toHaveLength(0);
    d.drop(T0 + 500, 'TCP_OVERWINDOW', seg(5));
    expect(alerts[0]).toMatchObject({ kind: 'sequence_anomaly', state: 'raised', key: 'sequence_anomaly/out_of_window/192.0.2.50' });
    expect(alerts[0]!.evidence).toMatchObject({ type: 'out_of_window', sources: ['192.0.2.50'], ports: [80], count: 5 });
    expect((alerts[0]!.evidence['samples'] as unknown[]).length).toBe(5);
    d.tick(T0 + 3000);
    expect(alerts).toHaveLength(1);
    d.tick(T0 + 3600);
    expect(alerts[1]).toMatchObject({ state: 'cleared', key: 'sequence_anomaly/out_of_window/192.0.2.50' });
  });

  it('tells ordinary retransmissions from replays by count and timing', () => {
    const { alerts, emit } = sink();
    const d = new SequenceDetector(DEFAULT_THRESHOLDS.sequence, emit);
    // Ordinary: spurious retransmits of many segments, each once or twice, RTO-paced.
    for (let s = 0; s < 100; s++) {
      d.drop(T0 + s * 10, 'TCP_OLD_DATA', seg(s * 1448));
      d.drop(T0 + s * 10 + 400, 'TCP_OLD_DATA', seg(s * 1448));
    }
    // Backing-off timer retransmits of one segment: 3 copies, 200 / 400 ms apart.
    for (const dt of [0, 200, 600]) d.drop(T0 + 5000 + dt, 'TCP_OLD_DATA', seg(999));
    expect(alerts).toEqual([]);
    // Replay: the same segment 3 times within 200 ms.
    for (const dt of [0, 20, 40]) d.drop(T0 + 10_000 + dt, 'TCP_OLD_DATA', seg(77, '192.0.2.66'));
    expect(alerts).toHaveLength(1);
    expect(alerts[0]!.key).toBe('sequence_anomaly/replay/192.0.2.66');
    expect(alerts[0]!.summary).toMatch(/faster than any retransmission timer/);
    // Replay: the same segment 4 times within 30 s, slowly.
    for (const dt of [0, 5000, 10000, 15000]) d.drop(T0 + 20_000 + dt, 'TCP_OLD_DATA', seg(88, '192.0.2.67'));
    expect(alerts.map((a) => a.key)).toContain('sequence_anomaly/replay/192.0.2.67');
  });

  it('raises on bad checksums per source', () => {
    const { alerts, emit } = sink();
    const d = new SequenceDetector({ ...DEFAULT_THRESHOLDS.sequence, badChecksumCount: 3 }, emit);
    d.badChecksum(T0, seg(1));
    d.badChecksum(T0 + 1, seg(2));
    d.badChecksum(T0 + 20_000, seg(3)); // the first two slid out of the window
    expect(alerts).toEqual([]);
    d.badChecksum(T0 + 20_001, seg(4));
    d.badChecksum(T0 + 20_002, seg(5));
    expect(alerts[0]).toMatchObject({ key: 'sequence_anomaly/bad_checksum/192.0.2.50', state: 'raised' });
  });
});

describe('DetectionEngine', () => {
  it('routes signals and tracks active alerts', () => {
    const { alerts, emit } = sink();
    const e = new DetectionEngine(resolveThresholds({ portScan: { clearAfterMs: 1000 } }), emit, { anomaly: false });
    for (let p = 1; p <= 7; p++) e.resetSent(T0 + p, '198.51.100.1', p, '192.0.2.8', 'NO_SOCKET');
    e.resetSent(T0 + 8, '198.51.100.1', 9, '192.0.2.9', 'TCP_ABORT_ON_DATA'); // not a closed port
    expect(alerts.map((a) => a.key)).toEqual(['port_scan/192.0.2.8']);
    expect(e.activeAlerts().map((a) => a.key)).toEqual(['port_scan/192.0.2.8']);
    e.tick(T0 + 2000);
    expect(e.activeAlerts()).toEqual([]);
    expect(e.anomaly).toBeUndefined();
  });
});

describe('thresholds', () => {
  it('fills defaults and validates', () => {
    const t = resolveThresholds({ synFlood: { sourceRate: 10 } });
    expect(t.synFlood.sourceRate).toBe(10);
    expect(t.synFlood.portRate).toBe(100);
    expect(t.portScan).toEqual(DEFAULT_THRESHOLDS.portScan);
    expect(() => resolveThresholds({ synFlood: { sourceRat: 1 } as never })).toThrow(/unknown option 'sourceRat'/);
    expect(() => resolveThresholds({ bogus: {} } as never)).toThrow(/unknown group 'bogus'/);
    expect(() => resolveThresholds({ anomaly: { alpha: 2 } })).toThrow(/alpha must be in/);
    expect(() => resolveThresholds({ portScan: { delayMs: -1 } })).toThrow(/delayMs must be a finite number/);
  });
});

describe('netstat', () => {
  it('parses TcpExt and computes deltas', () => {
    const text = 'TcpExt: SyncookiesSent SyncookiesRecv ListenOverflows ListenDrops\nTcpExt: 5 0 7 9\nIpExt: InNoRoutes\nIpExt: 0\n';
    expect(parseNetstat(text)).toEqual({ SyncookiesSent: 5, SyncookiesRecv: 0, ListenOverflows: 7, ListenDrops: 9 });
    expect(counterDelta({ listenOverflows: 7, listenDrops: 9, syncookiesSent: 5 }, { listenOverflows: 10, listenDrops: 9, syncookiesSent: 2 }))
      .toEqual({ listenOverflows: 3, listenDrops: 0, syncookiesSent: 2 });
  });
});
