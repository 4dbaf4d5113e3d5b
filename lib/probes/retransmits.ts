// SPDX-License-Identifier: MIT
// TCP retransmissions per connection: tcp:tcp_retransmit_skb and tcp:tcp_retransmit_synack.
import { compileFilter, TcpFilterOptions, EventCapOptions, TcpProbe } from './tcp_common';
import { BASE_FIELDS, EV, RawTcpEvent, TcpEventBase, openTcpEvents, stateName } from './tcp_events';
import { lazyEvents } from './stream';

export interface RetransmitEvent extends TcpEventBase {
  /** retransmit: a data/FIN/SYN segment of a socket; synack: a SYN-ACK of a pending connection. */
  type: 'retransmit' | 'synack';
  /** Socket state (NEW_SYN_RECV for SYN-ACKs). */
  state: string;
  /** Sequence number of the retransmitted segment (the ISN for SYN-ACKs). */
  seq: number;
  /**
   * TCP segments this retransmission carried (tcp_skb_pcount: a GSO skb carries several;
   * 1 for SYN-ACKs). Summed, they equal the kernel's TcpRetransSegs and each connection's
   * tcp_info.total_retrans; count events and you under-count. 0 for an attempt the kernel
   * abandoned before sending (err EBUSY, EAGAIN, ENOMEM, EHOSTUNREACH on 6.13+, which
   * reports those too): the kernel does not count it either.
   */
  segs: number;
  /** Congestion window after the loss was detected (segments; 0 for SYN-ACKs). */
  sndCwnd: number;
  /** Result of the retransmission (kernel 6.13+; 0 before). */
  err: number;
}

/**
 * Errors with which __tcp_retransmit_skb gives up before counting anything (skb still in a
 * host queue, socket memory, trimming/fragmenting failed, no route). Errors of the transmit
 * itself come after the counters were raised.
 */
const ABANDONED = new Set([11 /* EAGAIN */, 12 /* ENOMEM */, 16 /* EBUSY */, 113 /* EHOSTUNREACH */]);

export interface RetransmitsOptions extends TcpFilterOptions, EventCapOptions {
  /** Also report SYN-ACK retransmissions. Default true. */
  synack?: boolean;
}

/**
 * Retransmitted TCP segments, with the connection's addresses, state and sequence number.
 *
 * @example
 * await using r = retransmits({ ports: [443] });
 * for await (const e of r) console.log(e.daddr, e.dport, e.seq, e.state);
 */
const retransmitEvent = lazyEvents<RawTcpEvent, RetransmitEvent>('RetransmitEvent', {
  type: (r) => (r.kind === EV.RETRANSMIT_SYNACK ? 'synack' : 'retransmit'),
  ...BASE_FIELDS,
  state: (r) => stateName(r.state),
  seq: (r) => r.seq,
  segs: (r) => (ABANDONED.has(-(r.err | 0)) ? 0 : r.segs),
  sndCwnd: (r) => r.snd_cwnd,
  err: (r) => r.err,
});

export function retransmits(options: RetransmitsOptions = {}): TcpProbe<RetransmitEvent> {
  const filter = compileFilter(options, 'retransmits', ['maxEventsPerSec', 'synack']);
  if (options.synack !== undefined && typeof options.synack !== 'boolean') throw new TypeError('retransmits(): synack must be a boolean');
  const programs = [{ program: 'tev_retransmit', tracepoint: 'tcp/tcp_retransmit_skb', provides: 'segment retransmissions' }];
  if (options.synack ?? true) programs.push({ program: 'tev_retransmit_synack', tracepoint: 'tcp/tcp_retransmit_synack', provides: 'SYN-ACK retransmissions' });
  return openTcpEvents<RetransmitEvent>({
    probe: 'retransmits',
    filter,
    programs,
    toEvent: retransmitEvent,
  }, options);
}
