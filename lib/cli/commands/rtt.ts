// SPDX-License-Identifier: MIT
// tcpscope rtt: smoothed RTT histograms (like bcc tcprtt), refreshed every -i seconds or
// printed at exit; --samples prints each sample instead.
import { rtt, RttEvent, RttHistogramKey, RttHistogramRow } from '../../probes/rtt';
import type { Command, CommandContext } from '../command';
import { UsageError, parseDuration, printSummary, toJson } from '../command';
import { FILTER_DEPRECATED, FILTER_OPTIONS, FILTER_USAGE, clock, endpoint, filterOptions, openOrUsage, pad, readyLine, streamEvents, warnUnavailable } from './tcp_common';

const BY: Record<string, RttHistogramKey> = { all: 'all', 'local-port': 'local-port', lport: 'local-port', 'remote-addr': 'remote-addr', raddr: 'remote-addr' };

/** One histogram in bcc's print_log2_hist layout. */
export function formatHistogram(row: RttHistogramRow, unit = 'usecs'): string {
  const lines = [`${row.label}: ${row.count} samples, avg ${row.avgUs.toFixed(0)} us`, `${pad(unit, 20, true)}    : count     distribution`];
  const max = Math.max(1, ...row.buckets.map((b) => b.count));
  for (const b of row.buckets) {
    const stars = Math.round((b.count / max) * 40);
    lines.push(`${pad(b.lowUs, 10, true)} -> ${pad(b.highUs, 10)}: ${pad(b.count, 8, true)} |${'*'.repeat(stars).padEnd(40)}|`);
  }
  return lines.join('\n');
}

function printHistograms(ctx: CommandContext, rows: RttHistogramRow[]): void {
  if (ctx.values['json']) {
    for (const row of rows) ctx.out.write(`${toJson({ type: 'histogram', time: new Date(), ...row })}\n`);
    return;
  }
  ctx.out.write(`\n${new Date().toISOString().slice(11, 19)}\n`);
  if (!rows.length) ctx.out.write('(no samples)\n');
  for (const row of rows) ctx.out.write(`${formatHistogram(row)}\n\n`);
}

export const rttCommand: Command = {
  name: 'rtt',
  summary: 'TCP round-trip times: log2 histograms per local port / remote address, or each sample',
  usage: `[-b all|local-port|remote-addr] [--interval INTERVAL] [--samples] ${FILTER_USAGE}`,
  description: 'Samples come from tcp:tcp_probe, which fires while a connection is ESTABLISHED: a half-closed connection (FIN sent or received) gets no more samples.',
  options: {
    ...FILTER_OPTIONS,
    by: { type: 'string', short: 'b', default: 'all', arg: 'KEY', choices: ['all', 'local-port', 'remote-addr'], help: 'one histogram per this key' },
    interval: { type: 'string', arg: 'INTERVAL', help: 'print (and empty) the histograms every INTERVAL, e.g. 5s; default: once at the end' },
    samples: { type: 'boolean', default: false, help: 'print each sample (smoothed RTT, cwnd) instead of histograms' },
  },
  deprecated: [
    ...FILTER_DEPRECATED,
    { spelling: '-i', option: 'interval', warning: '-i INTERVAL is deprecated: use --interval (-i will name an interface, as everywhere else)' },
  ],
  examples: [
    ['tcpscope rtt', 'one RTT histogram for every connection, printed at Ctrl-C'],
    ['tcpscope rtt -b local-port --interval 5s', 'a histogram per local port every 5 seconds'],
    ['tcpscope rtt --samples -P 443 --json', 'each RTT sample on port 443, as NDJSON'],
  ],
  async run(ctx) {
    const by = BY[String(ctx.values['by'])];
    if (!by) throw new UsageError(`bad --by '${String(ctx.values['by'])}': use all, local-port or remote-addr`);
    if (ctx.values['samples']) {
      const probe = openOrUsage(() => rtt({ ...filterOptions(ctx), events: true }));
      const header = `${pad('TIME', 12)} ${pad('LOCAL', 28)} ${pad('REMOTE', 28)} ${pad('SRTT_US', 10, true)} ${pad('CWND', 5, true)}`;
      const text = (e: RttEvent): string => `${clock(e.time)} ${pad(endpoint(e.saddr, e.sport), 28)} ${pad(endpoint(e.daddr, e.dport), 28)} ${pad(e.srttUs, 10, true)} ${pad(e.sndCwnd, 5, true)}`;
      return streamEvents(ctx, probe, { tracing: 'TCP RTT samples (tcp:tcp_probe)', header, text });
    }
    const intervalMs = typeof ctx.values['interval'] === 'string' ? parseDuration(ctx.values['interval']) : undefined;
    if (intervalMs !== undefined && intervalMs < 100) throw new UsageError('--interval must be at least 100ms');
    const probe = openOrUsage(() => rtt({ ...filterOptions(ctx), events: false, histogram: by }));
    warnUnavailable(ctx, probe);
    // Samples counted in histograms already printed and emptied, for the closing summary.
    let printed = 0;
    const flush = (): void => {
      const rows = probe.histogram();
      printHistograms(ctx, rows);
      printed += rows.reduce((n, r) => n + r.count, 0);
      probe.resetHistogram();
    };
    // Nothing else keeps Node's event loop alive while the kernel fills the histograms.
    const keepAlive = setInterval(() => undefined, 1 << 30);
    const timer = intervalMs ? setInterval(flush, intervalMs) : undefined;
    ctx.ready(readyLine(`TCP RTT (tcp:tcp_probe) by ${by}${intervalMs ? `, every ${intervalMs / 1000}s` : ''}`));
    try {
      if (!ctx.signal.aborted) await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve(), { once: true }));
      flush();
    } finally {
      clearInterval(keepAlive);
      if (timer) clearInterval(timer);
      const stats = probe.stats();
      probe.close();
      printSummary(ctx, { received: stats.received + printed, lost: stats.lost }, 'samples');
    }
    return 0;
  },
};
