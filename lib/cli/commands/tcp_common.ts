// SPDX-License-Identifier: MIT
// What the conns, retrans, rtt, resets and drops commands share: filter options, the
// event loop with -c/--duration/Ctrl-C, and the summary.
import type { TcpFilterOptions, TcpProbe } from '../../probes/tcp_common';
import { CommandContext, DEPRECATED_D, DeprecatedAlias, OptionSpec, STREAM_OPTIONS, UsageError, counter, printSummary, writeEvent } from '../command';
import { formatEndpoint } from '../../net/addr';

export const FILTER_OPTIONS: OptionSpec = {
  ...STREAM_OPTIONS,
  port: { type: 'string', short: 'P', multiple: true, arg: 'PORT', help: 'only connections with this local or remote port (comma-separated list allowed), filtered in the kernel' },
  cidr: { type: 'string', multiple: true, arg: 'CIDR', help: 'only connections with an address in this range, e.g. 10.0.0.0/8 or fd00::/64' },
  ipv4: { type: 'boolean', short: '4', default: false, help: 'IPv4 only' },
  ipv6: { type: 'boolean', short: '6', default: false, help: 'IPv6 only' },
};

export const FILTER_USAGE = '[-P PORT]... [--cidr CIDR]... [-4|-6] [--json] [-c N] [--duration DURATION]';

/** Old spellings of the TCP event commands: -p PORT (bcc's -p is a PID) and -d DURATION. */
export const FILTER_DEPRECATED: readonly DeprecatedAlias[] = [
  { spelling: '-p', option: 'port', warning: "-p PORT is deprecated: use -P/--port (-p will mean a PID, as in bcc's tools)" },
  DEPRECATED_D,
];

/** Probe options from --port/--cidr/-4/-6; bad values are usage errors. */
export function filterOptions(ctx: CommandContext): TcpFilterOptions {
  const out: TcpFilterOptions = { signal: ctx.signal };
  const ports = ctx.values['port'] as string[] | undefined;
  if (ports?.length) out.ports = ports.flatMap((p) => p.split(',')).filter(Boolean);
  const cidrs = ctx.values['cidr'] as string[] | undefined;
  if (cidrs?.length) out.cidrs = cidrs.flatMap((c) => c.split(',')).filter(Boolean);
  if (ctx.values['ipv4'] && ctx.values['ipv6']) throw new UsageError('-4 and -6 exclude each other');
  if (ctx.values['ipv4']) out.family = 'ipv4';
  if (ctx.values['ipv6']) out.family = 'ipv6';
  return out;
}

/** Opens a probe, turning option TypeErrors into usage errors. */
export function openOrUsage<P>(open: () => P): P {
  try {
    return open();
  } catch (e) {
    if (e instanceof TypeError && /\(\): /.test(e.message)) throw new UsageError(e.message.replace(/^\w+\(\): /, ''));
    throw e;
  }
}

export function warnUnavailable(ctx: CommandContext, probe: TcpProbe<unknown>): void {
  for (const u of probe.unavailable) ctx.err.write(`tcpscope: ${u.reason}\n`);
}

/**
 * Prints events until -c N, --duration or Ctrl-C, then the summary; the probe is closed
 * (everything detached) on every path.
 */
export async function streamEvents<E extends object>(
  ctx: CommandContext,
  probe: TcpProbe<E>,
  options: { tracing: string; header?: string; text(e: E): string; json?(e: E): object; filter?(e: E): boolean },
): Promise<number> {
  const more = counter(ctx);
  const onAbort = (): void => probe.close();
  ctx.signal.addEventListener('abort', onAbort, { once: true });
  try {
    warnUnavailable(ctx, probe as TcpProbe<unknown>);
    if (options.header && !ctx.values['json']) ctx.out.write(`${options.header}\n`);
    ctx.ready(readyLine(options.tracing));
    for await (const event of probe) {
      if (options.filter && !options.filter(event)) continue;
      writeEvent(ctx, options.json ? options.json(event) : event, () => options.text(event));
      if (!more()) break;
    }
  } finally {
    ctx.signal.removeEventListener('abort', onAbort);
    const stats = probe.stats();
    probe.close();
    printSummary(ctx, stats);
  }
  return 0;
}

/** The readiness line of a tracepoint-based command. */
export function readyLine(what: string): string {
  return `tracing ${what}, Ctrl-C to end`;
}

export function pad(text: string | number, width: number, right = false): string {
  const s = String(text);
  return right ? s.padStart(width) : s.padEnd(width);
}

export const endpoint = formatEndpoint;

export function clock(d: Date): string {
  return d.toISOString().slice(11, 23);
}
