// SPDX-License-Identifier: MIT
// tcpscope resets: TCP resets sent (with the kernel's reason) and received.
import { resets, ResetEvent } from '../../probes/resets';
import type { Command } from '../command';
import { UsageError } from '../command';
import { FILTER_DEPRECATED, FILTER_OPTIONS, FILTER_USAGE, clock, endpoint, filterOptions, openOrUsage, pad, streamEvents } from './tcp_common';

export const resetsCommand: Command = {
  name: 'resets',
  summary: 'TCP resets sent (with reason) and received',
  usage: `[--sent|--received] ${FILTER_USAGE}`,
  options: {
    ...FILTER_OPTIONS,
    sent: { type: 'boolean', default: false, help: 'only resets this host sends' },
    received: { type: 'boolean', default: false, help: 'only resets this host receives' },
  },
  deprecated: FILTER_DEPRECATED,
  examples: [
    ['tcpscope resets', 'resets sent (with the kernel\'s reason, 6.10+) and received'],
    ['tcpscope resets --sent -P 8080 --json', 'resets sent on port 8080, as NDJSON'],
  ],
  async run(ctx) {
    if (ctx.values['sent'] && ctx.values['received']) throw new UsageError('--sent and --received exclude each other (give neither for both)');
    const directions: Array<'sent' | 'received'> = ctx.values['sent'] ? ['sent'] : ctx.values['received'] ? ['received'] : ['sent', 'received'];
    const probe = openOrUsage(() => resets({ ...filterOptions(ctx), directions }));
    const header = `${pad('TIME', 12)} ${pad('DIR', 8)} ${pad('LOCAL', 28)} ${pad('REMOTE', 28)} ${pad('STATE', 12)} REASON`;
    const text = (e: ResetEvent): string => {
      // Sent: saddr is this host. Received: the socket's local side is saddr too.
      return `${clock(e.time)} ${pad(e.type, 8)} ${pad(endpoint(e.saddr, e.sport), 28)} ${pad(endpoint(e.daddr, e.dport), 28)} ${pad(e.state, 12)} ${e.reason ?? '-'}`;
    };
    return streamEvents(ctx, probe, { tracing: 'TCP resets (tcp:tcp_send_reset, tcp:tcp_receive_reset)', header, text });
  },
};
