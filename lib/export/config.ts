// SPDX-License-Identifier: MIT
// The exporters' configuration (the `exporters` part of a `tcpscope serve` config file) and
// its validation: every mistake is reported with its path in the file and what was expected,
// before anything listens or connects.
import type { OtlpOptions } from './otlp';
import type { MetricsOptions } from './metrics';
import { refusedHost } from '../alerts/target';

export interface PrometheusConfig {
  /** Port of the /metrics endpoint (0: any free port). */
  port: number;
  /** Listen address. Default 127.0.0.1 (this host only); '0.0.0.0' or '::' to be scraped from elsewhere. */
  host?: string;
  /** Default /metrics. */
  path?: string;
  /** An exporter-toolkit web config file (TLS, basic auth), as node_exporter's --web.config.file. */
  webConfigFile?: string;
}

/** The exporter's options; without url, the OTEL_EXPORTER_OTLP_*ENDPOINT variables say where. */
export type OtlpConfig = OtlpOptions;

export interface WebhookConfig {
  url: string;
  headers?: Record<string, string>;
  maxQueue?: number;
  maxAttempts?: number;
  timeoutMs?: number;
  /** Signs each body with HMAC-SHA256 (header X-Tcpscope-Signature-256: sha256=HEX). */
  secret?: string;
  /** Allow link-local and cloud metadata targets (refused by default). */
  allowLinkLocal?: boolean;
}

export interface AlertsConfig {
  /** A file to append NDJSON alerts to, or '-' for stdout. */
  ndjson?: string;
  /** A URL to POST each alert to (JSON), or its full settings. */
  webhook?: string | WebhookConfig;
}

export interface ExportersConfig {
  prometheus?: PrometheusConfig;
  otlp?: OtlpConfig;
  alerts?: AlertsConfig;
  /** Label caps of the metrics model. */
  metrics?: MetricsOptions;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

type Obj = Record<string, unknown>;

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'object') return 'an object';
  return String(v);
}

function object(v: unknown, at: string, known: readonly string[]): Obj {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new ConfigError(`${at}: expected an object, got ${describe(v)}`);
  for (const key of Object.keys(v)) {
    if (!known.includes(key)) throw new ConfigError(`${at}: unknown key '${key}' (known: ${known.join(', ')})`);
  }
  return v as Obj;
}

function integer(v: unknown, at: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw new ConfigError(`${at}: expected an integer ${min}-${max}, got ${describe(v)}`);
  return v;
}

function string(v: unknown, at: string): string {
  if (typeof v !== 'string' || !v) throw new ConfigError(`${at}: expected a non-empty string, got ${describe(v)}`);
  return v;
}

function boolean(v: unknown, at: string): boolean {
  if (typeof v !== 'boolean') throw new ConfigError(`${at}: expected true or false, got ${describe(v)}`);
  return v;
}

function httpUrl(v: unknown, at: string, example: string): string {
  const s = string(v, at);
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    throw new ConfigError(`${at}: not a URL: ${JSON.stringify(s)} (expected e.g. ${example})`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new ConfigError(`${at}: expected an http:// or https:// URL, got ${JSON.stringify(s)}`);
  return s;
}

function stringMap(v: unknown, at: string): Record<string, string> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new ConfigError(`${at}: expected an object of strings, got ${describe(v)}`);
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(v)) {
    if (typeof val !== 'string') throw new ConfigError(`${at}.${k}: expected a string, got ${describe(val)}`);
    out[k] = val;
  }
  return out;
}

/** Copies the keys of `src` that `read` accepts; absent keys stay absent (exactOptionalPropertyTypes-friendly). */
function opt<T>(src: Obj, key: string, at: string, read: (v: unknown, at: string) => T): T | undefined {
  return src[key] === undefined ? undefined : read(src[key], `${at}.${key}`);
}

function assign<T extends object>(target: T, values: Partial<T>): T {
  for (const [k, v] of Object.entries(values)) if (v !== undefined) (target as Obj)[k] = v;
  return target;
}

/**
 * Checks an exporters configuration (parsed JSON/YAML) and returns it typed.
 * Throws ConfigError naming the offending key, e.g. `exporters.prometheus.port: expected
 * an integer 0-65535, got "9100x"`. `at` is the prefix used in messages.
 */
export function validateExportersConfig(value: unknown, at = 'exporters'): ExportersConfig {
  const root = object(value ?? {}, at, ['prometheus', 'otlp', 'alerts', 'metrics']);
  const config: ExportersConfig = {};

  if (root['prometheus'] !== undefined) {
    const p = `${at}.prometheus`;
    const o = object(root['prometheus'], p, ['port', 'host', 'path', 'webConfigFile']);
    if (o['port'] === undefined) throw new ConfigError(`${p}.port: required (e.g. 9464)`);
    const path = opt(o, 'path', p, string);
    if (path !== undefined && !path.startsWith('/')) throw new ConfigError(`${p}.path: must start with '/', got ${JSON.stringify(path)}`);
    config.prometheus = assign<PrometheusConfig>({ port: integer(o['port'], `${p}.port`, 0, 65535) }, { host: opt(o, 'host', p, string), path, webConfigFile: opt(o, 'webConfigFile', p, string) });
  }

  if (root['otlp'] !== undefined) {
    const p = `${at}.otlp`;
    const o = object(root['otlp'], p, ['url', 'protocol', 'intervalMs', 'timeoutMs', 'headers', 'metrics', 'logs', 'resourceAttributes']);
    const env = process.env;
    const url = opt(o, 'url', p, (v, a) => httpUrl(v, a, 'http://otel-collector:4318')) ?? env['OTEL_EXPORTER_OTLP_ENDPOINT'];
    const bySignal = env['OTEL_EXPORTER_OTLP_METRICS_ENDPOINT'] && env['OTEL_EXPORTER_OTLP_LOGS_ENDPOINT'];
    if (url === undefined && !bySignal) throw new ConfigError(`${p}.url: required (e.g. http://otel-collector:4318) unless OTEL_EXPORTER_OTLP_ENDPOINT is set`);
    if (url !== undefined) httpUrl(url, `${p}.url`, 'http://otel-collector:4318');
    const protocol = opt(o, 'protocol', p, (v, a) => {
      if (v !== 'http/protobuf' && v !== 'http/json') throw new ConfigError(`${a}: expected "http/protobuf" or "http/json", got ${describe(v)}${v === 'grpc' ? ' (gRPC is not supported: use the collector\'s HTTP port, 4318)' : ''}`);
      return v;
    });
    const otlp = assign<OtlpConfig>(url === undefined ? {} : { url }, {
      protocol,
      intervalMs: opt(o, 'intervalMs', p, (v, a) => integer(v, a, 100, 3_600_000)),
      timeoutMs: opt(o, 'timeoutMs', p, (v, a) => integer(v, a, 100, 600_000)),
      headers: opt(o, 'headers', p, stringMap),
      metrics: opt(o, 'metrics', p, boolean),
      logs: opt(o, 'logs', p, boolean),
      resourceAttributes: opt(o, 'resourceAttributes', p, stringMap),
    });
    if (otlp.metrics === false && otlp.logs === false) throw new ConfigError(`${p}: metrics and logs are both false: remove the otlp section instead`);
    config.otlp = otlp;
  }

  if (root['alerts'] !== undefined) {
    const p = `${at}.alerts`;
    const o = object(root['alerts'], p, ['ndjson', 'webhook']);
    const alerts: AlertsConfig = {};
    const ndjson = opt(o, 'ndjson', p, string);
    if (ndjson !== undefined) alerts.ndjson = ndjson;
    if (o['webhook'] !== undefined) {
      const w = `${p}.webhook`;
      const target = (url: string, at: string, allowed: boolean): string => {
        const refused = allowed ? undefined : refusedHost(new URL(url).hostname);
        if (refused) throw new ConfigError(`${at}: ${refused}; refused as a webhook target (set allowLinkLocal: true if this is intended)`);
        return url;
      };
      if (typeof o['webhook'] === 'string') alerts.webhook = target(httpUrl(o['webhook'], w, 'https://hooks.example.com/tcpscope'), w, false);
      else {
        const wo = object(o['webhook'], w, ['url', 'headers', 'maxQueue', 'maxAttempts', 'timeoutMs', 'secret', 'allowLinkLocal']);
        if (wo['url'] === undefined) throw new ConfigError(`${w}.url: required`);
        const allowLinkLocal = opt(wo, 'allowLinkLocal', w, boolean);
        alerts.webhook = assign<WebhookConfig>({ url: target(httpUrl(wo['url'], `${w}.url`, 'https://hooks.example.com/tcpscope'), `${w}.url`, allowLinkLocal === true) }, {
          headers: opt(wo, 'headers', w, stringMap),
          maxQueue: opt(wo, 'maxQueue', w, (v, a) => integer(v, a, 1, 1_000_000)),
          maxAttempts: opt(wo, 'maxAttempts', w, (v, a) => integer(v, a, 1, 100)),
          timeoutMs: opt(wo, 'timeoutMs', w, (v, a) => integer(v, a, 100, 600_000)),
          secret: opt(wo, 'secret', w, string),
          allowLinkLocal,
        });
      }
    }
    config.alerts = alerts;
  }

  if (root['metrics'] !== undefined) {
    const p = `${at}.metrics`;
    const o = object(root['metrics'], p, ['ports', 'maxPorts', 'maxInterfaces', 'maxReasons', 'maxAlertKinds']);
    const ports = o['ports'] === undefined ? undefined : (() => {
      if (!Array.isArray(o['ports'])) throw new ConfigError(`${p}.ports: expected an array of ports, got ${describe(o['ports'])}`);
      return o['ports'].map((v, i) => integer(v, `${p}.ports[${i}]`, 1, 65535));
    })();
    config.metrics = assign<MetricsOptions>({}, {
      ports,
      maxPorts: opt(o, 'maxPorts', p, (v, a) => integer(v, a, 0, 1000)),
      maxInterfaces: opt(o, 'maxInterfaces', p, (v, a) => integer(v, a, 0, 1000)),
      maxReasons: opt(o, 'maxReasons', p, (v, a) => integer(v, a, 0, 1000)),
      maxAlertKinds: opt(o, 'maxAlertKinds', p, (v, a) => integer(v, a, 0, 1000)),
    });
  }
  return config;
}
