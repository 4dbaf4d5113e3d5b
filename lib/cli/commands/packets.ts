// tcpscope packets: incoming TCP segments, one tcpdump-like line each (or NDJSON, or a
// pcapng file), filtered in the kernel by a tcpdump-like expression.
import { compileFilter } from '../../filter/compile';
import { FilterError } from '../../filter/parse';
import { PcapngWriter, LINKTYPE_ETHERNET } from '../../pcapng';
import { MAX_CAPTURE, PacketStream, TimeFormatter, formatPacketBody, packetToJson, packets } from '../../probes/packets';
import type { Command, CommandContext } from '../command';
import { STREAM_OPTIONS, UsageError, counter, printSummary, toJson } from '../command';

const TWO_32 = 4294967296;

function intArg(ctx: CommandContext, name: string, fallback: number, min: number, max: number): number {
  const raw = ctx.values[name];
  if (raw === undefined) return fallback;
  const text = String(raw);
  if (!/^\d+$/.test(text) || Number(text) < min || Number(text) > max) throw new UsageError(`bad --${name} '${text}': expected an integer ${min}..${max}`);
  return Number(text);
}

async function writeText(ctx: CommandContext, probe: PacketStream): Promise<void> {
  const take = counter(ctx);
  const json = Boolean(ctx.values['json']);
  const time = new TimeFormatter();
  let done = false;
  for await (const events of probe.batches()) {
    let out = '';
    for (const e of events) {
      const wall = probe.wallClockNs(e.ts_ns);
      out += json ? `${toJson(packetToJson(e, wall))}\n` : `${time.format(wall)} ${e.ifname} In  ${formatPacketBody(e)}\n`;
      if (!take()) { done = true; break; }
    }
    ctx.out.write(out);
    if (done) break;
  }
}

async function writePcapng(ctx: CommandContext, probe: PacketStream, file: string, snaplen: number, resolution: 'ns' | 'us'): Promise<number> {
  const names = [...probe.interfaces.entries()];
  const ids = new Map(names.map(([index], i) => [index, i]));
  const writer = PcapngWriter.create(file, {
    interfaces: names.map(([, name]) => ({ name, linkType: LINKTYPE_ETHERNET, snaplen })),
    resolution,
    application: 'tcpscope packets',
  });
  const take = counter(ctx);
  const layout = probe.layout;
  const halves: [number, number] = [0, 0];
  const offsetUs = Number(probe.clockOffsetNs / 1000n);
  let lastFlush = Date.now();
  try {
    let done = false;
    for await (const batch of probe.rawBatches()) {
      const view = batch.view;
      const bytes = batch.bytes;
      for (let i = 0; i < batch.count; i++) {
        const off = batch.offsets[i]!;
        const lo = view.getUint32(off + layout.ts_ns, true);
        const hi = view.getUint32(off + layout.ts_ns + 4, true);
        const id = ids.get(view.getUint32(off + layout.ifindex, true)) ?? 0;
        const frameLen = view.getUint32(off + layout.frame_len, true);
        const capLen = view.getUint8(off + layout.cap_kind) === 1 ? view.getUint32(off + layout.cap_len, true) : 0;
        const start = off + layout.size;
        const data = bytes.subarray(start, start + capLen);
        if (resolution === 'ns') {
          probe.wallClockHalves(lo, hi, halves);
          writer.writePacket(id, halves[0], halves[1], data, frameLen);
        } else {
          const us = Math.floor((hi * TWO_32 + lo) / 1000) + offsetUs;
          writer.writePacket(id, Math.floor(us / TWO_32), us % TWO_32, data, frameLen);
        }
        if (!take()) { done = true; break; }
      }
      const now = Date.now();
      if (now - lastFlush > 250) { writer.flush(); lastFlush = now; }
      if (done) break;
    }
  } finally {
    writer.close();
  }
  return writer.packets;
}

export const packetsCommand: Command = {
  name: 'packets',
  summary: 'incoming TCP segments, tcpdump-like: lines, NDJSON or pcapng (-w), filtered in the kernel',
  usage: '-i IFACE [-i IFACE2] [--xdp] [-w FILE] [-s SNAPLEN] [-c N] [-d DURATION] [--json] [--sample N] [--payload N] [--latency-ms MS] [filter expression]\n' +
    '  filter: host/net/port/portrange with src/dst, ip, ip6, tcp[tcpflags] & tcp-syn != 0, syn/ack/fin/rst, and/or/not, ( )\n' +
    '  e.g.  tcpscope packets -i lo \'dst port 8080 and tcp[tcpflags] & tcp-syn != 0\'',
  options: {
    ...STREAM_OPTIONS,
    interface: { type: 'string', short: 'i', multiple: true },
    xdp: { type: 'boolean', default: false },
    'xdp-mode': { type: 'string' },
    write: { type: 'string', short: 'w' },
    snaplen: { type: 'string', short: 's' },
    sample: { type: 'string' },
    payload: { type: 'string' },
    'time-stamp-precision': { type: 'string' },
    'print-filter': { type: 'boolean', default: false },
    'latency-ms': { type: 'string' },
  },
  allowPositionals: true,
  async run(ctx) {
    const expression = ctx.positionals.join(' ');
    let compiledText: string;
    try {
      const compiled = compileFilter(expression);
      compiledText = compiled.text;
      if (ctx.values['print-filter']) {
        ctx.out.write(`${compiled.listing()}\n`);
        return 0;
      }
    } catch (e) {
      if (e instanceof FilterError) throw new UsageError(`bad filter: ${e.message}`);
      throw e;
    }
    const interfaces = (ctx.values['interface'] as string[] | undefined) ?? [];
    if (!interfaces.length) throw new UsageError('name at least one interface with -i IFACE (e.g. -i lo)');
    const file = ctx.values['write'] as string | undefined;
    let snaplen = intArg(ctx, 'snaplen', 262144, 0, 262144);
    if (snaplen === 0) snaplen = 262144; // tcpdump: -s 0 means the default
    const precision = (ctx.values['time-stamp-precision'] as string | undefined) ?? 'nano';
    if (precision !== 'nano' && precision !== 'micro') throw new UsageError(`--time-stamp-precision must be nano or micro, got '${precision}'`);
    const payloadBytes = intArg(ctx, 'payload', 0, 0, MAX_CAPTURE);
    const hook = ctx.values['xdp'] ? 'xdp' : 'tc';
    const xdpMode = ctx.values['xdp-mode'] as 'auto' | 'skb' | 'native' | undefined;
    const probe = packets({
      interfaces,
      hook,
      ...(xdpMode ? { xdpMode } : {}),
      filter: expression,
      snaplen: file ? Math.min(snaplen, MAX_CAPTURE) : 0,
      payloadBytes: file ? 0 : payloadBytes,
      sampleRate: intArg(ctx, 'sample', 1, 1, 0x7fffffff),
      signal: ctx.signal,
      // How long a quiet ring may wait before it is read: tcpdump buffers -w output for up
      // to a second; each timer wake-up costs CPU, so -w waits longer than line output.
      latencyMs: intArg(ctx, 'latency-ms', file ? 250 : 50, 1, 10000),
    });
    const names = [...probe.interfaces.values()].join(', ');
    ctx.err.write(`tcpscope: listening on ${names} (${hook === 'xdp' ? 'XDP' : 'tc ingress'})${compiledText ? `, filter '${compiledText}'` : ''}${file ? `, writing ${file} (snaplen ${snaplen})` : ''}\n`);
    try {
      if (file) await writePcapng(ctx, probe, file, snaplen, precision === 'nano' ? 'ns' : 'us');
      else await writeText(ctx, probe);
    } finally {
      probe.close();
    }
    const stats = probe.stats();
    const c = probe.counters();
    printSummary(ctx, stats, 'packets');
    ctx.err.write(`${c.tcp} TCP segments seen by the kernel, ${c.matched} matched the filter${c.sampledOut ? `, ${c.sampledOut} sampled out` : ''}\n`);
    return 0;
  },
};
