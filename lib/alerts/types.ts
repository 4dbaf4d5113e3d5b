// SPDX-License-Identifier: MIT
// The alert every detector emits and every sink delivers. One shape for all detectors, so
// sinks, metrics and dashboards never need to know which detector spoke.

/** Kinds the built-in detectors (lib/detect) emit. */
export type KnownAlertKind = 'syn_flood' | 'port_scan' | 'rate_anomaly' | 'sequence_anomaly';

export const KNOWN_ALERT_KINDS: readonly KnownAlertKind[] = ['syn_flood', 'port_scan', 'rate_anomaly', 'sequence_anomaly'];

/**
 * An alert kind: a built-in one, or a custom detector's own (snake_case). Open-ended so new
 * detectors need no change here; metrics cap the number of distinct kinds.
 */
// `string & {}` keeps editor completion of the known kinds while accepting any string.
export type AlertKind = KnownAlertKind | (string & {});

export type AlertState = 'raised' | 'cleared';

export type AlertSeverity = 'info' | 'warning' | 'critical';

/**
 * What the detector saw: enough for a human to act on without rerunning anything. The named
 * fields are the common vocabulary; detectors add their own keys (numbers, strings, dates,
 * arrays, small objects), which sinks serialize as they are.
 */
export interface AlertEvidence {
  /** Source addresses or CIDRs involved (detectors cap the list, e.g. top 10 by rate). */
  sources?: string[];
  /** Local/destination ports involved. */
  ports?: number[];
  /** Observed rates, per second, by name (e.g. { syn: 12000, synack_ratio: 0.02 }). */
  rates?: Record<string, number>;
  /** The thresholds that were crossed, same names as `rates`. */
  thresholds?: Record<string, number>;
  /** Event counts over the window, by name. */
  counts?: Record<string, number>;
  /** Length of the observation window, in ms. */
  windowMs?: number;
  [key: string]: unknown;
}

export interface Alert {
  kind: AlertKind;
  /** raised when the condition starts; cleared (same kind and key) when it ends. */
  state: AlertState;
  /** When the detector decided. */
  at: Date;
  /** One line for a human: "SYN flood on :443 from 3 sources (12000/s > 1000/s)". */
  summary: string;
  /**
   * What makes this alert distinct among those of its kind (e.g. the target port or the
   * source prefix), so a cleared alert can be matched to its raise. Default: the kind.
   */
  key?: string;
  severity?: AlertSeverity;
  evidence: AlertEvidence;
}

/** The JSON form of an alert (what NDJSON lines and webhooks carry). */
export interface AlertJson {
  kind: string;
  state: AlertState;
  /** ISO 8601 */
  at: string;
  summary: string;
  key: string;
  severity: AlertSeverity;
  evidence: AlertEvidence;
  /** The host that saw it (os.hostname(), or NODE_NAME in Kubernetes). */
  host?: string;
}

/** The default severity: raised alerts warn, cleared ones inform. */
export function alertSeverity(alert: Alert): AlertSeverity {
  return alert.severity ?? (alert.state === 'raised' ? 'warning' : 'info');
}

export function alertToJson(alert: Alert, host?: string): AlertJson {
  const json: AlertJson = {
    kind: alert.kind,
    state: alert.state,
    at: alert.at.toISOString(),
    summary: alert.summary,
    key: alert.key ?? alert.kind,
    severity: alertSeverity(alert),
    evidence: jsonSafe(alert.evidence, 0, new Set()) as AlertEvidence,
  };
  if (host !== undefined) json.host = host;
  return json;
}

/**
 * A JSON-ready copy of evidence: dates as ISO strings, bigints as numbers (strings when too
 * large), byte arrays as hex, Maps and Sets as objects and arrays, cycles and depth cut off,
 * so one odd value in a detector's evidence never makes a sink throw.
 */
export function jsonSafe(value: unknown, depth: number, seen: Set<object>): unknown {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number') return Number.isFinite(value) ? value : String(value);
  if (typeof value === 'bigint') return value <= BigInt(Number.MAX_SAFE_INTEGER) && value >= -BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value.toString();
  if (typeof value !== 'object') return undefined; // functions, symbols, undefined
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.toISOString();
  if (value instanceof Uint8Array) return Buffer.from(value).toString('hex');
  if (depth >= 8 || seen.has(value)) return '[…]';
  seen.add(value);
  try {
    if (Array.isArray(value) || value instanceof Set) return [...value].map((v) => jsonSafe(v, depth + 1, seen) ?? null);
    const entries = value instanceof Map ? [...value.entries()].map(([k, v]) => [String(k), v] as const) : Object.entries(value);
    const out: Record<string, unknown> = {};
    for (const [k, v] of entries) {
      const safe = jsonSafe(v, depth + 1, seen);
      if (safe !== undefined) out[k] = safe;
    }
    return out;
  } finally {
    seen.delete(value);
  }
}

/** Where alerts go. send() never blocks or throws: sinks queue, retry and count failures. */
export interface AlertSink {
  readonly name: string;
  send(alert: Alert): void;
  /** Resolves when everything queued so far was delivered or given up on. */
  flush(): Promise<void>;
  /** Flushes (within the sink's own time limit) and releases the sink. */
  close(): Promise<void>;
}

/** Called when a sink gives up on alerts (the metrics count them). */
export type UndeliveredHandler = (sink: string, count: number, reason: string) => void;
