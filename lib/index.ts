// SPDX-License-Identifier: MIT
/**
 * tcpscope: inspect incoming TCP traffic with eBPF.
 *
 * The built-in probes are exported here; the generic runtime is `tcpscope/bpf`.
 */
// Each name here is public on purpose (api/tcpscope.api.md lists them with their shapes;
// CI fails when that report is stale). Building blocks of the probes, the detectors and the
// CLI stay importable by path inside the package, not from here.
export { connections } from './probes/connections';
export type { ConnectionEvent, ConnectionEventType, ConnectionsOptions } from './probes/connections';
export { retransmits } from './probes/retransmits';
export type { RetransmitEvent, RetransmitsOptions } from './probes/retransmits';
export { rtt } from './probes/rtt';
export type { RttBucket, RttEvent, RttHistogramKey, RttHistogramRow, RttOptions, RttProbeExtra } from './probes/rtt';
export { resets } from './probes/resets';
export type { ResetEvent, ResetsOptions } from './probes/resets';
export { drops } from './probes/drops';
export type { DropEvent, DropsOptions } from './probes/drops';
export { tracepointAvailable } from './probes/tcp_common';
export type { TcpFilterOptions, TcpProbe, TcpProbeStats, Unavailable } from './probes/tcp_common';
export { packets, PacketStream, tcpOptions, formatPacket, packetToJson, MAX_CAPTURE } from './probes/packets';
export type { PacketEvent, PacketHook, PacketsOptions, PacketStreamStats, PacketView, PacketCounters, TcpOptions, TcpOptionKind } from './probes/packets';
export { flagLetters, tcpFlags, TCP_FLAGS } from './bpf/packet';
export type { TcpFlags, TcpFlagName } from './bpf/packet';
export { PacketPcapngEncoder } from './capture/pcapng';
export { synCounts, SynCounter } from './probes/syn-counts';
export type { SynCountsOptions, SynPortRow, SynSnapshot, SynSourceRow } from './probes/syn-counts';
export { formatAddress, parseCidr, cidrContains, parsePort, AF_INET, AF_INET6 } from './net/addr';
export type { Cidr } from './net/addr';
export { dropReasonName, resetReasonName, tcpStateName, kernelEnum, kernelEnumValue } from './kernel/names';
export { ProbeStream } from './probes/stream';
export type { ProbeOptions } from './probes/stream';
export { Guard, GuardSafetyError } from './guard';
export type {
  GuardAction, GuardStartOptions, DenyOptions, GuardEntry, PortProtectionOptions, PortEntry, GuardStats, ProtectedAddress,
} from './guard';
export { flows, FlowStream, MAX_CAPTURE_BYTES, classifyPayload, parseClientHello, parseHttp1Request, isHttp2Preface } from './classify';
export type { FlowsOptions, FlowEvent, ClassifyKernelStats, Classification, FlowProtocol } from './classify';
export { detect, detectDelivery, DetectionEngine, DETECTORS, DEFAULT_THRESHOLDS, resolveThresholds } from './detect';
export type {
  DetectOptions, Detector, DetectStats, DetectAlert, AlertEmitter, DetectorName, SynDeltas, ProbeKind,
  Thresholds, ThresholdOptions, SynFloodThresholds, PortScanThresholds, AnomalyThresholds, SequenceThresholds, AnomalyMetric,
} from './detect';
export {
  TcpscopeMetrics, LabelCap, flagClass, prometheusNames, FLAG_CLASSES, RTT_BUCKETS_SECONDS, DURATION_BUCKETS_SECONDS,
  createExporters, validateExportersConfig, ConfigError,
  createPrometheusRegistry, startPrometheusServer, DEFAULT_PROMETHEUS_PORT,
  startOtlpExporter, alertAttributes, otlpBaseUrl,
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
export { kernelVersion, kernelAtLeast } from './util/kernel-version';
