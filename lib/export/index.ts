// SPDX-License-Identifier: MIT
// Exporters assembled from a configuration: the metrics model, the Prometheus endpoint,
// the OTLP push, and the alert sinks, behind one object the agent feeds and closes.
import os from 'node:os';
import { TcpscopeMetrics } from './metrics';
import { PrometheusServer, startPrometheusServer } from './prometheus';
import { OtlpExporter, startOtlpExporter } from './otlp';
import { ConfigError, ExportersConfig, validateExportersConfig } from './config';
import type { Alert, AlertSink } from '../alerts/types';
import { alertFanout, metricsAlertSink, ndjsonSink } from '../alerts/sinks';
import { webhookSink } from '../alerts/webhook';

export * from './metrics';
export * from './prometheus';
export * from './otlp';
export * from './config';
export { loadWebConfig, validateWebConfig } from './webconfig';
export type { WebConfig, WebTlsConfig } from './webconfig';

export interface Exporters {
  /** Feed probe events and attach probes here. */
  readonly metrics: TcpscopeMetrics;
  /** Every configured alert sink (metrics counters included) as one. */
  readonly alerts: AlertSink;
  readonly prometheus: PrometheusServer | undefined;
  readonly otlp: OtlpExporter | undefined;
  /** Sends an alert to every sink; never blocks or throws. */
  alert(alert: Alert): void;
  /** Delivers what is pending (alerts, OTLP metrics and logs). */
  flush(): Promise<void>;
  /** Flushes, stops the servers and pushes, closes the sinks. Idempotent. */
  close(): Promise<void>;
}

export interface CreateExportersOptions {
  /** Use this model instead of a new one (e.g. one already fed). */
  metrics?: TcpscopeMetrics;
  /** Where failures to deliver alerts are reported in words. Default: stderr. */
  log?: (message: string) => void;
}

/**
 * Validates `config` (see validateExportersConfig; a ConfigError names the bad key) and
 * starts what it asks for. On any failure, what was already started is stopped.
 *
 * @example
 * const exporters = await createExporters({ prometheus: { port: 9464 }, alerts: { ndjson: '-' } });
 * exporters.metrics.attachProbe('connections', probe);
 * for await (const ev of probe) exporters.metrics.observeConnection(ev);
 */
export async function createExporters(config: ExportersConfig | unknown, options: CreateExportersOptions = {}): Promise<Exporters> {
  const cfg = validateExportersConfig(config);
  const metrics = options.metrics ?? new TcpscopeMetrics(cfg.metrics);
  const log = options.log ?? ((m: string) => process.stderr.write(`tcpscope: ${m}\n`));
  const host = process.env['NODE_NAME'] || os.hostname();
  // Undelivered alerts are counted, and reported in words at most once a minute per sink.
  const lastLogged = new Map<string, number>();
  const onUndelivered = (sink: string, count: number, reason: string): void => {
    metrics.observeUndelivered(sink, count);
    const now = Date.now();
    if ((lastLogged.get(sink) ?? 0) + 60_000 <= now) {
      lastLogged.set(sink, now);
      log(`alerts ${sink}: ${count} undelivered: ${reason}`);
    }
  };

  let prometheus: PrometheusServer | undefined;
  let otlp: OtlpExporter | undefined;
  const sinks: AlertSink[] = [metricsAlertSink(metrics)];
  try {
    if (cfg.alerts?.ndjson !== undefined) sinks.push(ndjsonSink(cfg.alerts.ndjson, { host, onUndelivered }));
    const webhook = cfg.alerts?.webhook;
    if (webhook !== undefined) sinks.push(webhookSink({ ...(typeof webhook === 'string' ? { url: webhook } : webhook), host, onUndelivered }));
    if (cfg.prometheus) {
      const { webConfigFile, ...listen } = cfg.prometheus;
      try {
        prometheus = await startPrometheusServer(metrics, webConfigFile === undefined ? listen : { ...listen, webConfig: webConfigFile });
      } catch (e) {
        throw e instanceof ConfigError ? new ConfigError(`exporters.${e.message}`) : e;
      }
    }
    if (cfg.otlp) {
      otlp = startOtlpExporter(metrics, cfg.otlp);
      if (cfg.otlp.logs !== false) sinks.push(otlp.alertSink);
    }
  } catch (e) {
    await Promise.allSettled([...sinks.map((s) => s.close()), prometheus?.close(), otlp?.shutdown()]);
    throw e;
  }

  const alerts = alertFanout(sinks, onUndelivered);
  let closing: Promise<void> | undefined;
  return {
    metrics,
    alerts,
    prometheus,
    otlp,
    alert: (alert) => alerts.send(alert),
    async flush(): Promise<void> {
      await Promise.all([alerts.flush(), otlp?.forceFlush()]);
    },
    close(): Promise<void> {
      closing ??= (async () => {
        await alerts.close();
        await Promise.allSettled([prometheus?.close(), otlp?.shutdown()]);
      })();
      return closing;
    },
  };
}
