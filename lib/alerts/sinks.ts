// SPDX-License-Identifier: MIT
// Local alert sinks: NDJSON lines to a file or stream, the metrics counters, and a fan-out
// that feeds several sinks. None of them blocks the detector that calls send().
import fs from 'node:fs';
import { Alert, AlertSink, UndeliveredHandler, alertToJson } from './types';

export interface NdjsonSinkOptions {
  /** Host name written into each line. */
  host?: string;
  /** Bytes allowed to wait in the stream before lines are dropped (a stalled pipe or disk). Default 1 MiB. */
  maxBufferBytes?: number;
  onUndelivered?: UndeliveredHandler;
}

/**
 * Writes one JSON line per alert to `target`: a path (appended to, created if missing),
 * '-' for stdout, or any writable stream. A path is opened now, so a bad one fails here.
 */
export function ndjsonSink(target: string | NodeJS.WritableStream, options: NdjsonSinkOptions = {}): AlertSink {
  const maxBuffer = options.maxBufferBytes ?? 1 << 20;
  let stream: NodeJS.WritableStream;
  let owned = false;
  let label: string;
  if (target === '-') {
    stream = process.stdout;
    label = 'stdout';
  } else if (typeof target === 'string') {
    let fd: number;
    try {
      fd = fs.openSync(target, 'a');
    } catch (e) {
      throw new Error(`alerts ndjson: cannot open '${target}' for appending: ${(e as Error).message}`);
    }
    stream = fs.createWriteStream(target, { fd });
    owned = true;
    label = target;
  } else {
    stream = target;
    label = 'stream';
  }
  let failed: string | undefined;
  const onError = (e: Error): void => { failed = e.message; };
  stream.on('error', onError);
  let closed = false;
  const undelivered = (reason: string): void => options.onUndelivered?.('ndjson', 1, `${label}: ${reason}`);

  function pending(): number {
    return (stream as NodeJS.WritableStream & { writableLength?: number }).writableLength ?? 0;
  }

  async function flush(): Promise<void> {
    if (pending() === 0 || failed) return;
    // Writes complete in order: an empty write's callback runs once everything before it is out.
    await new Promise<void>((resolve) => {
      stream.write('', () => resolve());
    });
  }

  return {
    name: 'ndjson',
    send(alert: Alert): void {
      if (closed) return undelivered('sink closed');
      if (failed) return undelivered(`write failed earlier: ${failed}`);
      // Past the limit the reader is not keeping up: drop instead of growing memory.
      if (pending() > maxBuffer) return undelivered('output not draining');
      stream.write(`${JSON.stringify(alertToJson(alert, options.host))}\n`);
    },
    flush,
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      await flush();
      stream.removeListener('error', onError);
      if (owned) await new Promise<void>((resolve) => stream.end(() => resolve()));
    },
  };
}

/** Counts alerts in the metrics (tcpscope_alerts_total, tcpscope_alerts_active). */
export function metricsAlertSink(metrics: { observeAlert(alert: Alert): void }): AlertSink {
  return {
    name: 'metrics',
    send: (alert) => metrics.observeAlert(alert),
    flush: async () => {},
    close: async () => {},
  };
}

/** One sink that sends to all of `sinks`; a sink that throws does not stop the others. */
export function alertFanout(sinks: readonly AlertSink[], onUndelivered?: UndeliveredHandler): AlertSink {
  return {
    name: 'fanout',
    send(alert: Alert): void {
      for (const sink of sinks) {
        try {
          sink.send(alert);
        } catch (e) {
          onUndelivered?.(sink.name, 1, (e as Error).message);
        }
      }
    },
    flush: async () => { await Promise.all(sinks.map((s) => s.flush())); },
    close: async () => { await Promise.all(sinks.map((s) => s.close())); },
  };
}
