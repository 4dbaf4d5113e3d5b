// SPDX-License-Identifier: MIT
// OpenTelemetry export against an OTLP/HTTP endpoint started here: it decodes what the SDK
// exporters POST (OTLP protobuf, the default, and JSON) and checks metric names, values,
// units, and an alert's log record, the same for both.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import http from 'node:http';
import { AddressInfo } from 'node:net';
import { TcpscopeMetrics, startOtlpExporter, OtlpExporter, OtlpProtocol, createExporters, otlpBaseUrl, otlpProtocol, validateExportersConfig } from '../lib/export';
import { eventually } from './helpers/bpf';
import { decodeLogsRequest, decodeMetricsRequest } from './helpers/otlp-proto';
import { MissingPackageError, requirePackages } from '../lib/util/optional';

// ---- the OTLP JSON shapes we read ------------------------------------------------------
interface AnyValue { stringValue?: string; intValue?: string | number; doubleValue?: number; boolValue?: boolean; arrayValue?: { values: AnyValue[] } }
interface KeyValue { key: string; value: AnyValue }
interface NumberPoint { attributes?: KeyValue[]; asInt?: string | number; asDouble?: number; startTimeUnixNano: string; timeUnixNano: string }
interface HistogramPoint { attributes?: KeyValue[]; count: string | number; sum?: number; bucketCounts: Array<string | number>; explicitBounds: number[] }
interface OtlpMetric {
  name: string; unit?: string; description?: string;
  sum?: { dataPoints: NumberPoint[]; aggregationTemporality: number; isMonotonic?: boolean };
  gauge?: { dataPoints: NumberPoint[] };
  histogram?: { dataPoints: HistogramPoint[]; aggregationTemporality: number };
}
interface MetricsRequest { resourceMetrics: Array<{ resource: { attributes: KeyValue[] }; scopeMetrics: Array<{ scope: { name: string }; metrics: OtlpMetric[] }> }> }
interface LogRecord { timeUnixNano: string; severityNumber: number; severityText: string; body: AnyValue; attributes: KeyValue[]; eventName?: string }
interface LogsRequest { resourceLogs: Array<{ resource: { attributes: KeyValue[] }; scopeLogs: Array<{ scope: { name: string }; logRecords: LogRecord[] }> }> }

function plain(v: AnyValue | undefined): unknown {
  if (!v) return undefined;
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.intValue !== undefined) return Number(v.intValue);
  if (v.doubleValue !== undefined) return v.doubleValue;
  if (v.boolValue !== undefined) return v.boolValue;
  if (v.arrayValue) return v.arrayValue.values.map(plain);
  return undefined;
}

function attrs(kvs: KeyValue[] | undefined): Record<string, unknown> {
  return Object.fromEntries((kvs ?? []).map((kv) => [kv.key, plain(kv.value)]));
}

/** A minimal OTLP/HTTP receiver: keeps every decoded request. */
class Receiver {
  readonly metrics: MetricsRequest[] = [];
  readonly logs: LogsRequest[] = [];
  readonly contentTypes = new Set<string>();
  private server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const type = String(req.headers['content-type']);
      this.contentTypes.add(type);
      const raw = Buffer.concat(chunks);
      const proto = type === 'application/x-protobuf';
      if (req.method === 'POST' && req.url === '/v1/metrics') this.metrics.push((proto ? decodeMetricsRequest(raw) : JSON.parse(raw.toString('utf8'))) as MetricsRequest);
      else if (req.method === 'POST' && req.url === '/v1/logs') this.logs.push((proto ? decodeLogsRequest(raw) : JSON.parse(raw.toString('utf8'))) as LogsRequest);
      else return void res.writeHead(404).end();
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  url = '';
  async start(): Promise<void> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }
  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
  /** The latest data of metric `name`. */
  latest(name: string): OtlpMetric | undefined {
    for (let i = this.metrics.length - 1; i >= 0; i--) {
      for (const rm of this.metrics[i]!.resourceMetrics) {
        for (const sm of rm.scopeMetrics) {
          const m = sm.metrics.find((x) => x.name === name);
          if (m) return m;
        }
      }
    }
    return undefined;
  }
  logRecords(): Array<LogRecord & { resource: Record<string, unknown> }> {
    return this.logs.flatMap((r) => r.resourceLogs.flatMap((rl) => rl.scopeLogs.flatMap((sl) => sl.logRecords.map((lr) => ({ ...lr, resource: attrs(rl.resource.attributes) })))));
  }
}

function pointValue(m: OtlpMetric | undefined, labels: Record<string, string>): number | undefined {
  const points = m?.sum?.dataPoints ?? m?.gauge?.dataPoints ?? [];
  const p = points.find((dp) => Object.entries(labels).every(([k, v]) => attrs(dp.attributes)[k] === v));
  return p === undefined ? undefined : Number(p.asInt ?? p.asDouble);
}

const CONTENT_TYPE: Record<OtlpProtocol, string> = { 'http/protobuf': 'application/x-protobuf', 'http/json': 'application/json' };

describe.each([undefined, 'http/json'] as const)('OTLP export (protocol %s)', (protocol) => {
  const receiver = new Receiver();
  const metrics = new TcpscopeMetrics();
  let otlp: OtlpExporter;

  beforeAll(async () => {
    await receiver.start();
    otlp = startOtlpExporter(metrics, { url: `${receiver.url}/`, intervalMs: 300, resourceAttributes: { 'k8s.node.name': 'node-a' }, ...(protocol ? { protocol } : {}) });
  });

  afterAll(async () => {
    await otlp?.shutdown();
    await receiver.stop();
  });

  it('pushes the model\'s metrics: names, units, cumulative monotonic sums and histograms', async () => {
    for (let i = 0; i < 5; i++) metrics.observeConnection({ type: 'open', direction: 'passive', sport: 8443, dport: 40000 + i });
    metrics.observeReset({ type: 'received', reason: undefined });
    metrics.observeRtt({ srttUs: 100 });
    metrics.observeRtt({ srttUs: 200_000 });
    metrics.observeAlert({ kind: 'port_scan', state: 'raised' });

    await eventually(() => pointValue(receiver.latest('tcpscope_connections_opened'), { direction: 'passive', port: '8443' }) === 5, 10_000, 'connections in an OTLP push');
    // Without a protocol option (or OTEL_EXPORTER_OTLP_PROTOCOL), the OpenTelemetry default: protobuf.
    expect([...receiver.contentTypes]).toEqual([CONTENT_TYPE[protocol ?? 'http/protobuf']]);

    const opened = receiver.latest('tcpscope_connections_opened')!;
    expect(opened.unit).toBe('{connection}');
    expect(opened.sum!.isMonotonic).toBe(true);
    expect(opened.sum!.aggregationTemporality).toBe(2); // CUMULATIVE
    expect(pointValue(receiver.latest('tcpscope_resets'), { direction: 'received', reason: 'unknown' })).toBe(1);
    expect(pointValue(receiver.latest('tcpscope_alerts_active'), { kind: 'port_scan' })).toBe(1);
    expect(receiver.latest('tcpscope_alerts_active')!.gauge).toBeDefined();

    const rtt = receiver.latest('tcpscope_rtt_seconds')!;
    expect(rtt.unit).toBe('s');
    const hp = rtt.histogram!.dataPoints[0]!;
    expect(Number(hp.count)).toBe(2);
    expect(hp.sum).toBeCloseTo(0.2001);
    expect(hp.explicitBounds).toHaveLength(20);
    expect(hp.bucketCounts.map(Number).reduce((a, b) => a + b, 0)).toBe(2);

    const resource = attrs(receiver.metrics[0]!.resourceMetrics[0]!.resource.attributes);
    expect(resource).toMatchObject({ 'service.name': 'tcpscope', 'k8s.node.name': 'node-a' });
    expect(receiver.metrics[0]!.resourceMetrics[0]!.scopeMetrics.map((s) => s.scope.name)).toContain('tcpscope');

    // Later pushes carry the running totals.
    metrics.observeConnection({ type: 'open', direction: 'passive', sport: 8443, dport: 50000 });
    await eventually(() => pointValue(receiver.latest('tcpscope_connections_opened'), { direction: 'passive', port: '8443' }) === 6, 10_000, 'the next push');
  }, 30_000);

  it('sends alerts as log records with flat tcpscope.alert.* attributes', async () => {
    otlp.alertSink.send({
      kind: 'syn_flood', state: 'raised', at: new Date('2026-03-04T05:06:07.008Z'), key: 'syn_flood/port/443',
      summary: 'SYN flood on :443 (12000/s > 1000/s)',
      evidence: { sources: ['10.0.0.1', '10.0.0.2'], ports: [443], rates: { syn: 12000 }, thresholds: { syn: 1000 }, windowMs: 1000, since: new Date(0) },
    });
    await otlp.alertSink.flush();
    const records = await eventually(() => receiver.logRecords().length ? receiver.logRecords() : undefined, 5000, 'a log record');
    const r = records[0]!;
    expect(plain(r.body)).toBe('SYN flood on :443 (12000/s > 1000/s)');
    expect(r.severityNumber).toBe(13); // WARN
    expect(r.severityText).toBe('WARNING');
    expect(r.eventName).toBe('tcpscope.alert');
    expect(BigInt(r.timeUnixNano)).toBe(BigInt(Date.parse('2026-03-04T05:06:07.008Z')) * 1_000_000n);
    expect(attrs(r.attributes)).toEqual({
      'tcpscope.alert.kind': 'syn_flood',
      'tcpscope.alert.state': 'raised',
      'tcpscope.alert.key': 'syn_flood/port/443',
      'tcpscope.alert.severity': 'warning',
      'tcpscope.alert.evidence.sources': ['10.0.0.1', '10.0.0.2'],
      'tcpscope.alert.evidence.ports': [443],
      'tcpscope.alert.evidence.rates.syn': 12000,
      'tcpscope.alert.evidence.thresholds.syn': 1000,
      'tcpscope.alert.evidence.windowMs': 1000,
      'tcpscope.alert.evidence.since': '1970-01-01T00:00:00.000Z',
    });
    expect(r.resource['service.name']).toBe('tcpscope');
  });

  it('normalizes the base URL', () => {
    expect(otlpBaseUrl('http://c:4318/')).toBe('http://c:4318');
    expect(otlpBaseUrl('http://c:4318/v1/metrics')).toBe('http://c:4318');
    expect(() => otlpBaseUrl('grpc://c:4317')).toThrow(/http\(s\).*4318/);
  });
});

describe('createExporters with otlp', () => {
  it('sends alerts to OTLP logs and metrics counters from one alert() call', async () => {
    const receiver = new Receiver();
    await receiver.start();
    const exporters = await createExporters({ otlp: { url: receiver.url, intervalMs: 60_000 } });
    try {
      exporters.alert({ kind: 'rate_anomaly', state: 'cleared', at: new Date(), summary: 'rate back to normal', evidence: {} });
      await exporters.flush();
      await eventually(() => receiver.logRecords().length > 0 && receiver.metrics.length > 0, 5000, 'logs and metrics');
      expect(attrs(receiver.logRecords()[0]!.attributes)['tcpscope.alert.kind']).toBe('rate_anomaly');
      expect(pointValue(receiver.latest('tcpscope_alerts'), { kind: 'rate_anomaly', state: 'cleared' })).toBe(1);
    } finally {
      await exporters.close();
      await receiver.stop();
    }
  });
});

describe('OTLP settings from the standard variables', () => {
  const VARS = ['OTEL_EXPORTER_OTLP_PROTOCOL', 'OTEL_EXPORTER_OTLP_METRICS_PROTOCOL', 'OTEL_EXPORTER_OTLP_LOGS_PROTOCOL', 'OTEL_EXPORTER_OTLP_ENDPOINT',
    'OTEL_EXPORTER_OTLP_METRICS_ENDPOINT', 'OTEL_EXPORTER_OTLP_LOGS_ENDPOINT', 'OTEL_EXPORTER_OTLP_HEADERS'] as const;
  const withEnv = async (env: Partial<Record<(typeof VARS)[number], string>>, f: () => Promise<void> | void): Promise<void> => {
    const saved = Object.fromEntries(VARS.map((k) => [k, process.env[k]]));
    for (const k of VARS) delete process.env[k];
    Object.assign(process.env, env);
    try {
      await f();
    } finally {
      for (const k of VARS) {
        if (saved[k] === undefined) delete process.env[k];
        else process.env[k] = saved[k];
      }
    }
  };

  it('picks the protocol: option, then per-signal variable, then OTEL_EXPORTER_OTLP_PROTOCOL, then http/protobuf', async () => {
    await withEnv({}, () => expect(otlpProtocol('METRICS')).toBe('http/protobuf'));
    await withEnv({ OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' }, () => {
      expect(otlpProtocol('METRICS')).toBe('http/json');
      expect(otlpProtocol('LOGS', 'http/protobuf')).toBe('http/protobuf');
    });
    await withEnv({ OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_EXPORTER_OTLP_LOGS_PROTOCOL: 'http/protobuf' }, () => {
      expect(otlpProtocol('LOGS')).toBe('http/protobuf');
      expect(otlpProtocol('METRICS')).toBe('http/json');
    });
  });

  it('refuses grpc and unknown protocols in one line that says what to use', async () => {
    await withEnv({ OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }, () => {
      expect(() => otlpProtocol('METRICS')).toThrow(/^otlp: OTEL_EXPORTER_OTLP_PROTOCOL is grpc, which tcpscope does not speak: use http\/protobuf/);
    });
    await withEnv({ OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: 'http/xml' }, () => {
      expect(() => otlpProtocol('METRICS')).toThrow('otlp: OTEL_EXPORTER_OTLP_METRICS_PROTOCOL is "http/xml"; expected http/protobuf or http/json');
    });
    expect(() => validateExportersConfig({ otlp: { url: 'http://c:4318', protocol: 'grpc' } })).toThrow(/exporters.otlp.protocol: expected "http\/protobuf" or "http\/json", got "grpc" \(gRPC is not supported/);
  });

  it('sends to the per-signal endpoints with OTEL_EXPORTER_OTLP_HEADERS, JSON by OTEL_EXPORTER_OTLP_PROTOCOL, when the config names no URL', async () => {
    const receiver = new Receiver();
    await receiver.start();
    const seen: string[] = [];
    const server = (receiver as unknown as { server: http.Server }).server;
    server.prependListener('request', (req: http.IncomingMessage) => { seen.push(String(req.headers['x-tenant'])); });
    try {
      await withEnv({
        OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: `${receiver.url}/v1/metrics`,
        OTEL_EXPORTER_OTLP_LOGS_ENDPOINT: `${receiver.url}/v1/logs`,
        OTEL_EXPORTER_OTLP_HEADERS: 'x-tenant=blue',
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      }, async () => {
        const exporters = await createExporters({ otlp: { intervalMs: 60_000 } });
        try {
          exporters.alert({ kind: 'port_scan', state: 'raised', at: new Date(), summary: 'scan', evidence: {} });
          await exporters.flush();
          await eventually(() => receiver.logRecords().length > 0 && receiver.metrics.length > 0, 5000, 'logs and metrics');
        } finally {
          await exporters.close();
        }
      });
      expect([...receiver.contentTypes]).toEqual(['application/json']);
      expect(new Set(seen)).toEqual(new Set(['blue']));
    } finally {
      await receiver.stop();
    }
  });
});

describe('optional peer dependencies', () => {
  it('names every missing package and the command that installs them, in one line', () => {
    expect(() => requirePackages('OpenTelemetry export', ['@opentelemetry/api', '@tcpscope-test/absent-a', '@tcpscope-test/absent-b']))
      .toThrow(new MissingPackageError('OpenTelemetry export', ['@tcpscope-test/absent-a', '@tcpscope-test/absent-b']));
    expect(new MissingPackageError('Prometheus export', ['prom-client']).message).toBe('Prometheus export needs the package prom-client: npm install prom-client');
  });
});
