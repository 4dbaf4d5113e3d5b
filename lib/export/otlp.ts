// SPDX-License-Identifier: MIT
// OpenTelemetry export: the metrics model through the OTel metrics SDK (a MeterProvider
// whose periodic reader pushes OTLP over HTTP, protobuf or JSON), and alerts as OTLP log
// records through the logs SDK; the SDK packages are optional peer dependencies. Names are the
// model's (tcpscope_*); an OpenTelemetry Collector exporting to Prometheus adds `_total` to
// monotonic sums, so both paths give the dashboard the same names.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { HrTime } from '@opentelemetry/api';
import type { AnyValueMap, Logger } from '@opentelemetry/api-logs';
import type { Resource } from '@opentelemetry/resources';
import type { CollectionResult, MeterProvider, MetricData, MetricProducer } from '@opentelemetry/sdk-metrics';
import type { LoggerProvider } from '@opentelemetry/sdk-logs';
import { MetricSnapshot, TcpscopeMetrics } from './metrics';
import { packageRoot } from '../bpf/paths';
import { requirePackages } from '../util/optional';
import { Alert, AlertSink, alertSeverity, jsonSafe } from '../alerts/types';

export type OtlpProtocol = 'http/protobuf' | 'http/json';

export interface OtlpOptions {
  /**
   * Base URL of an OTLP/HTTP receiver, e.g. http://localhost:4318 (/v1/metrics and /v1/logs
   * are appended). Without it, the standard variables: OTEL_EXPORTER_OTLP_METRICS_ENDPOINT /
   * OTEL_EXPORTER_OTLP_LOGS_ENDPOINT (full URLs), else OTEL_EXPORTER_OTLP_ENDPOINT (a base).
   */
  url?: string;
  /**
   * Wire format. Default: OTEL_EXPORTER_OTLP_{METRICS,LOGS}_PROTOCOL, else
   * OTEL_EXPORTER_OTLP_PROTOCOL, else 'http/protobuf' (the OpenTelemetry default).
   */
  protocol?: OtlpProtocol;
  /** Metrics push interval. Default OTEL_METRIC_EXPORT_INTERVAL, else 15000 ms. */
  intervalMs?: number;
  /** Per-export timeout. Default OTEL_EXPORTER_OTLP_TIMEOUT, else 10000 ms (capped to intervalMs). */
  timeoutMs?: number;
  /** Extra headers (e.g. an API key), over those of OTEL_EXPORTER_OTLP_HEADERS. */
  headers?: Record<string, string>;
  /** Send metrics. Default true. */
  metrics?: boolean;
  /** Send alerts as log records (use `alertSink`). Default true. */
  logs?: boolean;
  /** Resource attributes added to service.name=tcpscope, host.name and OTEL_RESOURCE_ATTRIBUTES. */
  resourceAttributes?: Record<string, string>;
}

export interface OtlpExporter {
  readonly meterProvider: MeterProvider | undefined;
  readonly loggerProvider: LoggerProvider | undefined;
  /** Alerts as OTLP log records (a no-op sink when logs are off). */
  readonly alertSink: AlertSink;
  /** Exports pending metrics and logs now. */
  forceFlush(): Promise<void>;
  /** Flushes and stops. */
  shutdown(): Promise<void>;
}

// The SDK is an optional peer dependency, loaded on first use: it takes a good fraction of a
// second to require, which every `require('tcpscope')` and CLI command would otherwise pay
// without exporting anything.
/* eslint-disable @typescript-eslint/no-require-imports */
type MetricExporterModule = typeof import('@opentelemetry/exporter-metrics-otlp-http');
type LogExporterModule = typeof import('@opentelemetry/exporter-logs-otlp-http');
let sdk: {
  api: typeof import('@opentelemetry/api');
  apiLogs: typeof import('@opentelemetry/api-logs');
  resources: typeof import('@opentelemetry/resources');
  metrics: typeof import('@opentelemetry/sdk-metrics');
  logs: typeof import('@opentelemetry/sdk-logs');
} | undefined;
const SDK_PACKAGES = ['@opentelemetry/api', '@opentelemetry/api-logs', '@opentelemetry/resources', '@opentelemetry/sdk-metrics', '@opentelemetry/sdk-logs'];
/** The exporter packages of each protocol: metrics, logs. */
const EXPORTER_PACKAGES: Record<OtlpProtocol, [string, string]> = {
  'http/protobuf': ['@opentelemetry/exporter-metrics-otlp-proto', '@opentelemetry/exporter-logs-otlp-proto'],
  'http/json': ['@opentelemetry/exporter-metrics-otlp-http', '@opentelemetry/exporter-logs-otlp-http'],
};
function otel(): NonNullable<typeof sdk> {
  if (!sdk) {
    requirePackages('OpenTelemetry export', SDK_PACKAGES);
    sdk = {
      api: require('@opentelemetry/api'),
      apiLogs: require('@opentelemetry/api-logs'),
      resources: require('@opentelemetry/resources'),
      metrics: require('@opentelemetry/sdk-metrics'),
      logs: require('@opentelemetry/sdk-logs'),
    };
  }
  return sdk;
}
/**
 * The OTLP exporter modules for each wanted signal's protocol (the proto and http packages
 * export the same class names). Every missing package is named at once.
 */
function exporters(metrics: OtlpProtocol | undefined, logs: OtlpProtocol | undefined): { metric?: MetricExporterModule; log?: LogExporterModule } {
  const m = metrics && EXPORTER_PACKAGES[metrics][0];
  const l = logs && EXPORTER_PACKAGES[logs][1];
  const protocols = [...new Set([metrics, logs].filter((p) => p !== undefined))].join(', ');
  requirePackages(`OpenTelemetry export (OTLP ${protocols})`, [...SDK_PACKAGES, ...(m ? [m] : []), ...(l ? [l] : [])]);
  return { metric: m ? require(m) as MetricExporterModule : undefined, log: l ? require(l) as LogExporterModule : undefined };
}
/* eslint-enable @typescript-eslint/no-require-imports */

const SCOPE = { name: 'tcpscope', version: packageVersion() };

function packageVersion(): string {
  try {
    return (JSON.parse(fs.readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return '0.0.0';
  }
}

function hrTime(ms: number): HrTime {
  const s = Math.floor(ms / 1000);
  return [s, Math.round((ms - s * 1000) * 1e6)];
}

/** Model snapshots as OTel MetricData: cumulative sums, gauges and explicit-bucket histograms. */
export function toMetricData(families: readonly MetricSnapshot[], nowMs = Date.now()): MetricData[] {
  const { api: { ValueType }, metrics: { AggregationTemporality, DataPointType } } = otel();
  const endTime = hrTime(nowMs);
  const out: MetricData[] = [];
  for (const f of families) {
    if (!f.series.length) continue;
    const descriptor = { name: f.name, description: f.help, unit: f.unit, valueType: f.type === 'histogram' ? ValueType.DOUBLE : ValueType.INT };
    if (f.type === 'histogram') {
      out.push({
        descriptor,
        aggregationTemporality: AggregationTemporality.CUMULATIVE,
        dataPointType: DataPointType.HISTOGRAM,
        dataPoints: f.series.map((s) => ({
          startTime: hrTime(s.startMs),
          endTime,
          attributes: { ...s.labels },
          value: { buckets: { boundaries: [...f.bounds], counts: [...s.counts] }, sum: s.sum, count: s.count },
        })),
      });
    } else if (f.type === 'counter') {
      out.push({
        descriptor,
        aggregationTemporality: AggregationTemporality.CUMULATIVE,
        dataPointType: DataPointType.SUM,
        isMonotonic: true,
        dataPoints: f.series.map((s) => ({ startTime: hrTime(s.startMs), endTime, attributes: { ...s.labels }, value: s.value })),
      });
    } else {
      out.push({
        descriptor,
        aggregationTemporality: AggregationTemporality.CUMULATIVE,
        dataPointType: DataPointType.GAUGE,
        dataPoints: f.series.map((s) => ({ startTime: endTime, endTime, attributes: { ...s.labels }, value: s.value })),
      });
    }
  }
  return out;
}

/**
 * Feeds the model to the SDK's reader. The model already aggregates (and its histograms
 * have fixed buckets), so a producer hands over finished data points instead of replaying
 * every event into SDK instruments.
 */
class ModelProducer implements MetricProducer {
  constructor(private readonly metrics: TcpscopeMetrics, private readonly resource: Resource) {}
  async collect(): Promise<CollectionResult> {
    return {
      resourceMetrics: { resource: this.resource, scopeMetrics: [{ scope: SCOPE, metrics: toMetricData(this.metrics.collect()) }] },
      errors: [],
    };
  }
}

/** Normalizes the base URL: no trailing slash, no /v1/... suffix. */
export function otlpBaseUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new TypeError(`otlp: bad URL '${url}' (expected e.g. http://localhost:4318)`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new TypeError(`otlp: URL must be http(s), got '${url}' (OTLP/gRPC is not supported: use the collector's HTTP port, 4318)`);
  return u.href.replace(/\/+$/, '').replace(/\/v1\/(metrics|logs|traces)$/, '');
}

function resourceFor(extra: Record<string, string> = {}): Resource {
  const { resourceFromAttributes, detectResources, envDetector } = otel().resources;
  const base = resourceFromAttributes({
    'service.name': 'tcpscope',
    'service.version': SCOPE.version,
    // In Kubernetes the pod's host name is the pod's; the downward API gives the node.
    'host.name': process.env['NODE_NAME'] || os.hostname(),
  });
  // OTEL_RESOURCE_ATTRIBUTES / OTEL_SERVICE_NAME win over the defaults, explicit options over both.
  return base.merge(detectResources({ detectors: [envDetector] })).merge(resourceFromAttributes(extra));
}

/**
 * Attributes of an alert's log record: flat `tcpscope.alert.*` keys a collector can filter
 * on. Evidence is flattened with dotted keys (`tcpscope.alert.evidence.rates.syn`); arrays of
 * plain values stay arrays, anything else becomes its JSON text.
 */
export function alertAttributes(alert: Alert): AnyValueMap {
  const a: AnyValueMap = {
    'tcpscope.alert.kind': alert.kind,
    'tcpscope.alert.state': alert.state,
    'tcpscope.alert.key': alert.key ?? alert.kind,
    'tcpscope.alert.severity': alertSeverity(alert),
  };
  const flatten = (prefix: string, value: unknown, depth: number): void => {
    if (value === null || value === undefined) return;
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') {
      a[prefix] = value;
    } else if (Array.isArray(value) && value.every((v) => typeof v === 'string') ) {
      a[prefix] = [...value] as string[];
    } else if (Array.isArray(value) && value.every((v) => typeof v === 'number')) {
      a[prefix] = [...value] as number[];
    } else if (typeof value === 'object' && !Array.isArray(value) && !(value instanceof Date) && depth < 3) {
      for (const [k, v] of Object.entries(value)) flatten(`${prefix}.${k}`, v, depth + 1);
    } else {
      const safe = jsonSafe(value, 0, new Set());
      a[prefix] = typeof safe === 'string' ? safe : JSON.stringify(safe);
    }
  };
  for (const [k, v] of Object.entries(alert.evidence)) flatten(`tcpscope.alert.evidence.${k}`, v, 0);
  return a;
}

function alertLogSink(logger: Logger | undefined, provider: LoggerProvider | undefined): AlertSink {
  return {
    name: 'otlp',
    send(alert: Alert): void {
      if (!logger) return;
      const severity = alertSeverity(alert);
      const { SeverityNumber } = otel().apiLogs;
      logger.emit({
        eventName: 'tcpscope.alert',
        timestamp: alert.at,
        severityNumber: severity === 'critical' ? SeverityNumber.ERROR : severity === 'warning' ? SeverityNumber.WARN : SeverityNumber.INFO,
        severityText: severity.toUpperCase(),
        body: alert.summary,
        attributes: alertAttributes(alert),
      });
    },
    flush: async () => { await provider?.forceFlush(); },
    close: async () => { await provider?.forceFlush(); },
  };
}

const PROTOCOLS: readonly OtlpProtocol[] = ['http/protobuf', 'http/json'];

function envNumber(name: string): number | undefined {
  const v = process.env[name];
  if (v === undefined || v.trim() === '') return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new TypeError(`otlp: ${name}=${JSON.stringify(v)} is not a positive number of milliseconds`);
  return n;
}

/**
 * The protocol of a signal: `option`, else OTEL_EXPORTER_OTLP_<SIGNAL>_PROTOCOL, else
 * OTEL_EXPORTER_OTLP_PROTOCOL, else http/protobuf. gRPC is refused with what to use instead.
 */
export function otlpProtocol(signal: 'METRICS' | 'LOGS', option?: string): OtlpProtocol {
  const [name, value] = option !== undefined ? ['protocol', option]
    : process.env[`OTEL_EXPORTER_OTLP_${signal}_PROTOCOL`] ? [`OTEL_EXPORTER_OTLP_${signal}_PROTOCOL`, process.env[`OTEL_EXPORTER_OTLP_${signal}_PROTOCOL`]!]
      : process.env['OTEL_EXPORTER_OTLP_PROTOCOL'] ? ['OTEL_EXPORTER_OTLP_PROTOCOL', process.env['OTEL_EXPORTER_OTLP_PROTOCOL']]
        : ['default', 'http/protobuf'];
  if ((PROTOCOLS as readonly string[]).includes(value)) return value as OtlpProtocol;
  if (value === 'grpc') throw new TypeError(`otlp: ${name} is grpc, which tcpscope does not speak: use http/protobuf (the collector's port 4318)`);
  throw new TypeError(`otlp: ${name} is ${JSON.stringify(value)}; expected http/protobuf or http/json`);
}

/** Starts pushing `metrics` (every intervalMs) and makes alertSink send OTLP logs to `url`. */
export function startOtlpExporter(metrics: TcpscopeMetrics, options: OtlpOptions): OtlpExporter {
  const base = options.url === undefined ? undefined : otlpBaseUrl(options.url);
  const { metric, log } = exporters(
    options.metrics !== false ? otlpProtocol('METRICS', options.protocol) : undefined,
    options.logs !== false ? otlpProtocol('LOGS', options.protocol) : undefined,
  );
  const { metrics: { MeterProvider, PeriodicExportingMetricReader }, logs: { LoggerProvider, BatchLogRecordProcessor } } = otel();
  const intervalMs = options.intervalMs ?? envNumber('OTEL_METRIC_EXPORT_INTERVAL') ?? 15_000;
  // Unset options stay unset so that the SDK applies OTEL_EXPORTER_OTLP_* (timeout, headers,
  // endpoints, compression, certificates); explicit options win over the variables.
  const timeoutMs = options.timeoutMs === undefined ? undefined : Math.min(options.timeoutMs, intervalMs);
  const exporterOptions = (path: string): { url?: string; headers?: Record<string, string>; timeoutMillis?: number } => {
    const o: { url?: string; headers?: Record<string, string>; timeoutMillis?: number } = {};
    if (base !== undefined) o.url = `${base}${path}`;
    if (options.headers) o.headers = options.headers;
    if (timeoutMs !== undefined) o.timeoutMillis = timeoutMs;
    return o;
  };
  const resource = resourceFor(options.resourceAttributes);

  let meterProvider: MeterProvider | undefined;
  if (metric) {
    const reader = new PeriodicExportingMetricReader({
      exporter: new metric.OTLPMetricExporter(exporterOptions('/v1/metrics')),
      exportIntervalMillis: intervalMs,
      exportTimeoutMillis: Math.min(timeoutMs ?? envNumber('OTEL_EXPORTER_OTLP_TIMEOUT') ?? 10_000, intervalMs),
      metricProducers: [new ModelProducer(metrics, resource)],
    });
    meterProvider = new MeterProvider({ resource, readers: [reader] });
  }

  let loggerProvider: LoggerProvider | undefined;
  let logger: Logger | undefined;
  if (log) {
    loggerProvider = new LoggerProvider({
      resource,
      processors: [new BatchLogRecordProcessor({
        exporter: new log.OTLPLogExporter(exporterOptions('/v1/logs')),
        // Alerts are rare and urgent: ship them within a second rather than the default 5.
        scheduledDelayMillis: 1000,
        maxQueueSize: 2048,
      })],
    });
    logger = loggerProvider.getLogger(SCOPE.name, SCOPE.version);
  }

  let stopped = false;
  return {
    meterProvider,
    loggerProvider,
    alertSink: alertLogSink(logger, loggerProvider),
    async forceFlush(): Promise<void> {
      if (stopped) return;
      await Promise.all([meterProvider?.forceFlush(), loggerProvider?.forceFlush()]);
    },
    async shutdown(): Promise<void> {
      if (stopped) return;
      stopped = true;
      // shutdown() exports what is pending first.
      await Promise.all([meterProvider?.shutdown(), loggerProvider?.shutdown()]);
    },
  };
}
