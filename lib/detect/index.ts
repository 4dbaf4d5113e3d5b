// SPDX-License-Identifier: MIT
// Detection of SYN floods, port scans, rate anomalies and sequence anomalies.
export { detect, detectDelivery, synAdmissionFor, DETECT_PACKET_FILTER } from './detect';
export type { DetectOptions, Detector, DetectStats } from './detect';
export { DetectionEngine, DETECTORS } from './engine';
export type { DetectorName, SynDeltas } from './engine';
export type { DetectAlert, AlertEmitter } from './alert';
export { DEFAULT_THRESHOLDS, resolveThresholds } from './thresholds';
export type { Thresholds, ThresholdOptions, SynFloodThresholds, PortScanThresholds, AnomalyThresholds, SequenceThresholds, AnomalyMetric } from './thresholds';
export { SlidingCounter, Hysteresis } from './window';
export { Ewma } from './ewma';
export { PortScanDetector, stealthProbeKind } from './portscan';
export type { ProbeKind } from './portscan';
export { SynFloodDetector, prefixOf } from './synflood';
export { AnomalyDetector } from './anomaly';
export { SequenceDetector, OUT_OF_WINDOW_REASONS, OLD_DATA_REASON } from './sequence';
