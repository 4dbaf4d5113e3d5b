// SPDX-License-Identifier: MIT
// tcpscope drops: TCP packets the kernel dropped, with the drop reason, and bad checksums.
import { drops, DropEvent } from '../../probes/drops';
import type { Command } from '../command';
import { FILTER_OPTIONS, FILTER_USAGE, clock, endpoint, filterOptions, openOrUsage, pad, streamEvents } from './tcp_common';

export const dropsCommand: Command = {
  name: 'drops',
  summary: 'dropped TCP packets with the kernel drop reason, and bad checksums',
  usage: `[-r REASON]... [--no-csum] ${FILTER_USAGE}`,
  options: { ...FILTER_OPTIONS, reason: { type: 'string', short: 'r', multiple: true }, 'no-csum': { type: 'boolean', default: false } },
  async run(ctx) {
    const reasons = ((ctx.values['reason'] as string[] | undefined) ?? []).flatMap((r) => r.split(',')).filter(Boolean);
    const probe = openOrUsage(() => drops({ ...filterOptions(ctx), badChecksums: !ctx.values['no-csum'], ...(reasons.length ? { reasons } : {}) }));
    const header = `${pad('TIME', 12)} ${pad('TYPE', 8)} ${pad('SOURCE', 28)} ${pad('DESTINATION', 28)} ${pad('FLAGS', 5)} REASON`;
    const text = (e: DropEvent): string =>
      `${clock(e.time)} ${pad(e.type, 8)} ${pad(endpoint(e.saddr, e.sport), 28)} ${pad(endpoint(e.daddr, e.dport), 28)} ${pad(e.tcpFlags, 5)} ${e.reason ?? (e.type === 'bad_csum' ? 'TCP_CSUM' : '-')}`;
    return streamEvents(ctx, probe, { header, text });
  },
};
