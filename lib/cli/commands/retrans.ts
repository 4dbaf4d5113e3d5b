// SPDX-License-Identifier: MIT
// tcpscope retrans: TCP retransmissions (like tcpretrans).
import { retransmits, RetransmitEvent } from '../../probes/retransmits';
import type { Command } from '../command';
import { FILTER_DEPRECATED, FILTER_OPTIONS, FILTER_USAGE, clock, endpoint, filterOptions, openOrUsage, pad, streamEvents } from './tcp_common';

export const retransCommand: Command = {
  name: 'retrans',
  summary: 'TCP retransmissions with connection, state and sequence number',
  usage: `[--no-synack] ${FILTER_USAGE}`,
  options: { ...FILTER_OPTIONS, 'no-synack': { type: 'boolean', default: false, help: 'leave out SYN-ACK retransmissions' } },
  deprecated: FILTER_DEPRECATED,
  description: 'Each event is one retransmission of one skb; SEGS is how many TCP segments it carried (a GSO skb carries several), so the SEGS total equals the kernel\'s TcpRetransSegs.',
  examples: [
    ['tcpscope retrans', 'every retransmission with connection, state, sequence number'],
    ['tcpscope retrans -P 443 --no-synack --duration 1m', 'data retransmissions on port 443 for a minute'],
  ],
  async run(ctx) {
    const probe = openOrUsage(() => retransmits({ ...filterOptions(ctx), synack: !ctx.values['no-synack'] }));
    const header = `${pad('TIME', 12)} ${pad('TYPE', 10)} ${pad('LOCAL', 28)} ${pad('REMOTE', 28)} ${pad('STATE', 12)} ${pad('SEQ', 10, true)} ${pad('SEGS', 4, true)} ${pad('CWND', 5, true)}`;
    const text = (e: RetransmitEvent): string =>
      `${clock(e.time)} ${pad(e.type, 10)} ${pad(endpoint(e.saddr, e.sport), 28)} ${pad(endpoint(e.daddr, e.dport), 28)} ${pad(e.state, 12)} ${pad(e.seq, 10, true)} ${pad(e.segs, 4, true)} ${pad(e.sndCwnd, 5, true)}`;
    return streamEvents(ctx, probe, { tracing: 'TCP retransmits (tcp:tcp_retransmit_skb)', header, text });
  },
};
