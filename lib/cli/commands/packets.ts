// SPDX-License-Identifier: MIT
// tcpscope packets: incoming TCP segments, one tcpdump-like line each (or NDJSON, or a
// pcapng file), filtered in the kernel by a tcpdump-like expression.
import { compileFilter } from '../../filter/compile';
import { FilterError } from '../../filter/parse';
import { PcapngWriter, LINKTYPE_ETHERNET } from '../../pcapng';
import { MAX_CAPTURE, PacketEvent, PacketStream, TimeFormatter, formatPacketBody, packetToJson, packets } from '../../probes/packets';
import { formatPacketVerbose } from '../../probes/packets-verbose';
import { PacketPcapngEncoder } from '../../capture/pcapng';
import { PacketFileFilter } from '../../probes/packets-file';
import { CaptureFormatError, CaptureFrame, readCapture } from '../../pcapng/read';
import fs from 'node:fs';
import { followInterfaces, interfaceArg } from './interfaces';
import type { Command, CommandContext } from '../command';
import { DEPRECATED_D, STREAM_OPTIONS, UsageError, counter, looksLikeDuration, parseCount, printSummary, toJson } from '../command';

const STDOUT_FD = 1;

/**
 * Bytes captured with -v unless -s says otherwise: the link, IP and TCP headers with
 * options, and no payload (payload is captured only when asked for). tcpdump's TCP checksum
 * check needs the whole segment, so without -s it covers segments of up to ~50 payload bytes.
 */
const VERBOSE_SNAPLEN = 128;

/** One packet line as text: tcpdump's default, -v or -vv. */
function lineOf(e: PacketEvent, verbosity: number): string {
  return verbosity > 0 ? formatPacketVerbose(e, verbosity) : formatPacketBody(e);
}

/** Ring of a -w capture: 32 MiB holds about 200k packets of 96 captured bytes. */
const CAPTURE_RING_BYTES = 1 << 25;

function intArg(ctx: CommandContext, name: string, fallback: number, min: number, max: number): number {
  const raw = ctx.values[name];
  if (raw === undefined) return fallback;
  const text = String(raw);
  if (!/^\d+$/.test(text) || Number(text) < min || Number(text) > max) throw new UsageError(`bad --${name} '${text}': expected an integer ${min}..${max}`);
  return Number(text);
}

/** -r FILE: the file's frames through the kernel program (BPF_PROG_TEST_RUN), printed as live. */
async function readFile(ctx: CommandContext, file: string, expression: string): Promise<number> {
  if (ctx.values['write'] !== undefined) throw new UsageError('-r and -w together are not supported: filter a file with -r, or capture to one with -w');
  if (ctx.values['interface'] !== undefined) throw new UsageError('-r FILE reads a file: leave out -i');
  let frames: CaptureFrame[];
  try {
    frames = readCapture(file === '-' ? fs.readFileSync(0) : fs.readFileSync(file));
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ENOENT') throw new UsageError(`no such file: ${file}`);
    if (err.code === 'EISDIR') throw new UsageError(`${file} is a directory, not a capture file`);
    if (e instanceof CaptureFormatError) throw new UsageError(`${file}: ${e.message}`);
    throw e;
  }
  const take = counter(ctx);
  const json = Boolean(ctx.values['json']);
  const verbosity = Number(ctx.values['verbose'] ?? 0);
  const time = new TimeFormatter();
  const payloadBytes = intArg(ctx, 'payload', 0, 0, MAX_CAPTURE);
  using filter = new PacketFileFilter(expression, { payloadBytes });
  ctx.ready(`reading from file ${file}, ${frames.length} packets${expression ? `, filter '${expression}'` : ''}`);
  let selected = 0;
  for (const { event: e } of filter.select(frames)) {
    if (ctx.signal.aborted) break;
    selected++;
    ctx.out.write(json ? `${toJson(packetToJson(e))}\n` : `${time.format(e.epochNs)} ${e.ifname} In  ${lineOf(e, verbosity)}\n`);
    if (!take()) break;
  }
  ctx.err.write(`${selected} packets selected of ${frames.length} in the file\n`);
  return 0;
}

async function writeText(ctx: CommandContext, probe: PacketStream): Promise<void> {
  const take = counter(ctx);
  const json = Boolean(ctx.values['json']);
  const time = new TimeFormatter();
  const verbosity = Number(ctx.values['verbose'] ?? 0);
  let done = false;
  for await (const events of probe.batches()) {
    let out = '';
    for (const e of events) {
      out += json ? `${toJson(packetToJson(e))}\n` : `${time.format(e.epochNs)} ${e.ifname} In  ${lineOf(e, verbosity)}\n`;
      if (!take()) { done = true; break; }
    }
    ctx.out.write(out);
    if (done) break;
  }
}

async function writePcapng(ctx: CommandContext, probe: PacketStream, file: string, snaplen: number, resolution: 'ns' | 'us', immediate: boolean): Promise<number> {
  const options = {
    interfaces: [...probe.interfaces.values()].map((name) => ({ name, linkType: LINKTYPE_ETHERNET, snaplen })),
    resolution,
    application: 'tcpscope packets',
  };
  // -w - as tcpdump's: the file goes to standard output (e.g. into wireshark -k -i -).
  const writer = file === '-' ? new PcapngWriter(STDOUT_FD, options) : PcapngWriter.create(file, options);
  const limit = parseCount(ctx.values['count'] as string | undefined);
  const encoder = new PacketPcapngEncoder(probe, writer);
  let written = 0;
  try {
    if (immediate) {
      // -U: the reader sleeps without a timer while the ring is quiet (the idle protocol
      // of the JavaScript reader), and every batch reaches the file at once.
      for await (const n of encoder.run(limit)) {
        written += n;
        writer.flush();
      }
    } else {
      written = await encoder.capture(limit);
    }
    if (limit !== undefined && written >= limit) ctx.stop();
  } finally {
    writer.close();
  }
  return writer.packets;
}

export const packetsCommand: Command = {
  name: 'packets',
  summary: 'incoming TCP segments, tcpdump-like: lines, NDJSON or pcapng (-w), filtered in the kernel',
  usage: '-i IFACE [-i IFACE2] | -r FILE [--xdp] [-w FILE] [-s SNAPLEN] [-c N] [--duration DURATION] [-n] [-v] [-d] [--json] [--sample N] [--payload N] [--latency-ms MS] [-U] [filter expression]\n' +
    '  -w - writes the pcapng to standard output; -w buffers like tcpdump: the ring is read when 4 MiB wait or after --latency-ms (default 1000); -U writes every packet within 10 ms\n' +
    '  filter: pcap-filter(7) for TCP: [tcp|ip|ip6] [src|dst] host/net [mask]/port/portrange, proto tcp, less/greater/len, tcp[OFF:SIZE] & MASK relop N (first 16 header bytes), syn/ack/fin/rst, and/or/not, && || !, ( )\n' +
    '  e.g.  tcpscope packets -i lo \'dst port 8080 and tcp[tcpflags] & tcp-syn != 0\'',
  options: {
    ...STREAM_OPTIONS,
    interface: { type: 'string', short: 'i', multiple: true, arg: 'IFACE', help: 'capture incoming TCP on this interface (repeatable); any: every interface, and those created later' },
    xdp: { type: 'boolean', default: false, help: 'capture at XDP instead of tc ingress (earlier, before the kernel allocates an skb)' },
    'xdp-mode': { type: 'string', arg: 'MODE', choices: ['auto', 'native', 'skb'], help: 'XDP attach mode with --xdp' },
    write: { type: 'string', short: 'w', arg: 'FILE', help: 'write a pcapng file instead of lines (- for standard output)' },
    read: { type: 'string', short: 'r', arg: 'FILE', help: 'read packets from a pcap or pcapng file (- for standard input) instead of an interface; the filter runs in the kernel program as live' },
    snaplen: { type: 'string', short: 's', arg: 'SNAPLEN', help: 'bytes kept of each packet with -w or -v (0 = 262144, as tcpdump; -v alone keeps 128: the headers)' },
    sample: { type: 'string', arg: 'N', help: 'keep one matching packet in N (in the kernel)' },
    payload: { type: 'string', arg: 'N', help: 'with --json, include the first N payload bytes (hex)' },
    'time-stamp-precision': { type: 'string', arg: 'PREC', choices: ['nano', 'micro'], help: 'pcapng timestamp resolution with -w' },
    'print-filter': { type: 'boolean', short: 'd', default: false, help: 'print the compiled filter program and exit (as tcpdump -d)' },
    'latency-ms': { type: 'string', arg: 'MS', help: 'longest time a packet waits in the ring before it is read' },
    'packet-buffered': { type: 'boolean', short: 'U', default: false, help: 'with -w, write each packet within 10 ms' },
    numeric: { type: 'boolean', short: 'n', counted: true, help: 'do not resolve names (tcpscope never does: accepted for tcpdump habits; -nn too)' },
    verbose: { type: 'boolean', short: 'v', counted: true, help: 'print as tcpdump -v: the IP header (tos, TTL, id, offset, flags, length, options, a bad header checksum; IPv6 class, flow label, hop limit) and the TCP checksum verdict of segments captured whole (live, -v captures the headers only: add -s 0 to check segments with payload); -vv as tcpdump -vv: also the sequence number of every segment' },
  },
  deprecated: [{ ...DEPRECATED_D, warning: '-d DURATION is deprecated: use --duration (-d alone prints the compiled filter, as tcpdump -d does)', when: looksLikeDuration }],
  allowPositionals: true,
  positionalsHelp: 'a tcpdump filter expression (pcap-filter(7) syntax, the TCP subset)',
  examples: [
    ['tcpscope packets -i eth0', 'one line per incoming TCP segment'],
    ["tcpscope packets -i lo 'dst port 8080 and tcp[tcpflags] & tcp-syn != 0'", 'SYNs to port 8080 on loopback'],
    ['tcpscope packets -i eth0 -w out.pcapng -c 1000 port 443', '1000 segments of port 443 to a pcapng file'],
    ["tcpscope packets -r out.pcapng -v 'tcp[tcpflags] & tcp-rst != 0'", 'the resets in a capture file, with IP details'],
    ["tcpscope packets -d 'tcp port 80'", 'the compiled filter program, without capturing'],
  ],
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
    if (typeof ctx.values['read'] === 'string') return readFile(ctx, ctx.values['read'], expression);
    const { interfaces, follow } = interfaceArg(ctx, 'none');
    if (!interfaces.length) throw new UsageError('name at least one interface with -i IFACE (e.g. -i lo), or a file with -r FILE');
    const file = ctx.values['write'] as string | undefined;
    let snaplen = intArg(ctx, 'snaplen', 262144, 0, 262144);
    if (snaplen === 0) snaplen = 262144; // tcpdump: -s 0 means the default
    const precision = (ctx.values['time-stamp-precision'] as string | undefined) ?? 'nano';
    if (precision !== 'nano' && precision !== 'micro') throw new UsageError(`--time-stamp-precision must be nano or micro, got '${precision}'`);
    const payloadBytes = intArg(ctx, 'payload', 0, 0, MAX_CAPTURE);
    const hook = ctx.values['xdp'] ? 'xdp' : 'tc';
    const immediate = ctx.values['packet-buffered'] === true;
    const xdpMode = ctx.values['xdp-mode'] as 'auto' | 'skb' | 'native' | undefined;
    const verbose = ctx.values['verbose'] !== undefined;
    // -v prints IP header fields the event does not carry: capture the headers (or what -s
    // asks for: -s 0 -v captures whole frames, so every segment's checksum is checked).
    const captured = file ? Math.min(snaplen, MAX_CAPTURE) : verbose ? (ctx.values['snaplen'] !== undefined ? Math.min(snaplen, MAX_CAPTURE) : VERBOSE_SNAPLEN) : 0;
    const probe = packets({
      interfaces,
      hook,
      ...(xdpMode ? { xdpMode } : {}),
      filter: expression,
      snaplen: captured,
      payloadBytes: file ? 0 : payloadBytes,
      sampleRate: intArg(ctx, 'sample', 1, 1, 0x7fffffff),
      signal: ctx.signal,
      // Each wake-up of the reader costs CPU (tens of microseconds, more in a VM), so -w
      // batches as tcpdump does (its buffer timeout is one second): the kernel wakes the
      // reader when an eighth of the ring waits, or the timer after latency-ms. -U, as
      // tcpdump's, trades that for packets on disk within milliseconds.
      latencyMs: intArg(ctx, 'latency-ms', immediate ? 10 : file ? 1000 : 50, 1, 10000),
      ...(file && !immediate ? { wakeupBytes: CAPTURE_RING_BYTES / 8, ringBytes: CAPTURE_RING_BYTES } : {}),
    });
    if (follow) followInterfaces(ctx, () => (probe.isClosed ? {} : { packets: probe.program }));
    const names = [...probe.interfaces.values()].join(', ');
    // tcpdump's line, then what tcpscope adds: where it captures and the filter.
    ctx.ready(`listening on ${names}, link-type EN10MB (Ethernet), snapshot length ${verbose && !file ? captured : snaplen} bytes (${hook === 'xdp' ? 'XDP' : 'tc ingress'}${compiledText ? `, filter '${compiledText}'` : ''}${file ? `, writing ${file}` : ''})`);
    try {
      if (file) await writePcapng(ctx, probe, file, snaplen, precision === 'nano' ? 'ns' : 'us', immediate);
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
