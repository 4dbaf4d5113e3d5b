// SPDX-License-Identifier: MIT
// `tcpscope top`: a live, refreshing table of the busiest remote hosts and connections.
import { connections } from '../../probes/connections';
import { packets } from '../../probes/packets';
import { TopAggregator, renderTop } from '../../top/aggregate';
import type { Command } from '../command';
import { DEPRECATED_D, STREAM_OPTIONS, UsageError, counter, parseDuration, toJson } from '../command';
import { followInterfaces, interfaceArg } from './interfaces';

export const topCommand: Command = {
  name: 'top',
  summary: 'live table of the busiest remote hosts and connections (-c N: N refreshes)',
  usage: '[-i IFACE]... [--interval 1s] [--limit 10] [--json] [-c N] [--duration DURATION]',
  options: {
    ...STREAM_OPTIONS,
    interface: { type: 'string', short: 'i', multiple: true, arg: 'IFACE', help: 'watch this interface (default: every interface that is up; any: those created later too)' },
    interval: { type: 'string', default: '1s', arg: 'DURATION', help: 'refresh this often' },
    limit: { type: 'string', default: '10', arg: 'N', help: 'rows per table' },
  },
  deprecated: [DEPRECATED_D],
  examples: [
    ['tcpscope top', 'the busiest remote hosts and connections, refreshed every second'],
    ['tcpscope top -i eth0 --interval 5s --json -c 3', 'three 5-second snapshots of eth0 as NDJSON'],
  ],
  async run(ctx) {
    const { interfaces, follow } = interfaceArg(ctx, 'all');
    const intervalMs = parseDuration(ctx.values['interval'] as string);
    const limit = Number(ctx.values['limit']);
    if (!Number.isInteger(limit) || limit < 1) throw new UsageError(`bad --limit '${String(ctx.values['limit'])}': expected a positive integer`);
    const tty = Boolean((ctx.out as NodeJS.WriteStream).isTTY) && !ctx.values['json'];
    const aggregator = new TopAggregator(limit);
    const pkts = packets({ interfaces, signal: ctx.signal });
    const conns = connections({ events: ['open', 'close'], signal: ctx.signal });
    const more = counter(ctx);
    if (follow) followInterfaces(ctx, () => (pkts.isClosed ? {} : { packets: pkts.program }));
    ctx.ready(`listening on ${[...pkts.interfaces.values()].join(', ')} (tc ingress), refreshing every ${intervalMs / 1000}s`);
    const timer = setInterval(() => {
      const snap = aggregator.snapshot();
      if (ctx.values['json']) ctx.out.write(`${toJson(snap)}\n`);
      else ctx.out.write(`${tty ? '\x1b[H\x1b[2J' : ''}${renderTop(snap)}\n${tty ? '' : '\n'}`);
      more();
    }, intervalMs);
    try {
      const pumpConns = (async () => { for await (const e of conns) aggregator.addConnection(e); })();
      for await (const batch of pkts.batches()) for (const p of batch) aggregator.addPacket(p);
      await pumpConns;
    } finally {
      clearInterval(timer);
      const ps = pkts.stats();
      pkts.close();
      conns.close();
      ctx.err.write(`${ps.received} packets received, ${ps.lost} lost\n`);
    }
    return 0;
  },
};
