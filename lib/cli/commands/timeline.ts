// SPDX-License-Identifier: MIT
// `tcpscope timeline`: each connection's packets, state changes, retransmits, RTT samples,
// resets and drops in order, printed when the connection closes.
import { timelines } from '../../timeline/stream';
import { describeEntry } from '../../timeline';
import type { Command } from '../command';
import { DEPRECATED_D, STREAM_OPTIONS, UsageError, counter, toJson } from '../command';
import { parsePort } from '../../net/addr';
import { plainEvent } from '../../probes/stream';
import { upInterfaces } from '../../net/interfaces';

export const timelineCommand: Command = {
  name: 'timeline',
  summary: "one view per connection: its packets, states, retransmits, RTT, resets and drops in order",
  usage: '[-i IFACE]... [-P PORT]... [--json] [-c N] [--duration DURATION]',
  options: {
    ...STREAM_OPTIONS,
    interface: { type: 'string', short: 'i', multiple: true, arg: 'IFACE', help: 'join incoming packets from this interface (default: every interface that is up)' },
    port: { type: 'string', short: 'P', multiple: true, arg: 'PORT', help: 'only connections with this local or remote port' },
  },
  deprecated: [{ spelling: '-p', option: 'port', warning: "-p PORT is deprecated: use -P/--port (-p will mean a PID, as in bcc's tools)" }, DEPRECATED_D],
  examples: [
    ['tcpscope timeline -P 8080', 'each connection on port 8080 when it closes: packets, states, RTT, retransmits, resets, drops'],
    ['tcpscope timeline -i lo -P 8080 --json -c 1', 'the first closed connection as one JSON object'],
  ],
  async run(ctx) {
    const interfaces = (ctx.values['interface'] as string[] | undefined) ?? upInterfaces();
    let ports: number[];
    try {
      ports = ((ctx.values['port'] as string[] | undefined) ?? []).map((p) => parsePort(p));
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
    const more = counter(ctx);
    let n = 0;
    for await (const t of timelines({ interfaces, ports, signal: ctx.signal, onReady: () => ctx.ready(`listening on ${interfaces.join(', ')} (tc ingress), tracing connections; a timeline is printed when its connection closes`) })) {
      n++;
      if (ctx.values['json']) {
        ctx.out.write(`${toJson({ cookie: t.cookie, local: t.local, remote: t.remote, pid: t.pid, comm: t.comm, truncated: t.truncated, entries: t.entries.map((e) => ({ kind: e.kind, tsNs: e.tsNs, ...('packet' in e ? { flags: e.packet.flagBits, seq: e.packet.seq, ack: e.packet.ack, len: e.packet.payloadLen } : 'connection' in e ? { from: e.connection.oldstate, to: e.connection.newstate } : { ...plainEvent(e.event) }) })) })}\n`);
      } else {
        const start = t.entries[0]?.tsNs ?? 0n;
        ctx.out.write(`connection ${t.local} <-> ${t.remote} ${t.comm ? `${t.comm}[${t.pid}]` : ''} cookie ${t.cookie}\n`);
        for (const e of t.entries) ctx.out.write(`${describeEntry(e, start)}\n`);
        if (t.truncated) ctx.out.write(`  (${t.truncated} more entries not kept)\n`);
      }
      if (!more()) break;
    }
    ctx.err.write(`${n} connection timelines\n`);
    return 0;
  },
};
