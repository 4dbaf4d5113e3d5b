// SPDX-License-Identifier: MIT
// TCP resets sent and received: tcp:tcp_send_reset (reason from enum sk_rst_reason, 6.10+)
// and tcp:tcp_receive_reset.
import { compileFilter, TcpFilterOptions, EventCapOptions, TcpProbe, asArray } from './tcp_common';
import { BASE_FIELDS, EV, RawTcpEvent, TcpEventBase, openTcpEvents, reasonOf, stateName } from './tcp_events';
import { lazyEvents } from './stream';

export interface ResetEvent extends TcpEventBase {
  /**
   * sent: this host sent a RST (saddr = this host); received: a RST arrived for a socket.
   * Before 6.10 tcp:tcp_send_reset fires only for resets sent for a socket (an aborted
   * connection, a segment a socket refuses): resets answering a segment that matches no
   * socket (a SYN to a closed port) are not reported as sent there; the RST the peer
   * receives still is, when the peer is local.
   */
  type: 'sent' | 'received';
  /**
   * Why the kernel sent it, named from the running kernel's BTF (enum sk_rst_reason:
   * NO_SOCKET, TCP_ABORT_ON_DATA, ...). undefined for received resets and on kernels before
   * 6.10, whose tracepoint carries no reason.
   */
  reason: string | undefined;
  reasonCode: number | undefined;
  /** State of the socket involved; NONE when the reset answered a packet without a socket. */
  state: string;
  /** The current task when the event fired (the socket's user if in process context, else
   * whatever ran; 0 in softirq on an idle CPU). */
  pid: number;
  comm: string;
}

export interface ResetsOptions extends TcpFilterOptions, EventCapOptions {
  /** Which resets: default both. */
  directions?: Array<'sent' | 'received'>;
}

/**
 * TCP resets the host sends (with the kernel's reason) and receives.
 *
 * @example
 * await using r = resets();
 * for await (const e of r) console.log(e.type, e.reason, e.daddr, e.dport);
 */
const resetReason = (r: RawTcpEvent): string | undefined => (r.kind === EV.RESET_SENT ? reasonOf(r, 'reset') : undefined);
const resetEvent = lazyEvents<RawTcpEvent, ResetEvent>('ResetEvent', {
  type: (r) => (r.kind === EV.RESET_SENT ? 'sent' : 'received'),
  ...BASE_FIELDS,
  reason: resetReason,
  reasonCode: (r) => (resetReason(r) === undefined ? undefined : r.reason),
  state: (r) => (r.state === 0 ? 'NONE' : stateName(r.state)),
  pid: (r) => r.pid,
  comm: (r) => r.comm,
});

export function resets(options: ResetsOptions = {}): TcpProbe<ResetEvent> {
  const filter = compileFilter(options, 'resets', ['maxEventsPerSec', 'directions']);
  const dirs = new Set(options.directions === undefined ? ['sent', 'received'] : asArray(options.directions, 'resets(): directions'));
  for (const d of dirs) if (d !== 'sent' && d !== 'received') throw new TypeError(`resets(): bad direction '${String(d)}': expected 'sent' or 'received'`);
  if (!dirs.size) throw new TypeError("resets(): directions must name 'sent' and/or 'received'");
  const programs = [];
  if (dirs.has('sent')) programs.push({ program: 'tev_send_reset', tracepoint: 'tcp/tcp_send_reset', provides: 'resets sent' });
  if (dirs.has('received')) programs.push({ program: 'tev_receive_reset', tracepoint: 'tcp/tcp_receive_reset', provides: 'resets received' });
  return openTcpEvents<ResetEvent>({
    probe: 'resets',
    filter,
    programs,
    toEvent: resetEvent,
  }, options);
}
