// SPDX-License-Identifier: MIT
// Prometheus exposition of the metrics model: a prom-client Registry of our own (never the
// global one, so an application embedding tcpscope keeps its registry to itself) whose
// collectors read TcpscopeMetrics snapshots at scrape time, and a small /metrics server.
import http from 'node:http';
import https from 'node:https';
import { AddressInfo } from 'node:net';
import type { Metric, Registry } from 'prom-client';
import { MetricSnapshot, TcpscopeMetrics } from './metrics';
import { requireOptional } from '../util/optional';
import { ConfigError } from './config';
import { BasicAuth, WebConfig, loadWebConfig } from './webconfig';

interface PromValue {
  value: number;
  labels: Record<string, string | number>;
  metricName?: string;
}

/**
 * One model family as a prom-client metric. prom-client's own Counter/Histogram keep their
 * own state and cannot be given precomputed buckets; a registry only needs name, help,
 * type and get(), so this adapter provides exactly those from the model's snapshot.
 */
class SnapshotCollector {
  readonly name: string;
  readonly help: string;
  readonly type: string;
  readonly aggregator = 'sum';
  constructor(private readonly metrics: TcpscopeMetrics, private readonly family: MetricSnapshot, private readonly cache: SnapshotCache) {
    this.name = family.type === 'counter' ? `${family.name}_total` : family.name;
    this.help = family.help;
    this.type = family.type;
  }

  async get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: PromValue[] }> {
    const family = this.cache.read(this.metrics).find((f) => f.name === this.family.name) ?? this.family;
    const values: PromValue[] = [];
    if (family.type === 'histogram') {
      for (const s of family.series) {
        let cumulative = 0;
        family.bounds.forEach((bound, i) => {
          cumulative += s.counts[i] ?? 0;
          values.push({ metricName: `${family.name}_bucket`, labels: { ...s.labels, le: String(bound) }, value: cumulative });
        });
        values.push({ metricName: `${family.name}_bucket`, labels: { ...s.labels, le: '+Inf' }, value: s.count });
        values.push({ metricName: `${family.name}_sum`, labels: { ...s.labels }, value: s.sum });
        values.push({ metricName: `${family.name}_count`, labels: { ...s.labels }, value: s.count });
      }
    } else {
      for (const s of family.series) values.push({ labels: { ...s.labels }, value: s.value });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}

/** One collect() per scrape, shared by every family's collector (they are read in parallel). */
class SnapshotCache {
  private families: MetricSnapshot[] | undefined;
  read(metrics: TcpscopeMetrics): MetricSnapshot[] {
    if (!this.families) {
      this.families = metrics.collect();
      // Cleared after the scrape's synchronous get() calls have all run.
      queueMicrotask(() => { this.families = undefined; });
    }
    return this.families;
  }
}

/** A prom-client Registry exposing `metrics` (read at every scrape). */
export function createPrometheusRegistry(metrics: TcpscopeMetrics): Registry {
  // An optional peer dependency, loaded on first use: `require('tcpscope')` stays light.
  const { Registry } = requireOptional<typeof import('prom-client')>('Prometheus export', 'prom-client');
  const registry = new Registry();
  const cache = new SnapshotCache();
  for (const family of metrics.collect()) {
    // The registry accepts anything with name/help/type/get(); its type names only its own classes.
    registry.registerMetric(new SnapshotCollector(metrics, family, cache) as unknown as Metric);
  }
  return registry;
}

export interface PrometheusServerOptions {
  /** TCP port; 0 picks a free one (see `port` on the result). */
  port: number;
  /**
   * Listen address. Default '127.0.0.1': nothing is exposed beyond this host unless asked
   * ('0.0.0.0' or '::' for a Prometheus on another host; the Kubernetes DaemonSet sets it).
   */
  host?: string;
  /** Path of the exposition. Default '/metrics'. */
  path?: string;
  /**
   * TLS and basic auth, as node_exporter's --web.config.file: the path of an exporter-toolkit
   * web config (YAML with `tls_server_config` and `basic_auth_users`), or its parsed form.
   */
  webConfig?: string | WebConfig;
}

export interface PrometheusServer {
  readonly registry: Registry;
  readonly port: number;
  readonly host: string;
  /** e.g. http://127.0.0.1:9464/metrics (https:// with TLS) */
  readonly url: string;
  close(): Promise<void>;
}

/** Default port: the one the OpenTelemetry Prometheus exporter uses. */
export const DEFAULT_PROMETHEUS_PORT = 9464;
export const DEFAULT_PROMETHEUS_HOST = '127.0.0.1';

/** Listen failures that mean the configuration is wrong (the address), not the moment. */
const ADDRESS_ERRORS: Readonly<Record<string, string>> = {
  EADDRNOTAVAIL: 'is not an address of this host: use 127.0.0.1, 0.0.0.0 (every address) or one of this host\'s addresses',
  ENOTFOUND: 'does not resolve: use an IP address such as 127.0.0.1 or 0.0.0.0',
  EAI_AGAIN: 'could not be resolved: use an IP address such as 127.0.0.1 or 0.0.0.0',
  EACCES: 'cannot be bound by this user (ports below 1024 need CAP_NET_BIND_SERVICE): use a port above 1023',
};

/**
 * Serves `metrics` for Prometheus at http(s)://host:port/metrics (and `/healthz`, which needs
 * no credentials so that liveness probes work). Rejects when the port cannot be bound, naming
 * the address; a ConfigError when the address or the web config is wrong.
 */
export async function startPrometheusServer(metrics: TcpscopeMetrics, options: PrometheusServerOptions): Promise<PrometheusServer> {
  const host = options.host ?? DEFAULT_PROMETHEUS_HOST;
  const path = options.path ?? '/metrics';
  const web = typeof options.webConfig === 'string' ? loadWebConfig(options.webConfig) : options.webConfig;
  const auth = new BasicAuth(web?.users ?? new Map());
  const registry = createPrometheusRegistry(metrics);
  const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const url = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (url === path) {
      auth.check(req).then((verdict) => {
        if (verdict === 'busy') {
          res.writeHead(503, { 'retry-after': '1', 'content-type': 'text/plain' }).end('Too many authentication attempts at once\n');
          return;
        }
        if (verdict === 'denied') {
          res.writeHead(401, { 'www-authenticate': 'Basic realm="tcpscope"', 'content-type': 'text/plain' }).end('Unauthorized\n');
          return;
        }
        serveMetrics(req, res);
      }, () => { res.writeHead(500).end(); });
      return;
    }
    if (url === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end(`tcpscope: metrics are at ${path}\n`);
  };
  const serveMetrics = (req: http.IncomingMessage, res: http.ServerResponse): void => {
      registry.metrics().then(
        (text) => { res.writeHead(200, { 'content-type': registry.contentType }).end(req.method === 'HEAD' ? undefined : text); },
        (e: unknown) => { res.writeHead(500, { 'content-type': 'text/plain' }).end(`collect failed: ${(e as Error).message}\n`); },
      );
  };
  const server = web?.tls ? https.createServer({ ...web.tls }, handler) : http.createServer(handler);
  // A scraper holding keep-alive connections must not keep close() waiting.
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    const onError = (e: NodeJS.ErrnoException): void => {
      const wrong = e.code !== undefined && Object.hasOwn(ADDRESS_ERRORS, e.code) ? ADDRESS_ERRORS[e.code] : undefined;
      if (wrong) reject(new ConfigError(`prometheus: cannot listen on ${host}:${options.port}: ${e.code === 'EACCES' ? `port ${options.port}` : `host '${host}'`} ${wrong}`));
      else reject(new Error(`prometheus: cannot listen on ${host}:${options.port}: ${e.code === 'EADDRINUSE' ? 'address already in use: choose another port or stop what listens there' : e.message}`));
    };
    server.once('error', onError);
    server.listen(options.port, host, () => {
      server.removeListener('error', onError);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const urlHost = host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host;
  return {
    registry,
    port,
    host,
    url: `${web?.tls ? 'https' : 'http'}://${urlHost}:${port}${path}`,
    close: async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await auth.close();
    },
  };
}
