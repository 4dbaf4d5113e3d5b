// SPDX-License-Identifier: MIT
// `tcpscope watch`: the main job. A live view of incoming TCP: connections as they open
// and close (with their owner), and once a second the packet, SYN and connection rates on
// every watched interface. With no traffic (or --demo), a demo network shows it working.
import { followInterfaces, interfaceArg } from './interfaces';
import { TCP_FLAGS } from '../../bpf/packet';
import { connections, ConnectionEvent } from '../../probes/connections';
import { packets, PacketStream } from '../../probes/packets';
import { startDemo, Demo } from '../../demo/demo';
import type { Command, CommandContext } from '../command';
import { DEPRECATED_D, STREAM_OPTIONS, counter, toJson } from '../command';
import { clock, endpoint } from './tcp_common';

const { syn: SYN, ack: ACK } = TCP_FLAGS;

function describe(e: ConnectionEvent): string {
  const who = e.pid ? `${e.comm}[${e.pid}]` : '?';
  const peer = endpoint(e.daddr, e.dport);
  const local = endpoint(e.saddr, e.sport);
  const time = clock(e.time);
  const arrow = e.direction === 'active' ? '->' : '<-';
  if (e.type === 'open') return `${time} OPEN  ${e.direction.padEnd(7)} ${local} ${arrow} ${peer}  ${who}`;
  return `${time} CLOSE ${e.direction.padEnd(7)} ${local} ${arrow} ${peer}  ${who}  rx ${e.bytesReceived} B  acked ${e.bytesAcked} B  ${(e.durationNs / 1e6).toFixed(1)} ms`;
}

interface Rates {
  packets: number;
  syns: number;
  bytes: number;
}

export const watchCommand: Command = {
  name: 'watch',
  summary: 'live view of incoming TCP: connections with their owners, packet and SYN rates (the main job)',
  usage: '[-i IFACE]... [--demo | --no-demo] [--json] [-c N] [--duration DURATION]',
  options: {
    ...STREAM_OPTIONS,
    interface: { type: 'string', short: 'i', multiple: true, arg: 'IFACE', help: 'watch this interface (default: every interface that is up; any: those created later too)' },
    demo: { type: 'boolean', default: false, help: 'start the demo network at once' },
    'no-demo': { type: 'boolean', default: false, help: 'never start the demo network' },
  },
  deprecated: [DEPRECATED_D],
  examples: [
    ['tcpscope watch', 'connections opening and closing with their process, packet and SYN rates each second'],
    ['tcpscope watch --demo --duration 15s', 'the same on a demo network the command creates and removes'],
  ],
  async run(ctx: CommandContext) {
    const { interfaces, follow } = interfaceArg(ctx, 'all');
    const json = Boolean(ctx.values['json']);
    const more = counter(ctx);
    const rates = new Map<string, Rates>();
    const streams: PacketStream[] = [];
    const conns = connections({ events: ['open', 'close'], signal: ctx.signal });
    let demo: Demo | undefined;
    const flushRates = (): void => {
      if (!rates.size) return;
      const parts = [...rates].map(([ifname, r]) => `${ifname}: ${r.packets} pkt/s ${r.syns} SYN/s ${(r.bytes / 1024).toFixed(1)} KiB/s`);
      if (json) ctx.out.write(`${toJson({ type: 'rates', time: new Date().toISOString(), interfaces: Object.fromEntries(rates) })}\n`);
      else ctx.out.write(`-- ${parts.join(' | ')}\n`);
      rates.clear();
    };
    let totalPackets = 0;
    const watchPackets = (ifaces: string[]): void => {
      const stream = packets({ interfaces: ifaces, signal: ctx.signal });
      streams.push(stream);
      void (async () => {
        for await (const batch of stream.batches()) {
          for (const p of batch) {
            const r = rates.get(p.ifname) ?? { packets: 0, syns: 0, bytes: 0 };
            r.packets++;
            r.bytes += p.ipLen;
            if ((p.flagBits & (SYN | ACK)) === SYN) r.syns++;
            rates.set(p.ifname, r);
            totalPackets++;
          }
        }
      })().catch((e: Error) => ctx.err.write(`tcpscope watch: packets: ${e.message}\n`));
    };
    try {
      watchPackets(interfaces);
      if (follow) followInterfaces(ctx, () => (streams[0] && !streams[0].isClosed ? { packets: streams[0].program } : {}));
      ctx.ready(`listening on ${interfaces.join(', ')} (tc ingress), watching connections, Ctrl-C to end`);
      const ticker = setInterval(flushRates, 1000);
      ctx.signal.addEventListener('abort', () => clearInterval(ticker), { once: true });
      const wantDemo = Boolean(ctx.values['demo']);
      const noDemo = Boolean(ctx.values['no-demo']);
      if (!noDemo) {
        void (async () => {
          if (!wantDemo) {
            await new Promise((r) => setTimeout(r, 2000));
            if (totalPackets > 0 || ctx.signal.aborted) return;
            ctx.err.write('no incoming TCP traffic yet: starting the demo (a veth pair into a namespace of its own; --no-demo turns this off)\n');
          }
          demo = await startDemo();
          watchPackets([demo.net.hostIf]);
          ctx.err.write(`demo: veth ${demo.net.hostIf} into a namespace held by process ${demo.net.holderPid}: ${demo.net.nsV4} and ${demo.net.nsV6} connect to ${demo.net.hostV4} and ${demo.net.hostV6} port ${demo.port}\n`);
          let driven = 0;
          const bytes = 2000;
          for (let round = 0; round < 3 && !ctx.signal.aborted; round++) {
            driven += await demo.drive(8, bytes);
            await new Promise((r) => setTimeout(r, 700));
          }
          ctx.err.write(`demo: traffic done (${driven} connections of ${bytes} bytes)\n`);
        })().catch((e: Error) => ctx.err.write(`tcpscope watch: demo failed: ${e.message}\n`));
      }
      for await (const e of conns) {
        if (json) ctx.out.write(`${toJson(e)}\n`);
        else ctx.out.write(`${describe(e)}\n`);
        if (!more()) break;
      }
      clearInterval(ticker);
      return 0;
    } finally {
      // Events still in flight reach the output before the totals.
      await new Promise((r) => setTimeout(r, 50));
      flushRates();
      const connStats = conns.stats();
      conns.close();
      let received = 0, lost = 0;
      for (const s of streams) {
        const st = s.stats();
        received += st.received;
        lost += st.lost;
        s.close();
      }
      demo?.close();
      ctx.err.write(`${connStats.received} connection events (${connStats.lost} lost), ${received} packets (${lost} lost)\n`);
    }
  },
};
