// SPDX-License-Identifier: MIT
// `tcpscope packets -v` and `-vv` against tcpdump's own -v/-vv output, line by line, on
// the same packets: crafted frames in a capture file (bad IP and TCP checksums, IP options,
// fragments flags, ECN, IPv6 class and flow label, RST data, truncation) read with -r; a
// capture tcpscope wrote of real loopback traffic; and live loopback traffic printed by
// tcpscope while tcpdump captures it with the same snapshot length.
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { bpfAvailable, eventually, ROOT } from './helpers/bpf';
import { LINKTYPE_ETHERNET, PcapngWriter } from '../lib/pcapng';
import { parseIp, tcpFrame, TcpFrameOptions } from '../lib/bpf/packet';
import { internetChecksum } from '../lib/util/checksum';
import { freePort } from './helpers/tcpprobe';

const enabled = bpfAvailable('packets -v');
const CLI = path.join(ROOT, 'dist', 'lib', 'cli', 'main.js');

interface V4Header {
  tos?: number;
  id?: number;
  /** Flags and fragment offset word (default DF). */
  frag?: number;
  ttl?: number;
  /** IP option bytes (a multiple of 4). */
  options?: number[];
  /** Written instead of the correct header checksum. */
  ipSum?: number;
  /** Written instead of the correct TCP checksum. */
  tcpSum?: number;
  /** The IP total length written (default: the real one). */
  totalLength?: number;
  /** TCP option bytes (a multiple of 4) instead of the segment's own. */
  tcpOptions?: number[];
}

const be16 = (b: Uint8Array, at: number, v: number): void => { b[at] = (v >> 8) & 0xff; b[at + 1] = v & 0xff; };

/** The TCP checksum of `tcp` (its field zeroed first) under a pseudo-header. */
function tcpSum(tcp: Uint8Array, pseudo: Uint8Array): number {
  be16(tcp, 16, 0);
  return internetChecksum([pseudo, tcp]);
}

/** An IPv4 frame of the segment `o` describes, with the IP header as `h` says. */
function v4(o: TcpFrameOptions, h: V4Header = {}): Uint8Array {
  const base = tcpFrame(h.tcpOptions ? { ...o, options: {} } : o);
  let tcp = base.slice(34);
  if (h.tcpOptions) {
    const withOptions = new Uint8Array(tcp.length + h.tcpOptions.length);
    withOptions.set(tcp.subarray(0, 20), 0);
    withOptions.set(h.tcpOptions, 20);
    withOptions.set(tcp.subarray(20), 20 + h.tcpOptions.length);
    withOptions[12] = ((20 + h.tcpOptions.length) / 4) << 4;
    tcp = withOptions;
  }
  const opts = Uint8Array.from(h.options ?? []);
  const hlen = 20 + opts.length;
  const ip = new Uint8Array(hlen);
  ip[0] = 0x40 | (hlen / 4);
  ip[1] = h.tos ?? 0;
  be16(ip, 2, h.totalLength ?? hlen + tcp.length);
  be16(ip, 4, h.id ?? 1);
  be16(ip, 6, h.frag ?? 0x4000);
  ip[8] = h.ttl ?? 64;
  ip[9] = 6;
  ip.set(parseIp(o.src), 12);
  ip.set(parseIp(o.dst), 16);
  ip.set(opts, 20);
  be16(ip, 10, h.ipSum ?? internetChecksum([ip]));
  // A source route's last address is the destination the TCP checksum covers.
  let dst = parseIp(o.dst);
  for (let at = 0; at < opts.length;) {
    const code = opts[at]!;
    if (code === 0) break;
    const len = code === 1 ? 1 : opts[at + 1]!;
    if (code === 131 || code === 137) dst = opts.slice(at + len - 4, at + len);
    at += len;
  }
  const pseudo = new Uint8Array(12);
  pseudo.set(parseIp(o.src), 0);
  pseudo.set(dst, 4);
  pseudo[9] = 6;
  be16(pseudo, 10, tcp.length);
  be16(tcp, 16, h.tcpSum ?? tcpSum(tcp, pseudo));
  const frame = new Uint8Array(14 + hlen + tcp.length);
  frame.set(base.subarray(0, 14), 0);
  frame.set(ip, 14);
  frame.set(tcp, 14 + hlen);
  return frame;
}

/** An IPv6 frame with a traffic class and flow label, and optionally a wrong TCP checksum. */
function v6(o: TcpFrameOptions, h: { tclass?: number; flowlabel?: number; tcpSum?: number } = {}): Uint8Array {
  const frame = tcpFrame(o);
  const word = (6 << 28) | ((h.tclass ?? 0) << 20) | (h.flowlabel ?? 0);
  be16(frame, 14, word >>> 16);
  be16(frame, 16, word & 0xffff);
  if (h.tcpSum !== undefined) be16(frame, 54 + 16, h.tcpSum);
  return frame;
}

/** tcpscope's line without its time and interface, tcpdump's without its time. */
const ours = (text: string): string[] => text.trim().split('\n').filter(Boolean).map((l) => l.replace(/^\S+ \S+ In {2}/, ''));
const theirs = (text: string): string[] => text.trim().split('\n').filter(Boolean).map((l) => l.replace(/^\S+ /, ''));

/** -v prints IPv4 packets on two lines: join them, so lines compare one packet each. */
function packetsOf(lines: string[]): string[] {
  const out: string[] = [];
  for (const l of lines) {
    if (l.startsWith('    ') && out.length) out[out.length - 1] += `\n${l}`;
    else out.push(l);
  }
  return out;
}

function tcpdumpRead(file: string, ...args: string[]): string[] {
  return packetsOf(theirs(execFileSync('tcpdump', ['-r', file, '-nn', '-S', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })));
}

function tcpscopeRead(file: string, ...args: string[]): string[] {
  const r = spawnSync(process.execPath, [CLI, 'packets', '-r', file, '-nn', ...args], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  return packetsOf(ours(r.stdout));
}

const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

/** A process whose stderr is collected, with its readiness line awaited. */
async function start(cmd: string, args: string[], ready: RegExp): Promise<{ child: ChildProcess; out: () => string; err: () => string }> {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '', err = '';
  child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  await eventually(() => ready.test(err) || child.exitCode !== null, 15000, `${cmd} ${args.join(' ')} to start`);
  if (child.exitCode !== null) throw new Error(`${cmd} exited: ${err}`);
  return { child, out: () => out, err: () => err };
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGINT');
  await once(child, 'exit');
}

describe.skipIf(!enabled)('packets -v and -vv print what tcpdump -v and -vv print', { timeout: 120_000 }, () => {
  let dir: string;

  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), `tcpscope-verbose-${process.pid}-`));
    return () => fs.rmSync(dir, { recursive: true, force: true });
  });

  it('crafted frames read with -r: IP header, options, bad IP and TCP checksums, fragments, RST data, IPv6', () => {
    const a = { src: '198.51.100.7', dst: '192.168.77.1', sport: 40000, dport: 33333 };
    const a6 = { src: 'fd00:77::7', dst: 'fd00:77::1', sport: 40001, dport: 33333 };
    const hello = new TextEncoder().encode('hello');
    const frames: Array<[Uint8Array, number?]> = [
      [v4({ ...a, options: { mss: 1460, sackPermitted: true, timestamps: [7, 0], wscale: 7 } }, { tos: 0x13, id: 4242 })],
      [v4({ ...a, seq: 5 }, { ipSum: 0x1234 })],
      [v4({ ...a, flags: { ack: true, psh: true }, seq: 6, ack: 9, payload: hello }, { tcpSum: 0xbeef, tos: 0x02 })],
      [v4({ ...a, flags: { ack: true }, seq: 11, ack: 9 }, { id: 7, tos: 0x01 })],
      // NOP, RR with two addresses (the first recorded), RA: a 36-byte header.
      [v4({ ...a, seq: 12 }, { options: [1, 7, 11, 8, 10, 0, 0, 1, 10, 0, 0, 2, 148, 4, 0, 0] })],
      // LSRR through 10.0.0.9 to 10.0.0.10: the TCP checksum covers the route's end.
      [v4({ ...a, seq: 13 }, { options: [131, 11, 4, 10, 0, 0, 9, 10, 0, 0, 10, 1] })],
      // Timestamps only, two slots, one hop not recorded; RA with a value.
      [v4({ ...a, seq: 14 }, { options: [68, 12, 9, 0x10, 0, 0, 0, 42, 0, 0, 0, 0, 148, 4, 0, 3] })],
      // First fragment (MF): no TCP checksum check, as tcpdump.
      [v4({ ...a, seq: 15, payload: hello, flags: { ack: true } }, { frag: 0x6000 })],
      [v4({ ...a, seq: 16 }, { frag: 0x8000, ttl: 0 })],
      [v4({ ...a, flags: { rst: true }, seq: 17, payload: Uint8Array.from([...new TextEncoder().encode('no listener'), 1, 0xff, 0x7f]) })],
      [v4({ ...a, flags: { rst: true, ack: true }, seq: 18, ack: 1, payload: new Uint8Array(40).fill(0x41) })],
      [v6({ ...a6, options: { mss: 1440, sackPermitted: true } }, { tclass: 0xb8, flowlabel: 0x12345 })],
      [v6({ ...a6, flags: { ack: true }, seq: 20, ack: 3, payload: hello }, { tcpSum: 0x0001 })],
      [v6({ ...a6, flags: { ack: true }, seq: 21, ack: 3 }, { tclass: 0x01 })],
      // Captured short (-s 60): the segment is not whole, so no verdict.
      [v4({ ...a, flags: { ack: true }, seq: 22, ack: 1, payload: new Uint8Array(200) }), 60],
      // SACK blocks (two), an unknown option with data, echo, EOL ending the list.
      [v4({ ...a, flags: { ack: true }, seq: 24, ack: 1 }, { tcpOptions: [1, 1, 5, 18, 0, 0, 0x10, 0, 0, 0, 0x20, 0, 0, 0, 0x30, 0, 0, 0, 0x40, 0, 99, 4, 0xab, 0xcd, 6, 6, 0, 0, 1, 2, 0, 0, 0, 0, 0, 0] })],
      // A malformed option (length past the header): the options the kernel parsed.
      [v4({ ...a, flags: { ack: true }, seq: 25, ack: 1 }, { tcpOptions: [2, 4, 5, 180, 8, 30, 0, 0] })],
      // The IP length says 40 bytes more than the wire carried.
      [v4({ ...a, flags: { ack: true }, seq: 23, ack: 1, payload: hello }, { totalLength: 20 + 20 + 5 + 40 })],
    ];
    const file = path.join(dir, 'crafted.pcapng');
    const writer = PcapngWriter.create(file, { interfaces: [{ name: 'crafted0', linkType: LINKTYPE_ETHERNET, snaplen: 262144 }], resolution: 'us' });
    frames.forEach(([frame, caplen], i) => writer.write(0, 1_700_000_000_000_000 + i, caplen ? frame.subarray(0, caplen) : frame, frame.length));
    writer.close();

    for (const level of ['-v', '-vv']) {
      const mine = tcpscopeRead(file, level);
      const tcpdumps = tcpdumpRead(file, level);
      expect(mine.length).toBe(frames.length);
      expect(mine).toEqual(tcpdumps);
    }
    const v = tcpscopeRead(file, '-v').join('\n');
    // The verdicts tcpdump prints, each present (so the comparison above covers them).
    expect(v).toMatch(/tos 0x13,CE, ttl 64, id 4242, offset 0, flags \[DF\], proto TCP \(6\), length \d+\)\n {4}198\.51\.100\.7\.40000 > 192\.168\.77\.1\.33333: Flags \[S\], cksum 0x[0-9a-f]{4} \(correct\)/);
    expect(v).toMatch(/, bad cksum 1234 \(->[0-9a-f]+\)!\)/);
    expect(v).toMatch(/cksum 0xbeef \(incorrect -> 0x[0-9a-f]{4}\)/);
    expect(v).toMatch(/options \(NOP,RR 10\.0\.0\.1, 10\.0\.0\.2,RA\)/);
    expect(v).toMatch(/options \(LSRR 10\.0\.0\.9 10\.0\.0\.10,NOP\)[^\n]*\n[^\n]*cksum 0x[0-9a-f]{4} \(correct\)/);
    expect(v).toMatch(/flags \[\+, DF\]/);
    expect(v).toMatch(/flags \[rsvd\]/);
    expect(v).toMatch(/\[RST no listener\^AM-\^\?\^\?\]/);
    expect(v).toMatch(/\[RST\+ A{30}\]/);
    expect(v).toMatch(/IP6 \(class 0xb8, flowlabel 0x12345, hlim 64, next-header TCP \(6\) payload length: \d+\) fd00:77::7\.40001 > fd00:77::1\.33333: Flags \[S\], cksum 0x[0-9a-f]{4} \(correct\)/);
    expect(v).toMatch(/cksum 0x0001 \(incorrect -> 0x[0-9a-f]{4}\)/);
    expect(v).toMatch(/IP truncated-ip - 40 bytes missing! \(/);
    expect(v).toMatch(/options \[nop,nop,sack 2 \{4096:8192\}\{12288:16384\},unknown-99 0xabcd,echo 258,eol\], length 0/);
    expect(v).toMatch(/options \[mss 1460,\[bad opt\]\]$/m);
    // -vv: a pure ACK's sequence number too.
    expect(v).toMatch(/Flags \[\.\], cksum 0x[0-9a-f]{4} \(correct\), ack 9/);
    expect(tcpscopeRead(file, '-vv').join('\n')).toMatch(/Flags \[\.\], cksum 0x[0-9a-f]{4} \(correct\), seq 11, ack 9/);
  });

  it('live -v and -vv lines, and a capture tcpscope wrote, equal tcpdump\'s on the same loopback traffic', async () => {
    const port = freePort();
    const expr = `tcp port ${port}`;
    const dump128 = path.join(dir, 'td128.pcap');
    const dump0 = path.join(dir, 'td0.pcap');
    const written = path.join(dir, 'tcpscope.pcapng');
    const tds = [
      await start('tcpdump', ['-i', 'lo', '-U', '-s', '128', '-w', dump128, expr], /listening on/),
      await start('tcpdump', ['-i', 'lo', '-U', '-s', '0', '-w', dump0, expr], /listening on/),
    ];
    // -vv with the default -v capture (headers only), -v with whole frames (-s 0), and -w.
    const vv = await start(process.execPath, [CLI, 'packets', '-i', 'lo', '-nn', '-vv', expr], /listening on/);
    const v0 = await start(process.execPath, [CLI, 'packets', '-i', 'lo', '-nn', '-v', '-s', '0', expr], /listening on/);
    const w = await start(process.execPath, [CLI, 'packets', '-i', 'lo', '-U', '-w', written, expr], /listening on/);
    const servers = await Promise.all(['127.0.0.1', '::1'].map(async (host) => {
      const s = net.createServer((c) => { c.resume(); c.on('error', () => {}); c.on('end', () => c.end(Buffer.alloc(3000, 0x62))); });
      s.listen(port, host);
      await once(s, 'listening');
      return s;
    }));
    for (const [host, bytes] of [['127.0.0.1', 10], ['::1', 5000], ['127.0.0.1', 20]] as const) {
      const c = net.connect(port, host);
      await once(c, 'connect');
      c.end(Buffer.alloc(bytes, 0x61));
      c.resume();
      await once(c, 'close');
    }
    for (const s of servers) s.close();
    const count = (file: string): number => (fs.existsSync(file) ? tcpdumpRead(file).length : 0);
    // Every packet is in tcpdump's file and printed by each tcpscope (-v lines: IPv4 on two).
    await eventually(() => {
      const n = count(dump0);
      return n >= 24 && count(dump128) === n && packetsOf(ours(vv.out())).length === n && packetsOf(ours(v0.out())).length === n;
    }, 15000, 'every packet printed');
    for (const p of [vv, v0, w, ...tds]) await stop(p.child);

    const sorted = (lines: string[]): string[] => [...lines].sort();
    const td128 = tcpdumpRead(dump128, '-vv');
    expect(sorted(packetsOf(ours(vv.out())))).toEqual(sorted(td128));
    const td0 = tcpdumpRead(dump0, '-v');
    expect(sorted(packetsOf(ours(v0.out())))).toEqual(sorted(td0));
    // Loopback's checksums are left to the (absent) hardware: tcpdump and tcpscope both say
    // incorrect. With headers only, the 3000- and 5000-byte segments get no verdict; whole
    // frames give every segment one.
    expect(td128.some((l) => / length (3000|5000)$/.test(l) && !l.includes('cksum'))).toBe(true);
    expect(td0.every((l) => / cksum 0x[0-9a-f]{4} \((correct|incorrect -> 0x[0-9a-f]{4})\)/.test(l))).toBe(true);
    expect(td128.some((l) => l.includes(', seq ') && / Flags \[\.\]/.test(l) && / length 0$/.test(l))).toBe(true);
    // The capture tcpscope wrote, read back by both.
    for (const level of ['-v', '-vv']) expect(tcpscopeRead(written, level)).toEqual(tcpdumpRead(written, level));
    expect(tcpdumpRead(written).length).toBe(td0.length);
  });
});
