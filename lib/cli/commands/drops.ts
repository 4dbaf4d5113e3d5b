// SPDX-License-Identifier: MIT
// tcpscope drops: TCP packets the kernel dropped, with the drop reason, and bad checksums.
import { drops, DropEvent } from '../../probes/drops';
import { flagLetters } from '../../bpf/packet';
import type { Command } from '../command';
import { FILTER_DEPRECATED, FILTER_OPTIONS, FILTER_USAGE, clock, endpoint, filterOptions, openOrUsage, pad, streamEvents } from './tcp_common';

export const dropsCommand: Command = {
  name: 'drops',
  summary: 'dropped TCP packets with the kernel drop reason, and bad checksums',
  usage: `[--reason REASON]... [--no-csum] ${FILTER_USAGE}`,
  options: {
    ...FILTER_OPTIONS,
    reason: { type: 'string', multiple: true, arg: 'REASON', help: 'only drops with this kernel reason (enum skb_drop_reason without SKB_DROP_REASON_, e.g. NO_SOCKET)' },
    'no-csum': { type: 'boolean', default: false, help: 'leave out segments with a bad checksum' },
  },
  deprecated: [
    ...FILTER_DEPRECATED,
    { spelling: '-r', option: 'reason', warning: '-r REASON is deprecated: use --reason (-r will read a capture file, as tcpdump -r does)' },
  ],
  examples: [
    ['tcpscope drops', 'every dropped TCP segment with the kernel\'s reason'],
    ['tcpscope drops --reason NO_SOCKET,TCP_CSUM', 'segments for no socket and bad checksums only'],
  ],
  async run(ctx) {
    const reasons = ((ctx.values['reason'] as string[] | undefined) ?? []).flatMap((r) => r.split(',')).filter(Boolean);
    const probe = openOrUsage(() => drops({ ...filterOptions(ctx), badChecksums: !ctx.values['no-csum'], ...(reasons.length ? { reasons } : {}) }));
    const header = `${pad('TIME', 12)} ${pad('TYPE', 8)} ${pad('SOURCE', 28)} ${pad('DESTINATION', 28)} ${pad('FLAGS', 5)} REASON`;
    const text = (e: DropEvent): string =>
      `${clock(e.time)} ${pad(e.type, 8)} ${pad(endpoint(e.saddr, e.sport), 28)} ${pad(endpoint(e.daddr, e.dport), 28)} ${pad(flagLetters(e.flagBits), 5)} ${e.reason ?? (e.type === 'bad_csum' ? 'TCP_CSUM' : '-')}`;
    return streamEvents(ctx, probe, { tracing: 'TCP drops (skb:kfree_skb, tcp:tcp_bad_csum)', header, text });
  },
};
