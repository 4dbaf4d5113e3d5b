// SPDX-License-Identifier: MIT
// Webhook alert sink: POSTs each alert as JSON, in order, one request at a time, retrying
// with exponential backoff. send() only queues: a slow or dead receiver never stalls the
// detectors. The queue is bounded; when it is full the oldest alert is dropped and counted.
// Redirects are never followed (a 3xx is a failed delivery), so an alert goes only where it
// was configured to; link-local and cloud metadata targets are refused unless allowed; with
// a secret, each body is signed (HMAC-SHA256) as GitHub and Stripe sign their webhooks.
import crypto from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { Alert, AlertSink, UndeliveredHandler, alertToJson } from './types';
import { guardedLookup, refusedHost } from './target';

/** The header carrying the signature: `sha256=` and the hex HMAC-SHA256 of the raw body. */
export const WEBHOOK_SIGNATURE_HEADER = 'x-tcpscope-signature-256';

export interface WebhookSinkOptions {
  url: string;
  /** Extra request headers (e.g. Authorization). */
  headers?: Record<string, string>;
  /**
   * Signs each body: header X-Tcpscope-Signature-256 is `sha256=` + hex HMAC-SHA256(secret,
   * body). The receiver recomputes it over the raw bytes and compares in constant time.
   */
  secret?: string;
  /** Allow link-local targets (169.254/16, fe80::/10) and cloud metadata services. Default false. */
  allowLinkLocal?: boolean;
  /** Alerts waiting beyond the one in flight. Default 1000. */
  maxQueue?: number;
  /** Attempts per alert, the first included. Default 5. */
  maxAttempts?: number;
  /** First retry delay; doubles each retry (with jitter). Default 500 ms. */
  initialBackoffMs?: number;
  /** Longest retry delay, also the cap on a Retry-After. Default 30 s. */
  maxBackoffMs?: number;
  /** Per-request timeout. Default 5 s. */
  timeoutMs?: number;
  /** How long close() waits for the queue to drain. Default 5 s. */
  closeTimeoutMs?: number;
  host?: string;
  onUndelivered?: UndeliveredHandler;
}

export interface WebhookSink extends AlertSink {
  /** Alerts waiting (not counting the one in flight). */
  readonly queued: number;
  /** Alerts delivered (2xx). */
  readonly delivered: number;
  /** Alerts given up on. */
  readonly dropped: number;
}

/** Statuses worth retrying; other 4xx mean the receiver rejects this alert for good. */
function retryable(status: number): boolean {
  return status >= 500 || status === 408 || status === 429;
}

export function webhookSink(options: WebhookSinkOptions): WebhookSink {
  let url: URL;
  try {
    url = new URL(options.url);
  } catch {
    throw new TypeError(`alerts webhook: bad URL '${options.url}'`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError(`alerts webhook: URL must be http(s), got '${options.url}'`);
  const refused = options.allowLinkLocal ? undefined : refusedHost(url.hostname);
  if (refused) throw new TypeError(`alerts webhook: ${refused}; refused as a target (set allowLinkLocal: true if this is intended)`);
  if (options.secret !== undefined && (typeof options.secret !== 'string' || options.secret.length === 0)) throw new TypeError('alerts webhook: secret must be a non-empty string');
  const maxQueue = options.maxQueue ?? 1000;
  const maxAttempts = options.maxAttempts ?? 5;
  const initialBackoff = options.initialBackoffMs ?? 500;
  const maxBackoff = options.maxBackoffMs ?? 30_000;
  const timeoutMs = options.timeoutMs ?? 5000;
  const closeTimeout = options.closeTimeoutMs ?? 5000;
  const headers: Record<string, string> = { 'content-type': 'application/json', 'user-agent': 'tcpscope', ...options.headers };
  const transport = url.protocol === 'https:' ? https : http;
  // One connection, kept alive between alerts (deliveries are sequential).
  const agent = new transport.Agent({ keepAlive: true, maxSockets: 1 });
  const lookup = options.allowLinkLocal ? undefined : guardedLookup('alerts webhook');

  const queue: Alert[] = [];
  let running: Promise<void> | undefined;
  let closed = false;
  let delivered = 0;
  let dropped = 0;
  /** Aborts the request in flight and the backoff wait when close() gives up. */
  const stop = new AbortController();
  const idle: Array<() => void> = [];

  function giveUp(count: number, reason: string): void {
    dropped += count;
    options.onUndelivered?.('webhook', count, reason);
  }

  function sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      if (stop.signal.aborted) return resolve();
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        stop.signal.removeEventListener('abort', done);
        resolve();
      }
      stop.signal.addEventListener('abort', done);
    });
  }

  /** One POST; resolves with the status and headers (the response body is discarded). */
  function post(body: Buffer, signal: AbortSignal): Promise<{ status: number; headers: http.IncomingHttpHeaders }> {
    const requestHeaders: Record<string, string | number> = { ...headers, 'content-length': body.length };
    if (options.secret !== undefined) requestHeaders[WEBHOOK_SIGNATURE_HEADER] = `sha256=${crypto.createHmac('sha256', options.secret).update(body).digest('hex')}`;
    return new Promise((resolve, reject) => {
      const req = transport.request(url, { method: 'POST', headers: requestHeaders, agent, signal, ...(lookup ? { lookup } : {}) }, (res) => {
        // Drained so the connection can be reused.
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  /** Delivers one alert, or gives up on it after its attempts. */
  async function deliver(alert: Alert): Promise<void> {
    const body = Buffer.from(JSON.stringify(alertToJson(alert, options.host)));
    let lastError = '';
    for (let attempt = 1; attempt <= maxAttempts && !stop.signal.aborted; attempt++) {
      let retryAfterMs: number | undefined;
      try {
        const res = await post(body, AbortSignal.any([stop.signal, AbortSignal.timeout(timeoutMs)]));
        if (res.status >= 200 && res.status < 300) {
          delivered++;
          return;
        }
        if (res.status >= 300 && res.status < 400) {
          const location = res.headers.location;
          lastError = `HTTP ${res.status} redirect${location ? ` to ${location}` : ''} not followed: configure the final URL`;
          break;
        }
        lastError = `HTTP ${res.status}`;
        if (!retryable(res.status)) break;
        // Retry-After in seconds (the HTTP-date form is rare for webhooks and ignored).
        const header = res.headers['retry-after'] ?? null;
        const after = header === null || header.trim() === '' ? Number.NaN : Number(header);
        if (Number.isFinite(after) && after >= 0) retryAfterMs = after * 1000;
      } catch (e) {
        lastError = (e as Error).message;
        if ((e as NodeJS.ErrnoException).code === 'EREFUSEDTARGET') break;
      }
      if (attempt < maxAttempts) {
        // Full jitter around the exponential step, so many agents do not retry in lockstep.
        const step = Math.min(maxBackoff, initialBackoff * 2 ** (attempt - 1));
        await sleep(Math.min(maxBackoff, retryAfterMs ?? step / 2 + Math.random() * step / 2));
      }
    }
    giveUp(1, `${url.origin}: ${stop.signal.aborted ? 'closed before delivery' : lastError}`);
  }

  async function run(): Promise<void> {
    while (queue.length && !stop.signal.aborted) await deliver(queue.shift()!);
    running = undefined;
    for (const resolve of idle.splice(0)) resolve();
  }

  function flush(): Promise<void> {
    if (!running) return Promise.resolve();
    return new Promise((resolve) => idle.push(resolve));
  }

  return {
    name: 'webhook',
    get queued() { return queue.length; },
    get delivered() { return delivered; },
    get dropped() { return dropped; },
    send(alert: Alert): void {
      if (closed) return giveUp(1, 'sink closed');
      if (queue.length >= maxQueue) {
        queue.shift();
        giveUp(1, `queue full (${maxQueue}): oldest alert dropped`);
      }
      queue.push(alert);
      // Started on the next turn so that send() itself only ever queues.
      running ??= new Promise<void>((resolve) => setImmediate(resolve)).then(run);
    },
    flush,
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([flush(), new Promise<void>((resolve) => { timer = setTimeout(resolve, closeTimeout); })]);
      clearTimeout(timer);
      if (running) {
        const left = queue.length;
        queue.length = 0;
        if (left) giveUp(left, 'closed before delivery');
        stop.abort();
        await flush();
      }
      agent.destroy();
    },
  };
}
