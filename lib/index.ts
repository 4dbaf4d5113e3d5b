// SPDX-License-Identifier: MIT
/**
 * tcpscope: inspect incoming TCP traffic with eBPF.
 *
 * The built-in probes are exported here; the generic runtime is `tcpscope/bpf`.
 */
export * from './probes';
export { formatAddress, parseCidr, cidrContains, parsePort, AF_INET, AF_INET6 } from './net/addr';
export type { Cidr } from './net/addr';
export { dropReasonName, resetReasonName, tcpStateName, kernelEnum, kernelEnumValue } from './kernel/names';
export { ProbeStream } from './probes/stream';
export type { ProbeOptions } from './probes/stream';
export * from './guard';
export * from './classify';
export * from './detect';
export {
  TcpscopeMetrics, LabelCap, flagClass, prometheusNames, FLAG_CLASSES, RTT_BUCKETS_SECONDS, DURATION_BUCKETS_SECONDS,
  createExporters, validateExportersConfig, ConfigError,
  createPrometheusRegistry, startPrometheusServer, DEFAULT_PROMETHEUS_PORT,
  startOtlpExporter, toMetricData, alertAttributes, otlpBaseUrl,
} from './export';
export { loadWebConfig } from './export';
export type { WebConfig, WebTlsConfig } from './export';
export type {
  Exporters, CreateExportersOptions, ExportersConfig, PrometheusConfig, OtlpConfig, AlertsConfig, WebhookConfig,
  MetricsOptions, MetricInputs, MetricSnapshot, MetricType, LabelSet, ScalarSeries, HistogramSeries, FlagClass,
  PacketInput, SynInput, SynCountsInput, SynCountsSource, ConnectionInput, RetransmitInput, ResetInput, DropInput, RttInput,
  AlertInput, ProbeStatsSource, PrometheusServer, PrometheusServerOptions, OtlpExporter, OtlpOptions,
} from './export';
export { alertToJson, alertSeverity, KNOWN_ALERT_KINDS, ndjsonSink, metricsAlertSink, alertFanout, webhookSink } from './alerts';
export type {
  Alert, AlertKind, KnownAlertKind, AlertState, AlertSeverity, AlertEvidence, AlertJson, AlertSink, UndeliveredHandler,
  NdjsonSinkOptions, WebhookSinkOptions, WebhookSink,
} from './alerts';
export { kernelVersion, kernelAtLeast } from './kernel/version';
