// SPDX-License-Identifier: MIT
// The metrics model, its Prometheus exposition, the exporters' config validation and
// createExporters; no kernel needed.
import { describe, it, expect } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  TcpscopeMetrics, createPrometheusRegistry, startPrometheusServer, validateExportersConfig, createExporters,
  ConfigError, flagClass, LabelCap, RTT_BUCKETS_SECONDS, prometheusNames, toMetricData,
} from '../lib/export';
import type { MetricSnapshot } from '../lib/export';
import type { ReaderStats } from '../lib/bpf/ringbuf';

function family(metrics: TcpscopeMetrics, name: string): MetricSnapshot {
  const f = metrics.collect().find((x) => x.name === name);
  if (!f) throw new Error(`no family ${name}`);
  return f;
}

function value(metrics: TcpscopeMetrics, name: string, labels: Record<string, string>): number | undefined {
  const f = family(metrics, name);
  if (f.type === 'histogram') throw new Error('histogram');
  return f.series.find((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
}

describe('metrics model', () => {
  it('classifies TCP flags into a finite set, from bytes or tcpdump text', () => {
    expect(flagClass(0x02)).toBe('syn');
    expect(flagClass(0x12)).toBe('synack');
    expect(flagClass(0x14)).toBe('rst');
    expect(flagClass(0x11)).toBe('fin');
    expect(flagClass(0x18)).toBe('ack');
    expect(flagClass(0)).toBe('none');
    expect(flagClass('S')).toBe('syn');
    expect(flagClass('S.')).toBe('synack');
    expect(flagClass('R.')).toBe('rst');
    expect(flagClass('P.')).toBe('ack');
  });

  it('counts packets by interface and flag class, and their bytes', () => {
    const m = new TcpscopeMetrics();
    m.observePacket({ ifname: 'eth0', flagBits: 0x02, frameLen: 74 });
    m.observePacket({ ifname: 'eth0', flagBits: 0x02, frameLen: 74 });
    m.observePacket({ ifindex: 7, flagBits: 0x10, frameLen: 66 });
    expect(value(m, 'tcpscope_packets', { interface: 'eth0', flags: 'syn' })).toBe(2);
    expect(value(m, 'tcpscope_packets', { interface: 'if7', flags: 'ack' })).toBe(1);
    expect(value(m, 'tcpscope_packet_bytes', { interface: 'eth0' })).toBe(148);
  });

  it('adds in-kernel packet counts per interface as increases since the last reading, and starts over when they go down', () => {
    const m = new TcpscopeMetrics();
    const zero = { syn: 0, synack: 0, rst: 0, fin: 0, ack: 0, none: 0 };
    let rows = [{ ifname: 'eth0', packets: { ...zero, syn: 5, ack: 2 }, bytes: 500 }];
    const detach = m.attachPacketCounts({ interfaceCounts: () => rows });
    expect(value(m, 'tcpscope_packets', { interface: 'eth0', flags: 'syn' })).toBe(5);
    rows = [{ ifname: 'eth0', packets: { ...zero, syn: 8, ack: 2 }, bytes: 800 }];
    expect(value(m, 'tcpscope_packets', { interface: 'eth0', flags: 'syn' })).toBe(8);
    expect(value(m, 'tcpscope_packets', { interface: 'eth0', flags: 'ack' })).toBe(2);
    expect(value(m, 'tcpscope_packet_bytes', { interface: 'eth0' })).toBe(800);
    // Re-attached interface: its kernel counts start at 0 again; the series keeps rising.
    rows = [{ ifname: 'eth0', packets: { ...zero, syn: 1 }, bytes: 60 }];
    detach();
    expect(value(m, 'tcpscope_packets', { interface: 'eth0', flags: 'syn' })).toBe(9);
    expect(value(m, 'tcpscope_packet_bytes', { interface: 'eth0' })).toBe(860);
    // Detached: no more readings.
    rows = [{ ifname: 'eth0', packets: { ...zero, syn: 50 }, bytes: 6000 }];
    expect(value(m, 'tcpscope_packets', { interface: 'eth0', flags: 'syn' })).toBe(9);
  });

  it('adds in-kernel drop counts per reason to tcpscope_drops_total as increases', () => {
    const m = new TcpscopeMetrics();
    m.observeDrop({ type: 'drop', reason: 'NO_SOCKET' });
    let rows: Array<{ reason: string | undefined; count: number }> = [{ reason: 'NO_SOCKET', count: 4 }, { reason: undefined, count: 1 }];
    m.attachDropCounts({ dropCounts: () => rows });
    expect(value(m, 'tcpscope_drops', { type: 'drop', reason: 'NO_SOCKET' })).toBe(5);
    expect(value(m, 'tcpscope_drops', { type: 'drop', reason: 'unknown' })).toBe(1);
    rows = [{ reason: 'NO_SOCKET', count: 6 }, { reason: undefined, count: 1 }];
    expect(value(m, 'tcpscope_drops', { type: 'drop', reason: 'NO_SOCKET' })).toBe(7);
    expect(value(m, 'tcpscope_drops', { type: 'drop', reason: 'unknown' })).toBe(1);
  });

  it('caps open-ended labels: ports and interfaces past the limit become "other"', () => {
    const m = new TcpscopeMetrics({ ports: [443], maxPorts: 2, maxInterfaces: 1 });
    for (const sport of [443, 22, 80, 8080, 9000, 443]) m.observeConnection({ type: 'open', direction: 'passive', sport, dport: 50000 + sport });
    const opened = family(m, 'tcpscope_connections_opened');
    const ports = opened.series.map((s) => (s as { labels: Record<string, string> }).labels['port']).sort();
    expect(ports).toEqual(['22', '443', '80', 'other']);
    expect(value(m, 'tcpscope_connections_opened', { port: 'other' })).toBe(2);
    expect(value(m, 'tcpscope_connections_opened', { port: '443' })).toBe(2);
    m.observePacket({ ifname: 'eth0', flagBits: 2 });
    m.observePacket({ ifname: 'eth1', flagBits: 2 });
    expect(value(m, 'tcpscope_packets', { interface: 'other' })).toBe(1);
    const cap = new LabelCap(1);
    expect([cap.get('a'), cap.get('b'), cap.get('a')]).toEqual(['a', 'other', 'a']);
  });

  it('labels connections by service port: local for passive, remote for active', () => {
    const m = new TcpscopeMetrics();
    m.observeConnection({ type: 'open', direction: 'active', sport: 40000, dport: 5432 });
    m.observeConnection({ type: 'state', direction: 'active', sport: 40000, dport: 5432 });
    m.observeConnection({ type: 'close', direction: 'active', sport: 40000, dport: 5432, durationNs: 2e9 });
    expect(value(m, 'tcpscope_connections_opened', { direction: 'active', port: '5432' })).toBe(1);
    expect(value(m, 'tcpscope_connections_closed', { direction: 'active', port: '5432' })).toBe(1);
    const d = family(m, 'tcpscope_connection_duration_seconds');
    expect(d.type === 'histogram' && d.series[0]!.sum).toBe(2);
  });

  it('counts retransmits, resets and drops by kernel reason', () => {
    const m = new TcpscopeMetrics();
    m.observeRetransmit({ type: 'retransmit' });
    m.observeRetransmit({ type: 'synack' });
    m.observeReset({ type: 'sent', reason: 'NO_SOCKET' });
    m.observeReset({ type: 'received', reason: undefined });
    m.observeDrop({ type: 'drop', reason: 'NO_SOCKET' });
    m.observeDrop({ type: 'bad_csum', reason: undefined });
    expect(value(m, 'tcpscope_retransmits', { kind: 'synack' })).toBe(1);
    expect(value(m, 'tcpscope_resets', { direction: 'sent', reason: 'NO_SOCKET' })).toBe(1);
    expect(value(m, 'tcpscope_resets', { direction: 'received', reason: 'unknown' })).toBe(1);
    expect(value(m, 'tcpscope_drops', { type: 'drop', reason: 'NO_SOCKET' })).toBe(1);
    expect(value(m, 'tcpscope_drops', { type: 'bad_csum', reason: 'unknown' })).toBe(1);
  });

  it('puts RTT samples in log2 buckets of seconds', () => {
    expect(RTT_BUCKETS_SECONDS[0]).toBeCloseTo(16e-6);
    for (let i = 1; i < RTT_BUCKETS_SECONDS.length; i++) expect(RTT_BUCKETS_SECONDS[i]! / RTT_BUCKETS_SECONDS[i - 1]!).toBeCloseTo(2);
    const m = new TcpscopeMetrics();
    m.observeRtt({ srttUs: 100 }); // (64, 128] µs
    m.observeRtt({ srttUs: 100_000_000 }); // above the last bucket
    const h = family(m, 'tcpscope_rtt_seconds');
    if (h.type !== 'histogram') throw new Error('not a histogram');
    const s = h.series[0]!;
    expect(s.count).toBe(2);
    expect(s.counts[RTT_BUCKETS_SECONDS.findIndex((b) => b >= 100e-6)]).toBe(1);
    expect(s.counts[RTT_BUCKETS_SECONDS.length]).toBe(1);
    expect(s.sum).toBeCloseTo(100.0001);
  });

  it('tracks alerts by kind and state, with an active gauge', () => {
    const m = new TcpscopeMetrics();
    expect(value(m, 'tcpscope_alerts', { kind: 'syn_flood', state: 'raised' })).toBe(0); // pre-created
    m.observeAlert({ kind: 'syn_flood', state: 'raised' });
    m.observeAlert({ kind: 'syn_flood', state: 'raised' });
    m.observeAlert({ kind: 'syn_flood', state: 'cleared' });
    m.observeAlert({ kind: 'custom_thing', state: 'cleared' });
    expect(value(m, 'tcpscope_alerts', { kind: 'syn_flood', state: 'raised' })).toBe(2);
    expect(value(m, 'tcpscope_alerts_active', { kind: 'syn_flood' })).toBe(1);
    expect(value(m, 'tcpscope_alerts_active', { kind: 'custom_thing' })).toBe(0); // never negative
  });

  it('reads attached probes\' ring-buffer stats at collect, and keeps them past detach', () => {
    const m = new TcpscopeMetrics();
    let stats: ReaderStats = { received: 10, lost: 1, lossCounted: true };
    const detach = m.attachProbe('packets', { stats: () => stats });
    expect(value(m, 'tcpscope_ringbuf_received', { probe: 'packets' })).toBe(10);
    stats = { received: 25, lost: 3, lossCounted: true };
    expect(value(m, 'tcpscope_ringbuf_lost', { probe: 'packets' })).toBe(3);
    detach();
    // A restarted probe counts from zero; the metric keeps rising.
    stats = { received: 5, lost: 0, lossCounted: true };
    m.attachProbe('packets', { stats: () => stats });
    expect(value(m, 'tcpscope_ringbuf_received', { probe: 'packets' })).toBe(30);
    // A probe whose stats() throws (closed) keeps its last reading.
    m.attachProbe('rtt', { stats: () => { throw new Error('closed'); } });
    expect(value(m, 'tcpscope_ringbuf_received', { probe: 'rtt' })).toBe(0);
  });

  it('counts what the kernel sampled out instead of sending, beside received and lost', () => {
    const m = new TcpscopeMetrics();
    let stats = { received: 10, lost: 2, lossCounted: true, sampled: 500 };
    const detach = m.attachProbe('detect', { stats: () => stats });
    expect(value(m, 'tcpscope_events_sampled', { probe: 'detect' })).toBe(500);
    stats = { ...stats, sampled: 900 };
    expect(value(m, 'tcpscope_events_sampled', { probe: 'detect' })).toBe(900);
    detach();
    stats = { received: 0, lost: 0, lossCounted: true, sampled: 100 };
    m.attachProbe('detect', { stats: () => stats });
    expect(value(m, 'tcpscope_events_sampled', { probe: 'detect' })).toBe(1000);
    // A probe without sampling reports 0, not a missing series.
    m.attachProbe('rtt', { stats: () => ({ received: 1, lost: 0, lossCounted: true }) });
    expect(value(m, 'tcpscope_events_sampled', { probe: 'rtt' })).toBe(0);
  });

  it('turns cumulative SYN tables into counters, labelled ports plus "other" summing to the total', () => {
    const m = new TcpscopeMetrics({ maxPorts: 1 });
    let snap = { total: 10, ports: [{ port: 80, count: 6 }, { port: 22, count: 3 }] };
    m.attachSynCounts({ snapshot: () => snap });
    expect(value(m, 'tcpscope_syns', { port: '80' })).toBe(6);
    expect(value(m, 'tcpscope_syns', { port: 'other' })).toBe(4);
    snap = { total: 15, ports: [{ port: 80, count: 9 }, { port: 22, count: 4 }] };
    expect(value(m, 'tcpscope_syns', { port: '80' })).toBe(9);
    expect(value(m, 'tcpscope_syns', { port: 'other' })).toBe(6);
    snap = { total: 2, ports: [{ port: 80, count: 2 }] }; // reset in the kernel: counts restart
    expect(value(m, 'tcpscope_syns', { port: '80' })).toBe(11);
    m.observe('syn', { dport: 80 });
    expect(value(m, 'tcpscope_syns', { port: '80' })).toBe(12);
  });

  it('ignores values that would corrupt a counter', () => {
    const m = new TcpscopeMetrics();
    m.observeGuardDrop('blocklist', -5);
    m.observeGuardDrop('blocklist', Number.NaN);
    m.observeGuardDrop('blocklist', 2);
    expect(value(m, 'tcpscope_guard_drops', { reason: 'blocklist' })).toBe(2);
  });

  it('converts to OpenTelemetry MetricData (cumulative sums, histograms with the same buckets)', () => {
    const m = new TcpscopeMetrics();
    m.observeRtt({ srttUs: 1000 });
    m.observeDrop({ type: 'drop', reason: 'NO_SOCKET' });
    const data = toMetricData(m.collect());
    const rtt = data.find((d) => d.descriptor.name === 'tcpscope_rtt_seconds')!;
    expect(rtt.descriptor.unit).toBe('s');
    expect(rtt.dataPoints[0]!.value).toMatchObject({ count: 1, buckets: { boundaries: [...RTT_BUCKETS_SECONDS] } });
    // Families with no series yet are left out.
    expect(data.find((d) => d.descriptor.name === 'tcpscope_packets')).toBeUndefined();
  });
});

describe('prometheus exposition', () => {
  it('exposes every family with _total counters and cumulative histogram buckets', async () => {
    const m = new TcpscopeMetrics();
    m.observeRtt({ srttUs: 20 });
    m.observeRtt({ srttUs: 40 });
    m.observeConnection({ type: 'open', direction: 'passive', sport: 443, dport: 51000 });
    const text = await createPrometheusRegistry(m).metrics();
    for (const f of m.collect()) expect(text).toContain(`# TYPE ${f.type === 'counter' ? `${f.name}_total` : f.name} ${f.type}`);
    expect(text).toContain('tcpscope_connections_opened_total{direction="passive",port="443"} 1');
    expect(text).toContain('tcpscope_rtt_seconds_bucket{le="0.000016"} 0');
    expect(text).toContain('tcpscope_rtt_seconds_bucket{le="0.000032"} 1');
    expect(text).toContain('tcpscope_rtt_seconds_bucket{le="0.000064"} 2');
    expect(text).toContain('tcpscope_rtt_seconds_bucket{le="+Inf"} 2');
    expect(text).toContain('tcpscope_rtt_seconds_count 2');
    expect(prometheusNames({ name: 'x', type: 'counter' })).toEqual(['x_total']);
  });

  it('serves /metrics over HTTP and reports a busy port clearly', async () => {
    const m = new TcpscopeMetrics();
    m.observeRetransmit({ type: 'retransmit' });
    const server = await startPrometheusServer(m, { port: 0, host: '127.0.0.1' });
    try {
      const res = await fetch(server.url);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toContain('text/plain');
      expect(await res.text()).toContain('tcpscope_retransmits_total{kind="retransmit"} 1');
      expect((await fetch(`http://127.0.0.1:${server.port}/healthz`)).status).toBe(200);
      expect((await fetch(`http://127.0.0.1:${server.port}/nope`)).status).toBe(404);
      await expect(startPrometheusServer(m, { port: server.port, host: '127.0.0.1' })).rejects.toThrow(/cannot listen on 127.0.0.1:\d+: address already in use/);
    } finally {
      await server.close();
    }
  });

  it('uses its own registry, not prom-client\'s global one', async () => {
    const { register } = await import('prom-client');
    createPrometheusRegistry(new TcpscopeMetrics());
    expect(await register.metrics()).not.toContain('tcpscope_');
  });
});

describe('exporters config', () => {
  it('accepts a full config', () => {
    const cfg = validateExportersConfig({
      prometheus: { port: 9464, host: '0.0.0.0' },
      otlp: { url: 'http://collector:4318', intervalMs: 5000, headers: { 'x-api-key': 'k' } },
      alerts: { ndjson: '-', webhook: { url: 'https://hooks.example.com/x', maxQueue: 10 } },
      metrics: { ports: [443, 22], maxPorts: 8 },
    });
    expect(cfg.prometheus).toEqual({ port: 9464, host: '0.0.0.0' });
    expect(cfg.otlp?.intervalMs).toBe(5000);
    expect(cfg.alerts?.webhook).toEqual({ url: 'https://hooks.example.com/x', maxQueue: 10 });
    expect(validateExportersConfig(undefined)).toEqual({});
  });

  it.each([
    [{ prometheus: { port: '9464' } }, 'exporters.prometheus.port: expected an integer 0-65535, got "9464"'],
    [{ prometheus: {} }, 'exporters.prometheus.port: required'],
    [{ prometheus: { port: 1, bind: 'x' } }, "exporters.prometheus: unknown key 'bind' (known: port, host, path, webConfigFile)"],
    [{ otlp: { url: 'collector:4318' } }, 'exporters.otlp.url: expected an http:// or https:// URL'],
    [{ otlp: { url: 'http://c:4318', intervalMs: 0 } }, 'exporters.otlp.intervalMs: expected an integer 100-3600000, got 0'],
    [{ alerts: { webhook: 'not a url' } }, 'exporters.alerts.webhook: not a URL'],
    [{ alerts: { ndjson: 3 } }, 'exporters.alerts.ndjson: expected a non-empty string, got 3'],
    [{ metrics: { ports: [80, 70000] } }, 'exporters.metrics.ports[1]: expected an integer 1-65535, got 70000'],
    [{ prometheus: { port: 1 }, promethues: {} }, "exporters: unknown key 'promethues'"],
    [[], 'exporters: expected an object, got an array'],
  ])('rejects %j', (config, message) => {
    expect(() => validateExportersConfig(config)).toThrow(ConfigError);
    expect(() => validateExportersConfig(config)).toThrow(message);
  });

  it('takes the OTLP URL from OTEL_EXPORTER_OTLP_ENDPOINT when the file has none', () => {
    const saved = process.env['OTEL_EXPORTER_OTLP_ENDPOINT'];
    try {
      delete process.env['OTEL_EXPORTER_OTLP_ENDPOINT'];
      expect(() => validateExportersConfig({ otlp: {} })).toThrow(/otlp.url: required .* unless OTEL_EXPORTER_OTLP_ENDPOINT/);
      process.env['OTEL_EXPORTER_OTLP_ENDPOINT'] = 'http://node-collector:4318';
      expect(validateExportersConfig({ otlp: {} }).otlp?.url).toBe('http://node-collector:4318');
    } finally {
      if (saved === undefined) delete process.env['OTEL_EXPORTER_OTLP_ENDPOINT'];
      else process.env['OTEL_EXPORTER_OTLP_ENDPOINT'] = saved;
    }
  });
});

describe('createExporters', () => {
  it('wires the model, the /metrics server and the NDJSON sink; alerts reach both', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tcpscope-exp-'));
    const file = path.join(dir, 'alerts.ndjson');
    const exporters = await createExporters({ prometheus: { port: 0, host: '127.0.0.1' }, alerts: { ndjson: file } });
    try {
      exporters.metrics.observeDrop({ type: 'drop', reason: 'TCP_CSUM' });
      exporters.alert({ kind: 'port_scan', state: 'raised', at: new Date('2026-01-02T03:04:05Z'), summary: 'scan from 10.0.0.9', key: 'port_scan/10.0.0.9', evidence: { sources: ['10.0.0.9'], ports: [22, 23, 80], when: new Date(0), big: 2n ** 70n } });
      await exporters.flush();
      const text = await (await fetch(exporters.prometheus!.url)).text();
      expect(text).toContain('tcpscope_drops_total{type="drop",reason="TCP_CSUM"} 1');
      expect(text).toContain('tcpscope_alerts_total{kind="port_scan",state="raised"} 1');
      expect(text).toContain('tcpscope_alerts_active{kind="port_scan"} 1');
    } finally {
      await exporters.close();
    }
    const lines = fs.readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ kind: 'port_scan', state: 'raised', at: '2026-01-02T03:04:05.000Z', key: 'port_scan/10.0.0.9', severity: 'warning', evidence: { sources: ['10.0.0.9'], ports: [22, 23, 80], when: '1970-01-01T00:00:00.000Z', big: '1180591620717411303424' } });
    fs.rmSync(dir, { recursive: true });
  });

  it('fails with a clear error and leaves nothing running when a part cannot start', async () => {
    await expect(createExporters({ alerts: { ndjson: '/nonexistent-dir/alerts.ndjson' } })).rejects.toThrow(/alerts ndjson: cannot open '\/nonexistent-dir\/alerts.ndjson'/);
    const first = await createExporters({ prometheus: { port: 0, host: '127.0.0.1' } });
    try {
      await expect(createExporters({ prometheus: { port: first.prometheus!.port, host: '127.0.0.1' } })).rejects.toThrow(/address already in use/);
    } finally {
      await first.close();
    }
    await expect(createExporters({ prometheus: { port: -1 } })).rejects.toThrow(ConfigError);
  });
});
