// SPDX-License-Identifier: MIT
// The filter language against tcpdump itself: real traffic over a veth pair into a
// namespace this test creates is captured by tcpdump to a pcap file; then every expression
// of the corpus selects packets from that file twice, by `tcpdump -r FILE EXPR` and by
// tcpscope's kernel packet program (BPF_PROG_TEST_RUN, the program that captures live),
// and the two selections must be the same packets.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { bpfAvailable, eventually, ROOT } from './helpers/bpf';
import { LINKTYPE_ETHERNET, PcapngWriter } from '../lib/pcapng';
import { createTestNet, TestNet, TRAFFIC_SCRIPT } from './helpers/netns';
import { connectionsSettled } from './helpers/listen';
import { CaptureFrame, readCapture } from '../lib/pcapng/read';
import { PacketFileFilter } from '../lib/probes/packets-file';
import { freePort } from './helpers/tcpprobe';

const enabled = bpfAvailable('filter vs tcpdump');
const CLI = path.join(ROOT, 'dist', 'lib', 'cli', 'main.js');

describe.skipIf(!enabled)('filter expressions select the packets tcpdump selects', { timeout: 120_000 }, () => {
  let tn: TestNet;
  let dir: string;
  let file: string;
  let frames: CaptureFrame[];
  const p1 = freePort();
  const p2 = p1 + 1;
  const closed = p1 + 2;
  const sentinel = p1 + 3;

  beforeAll(async () => {
    tn = createTestNet();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), `tcpscope-filter-${process.pid}-`));
    file = path.join(dir, 'traffic.pcap');
    const dump = spawn('tcpdump', ['-i', tn.hostIf, '-U', '-s', '0', '-w', file, 'tcp'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    dump.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
    await eventually(() => /listening on/.test(err), 10000, 'tcpdump to start');
    const servers = [[tn.hostV4, p1], [tn.hostV6, p2]].map(([host, port]) => {
      const s = net.createServer((c) => { c.resume(); c.on('end', () => c.end(Buffer.alloc(1500, 0x62))); c.on('error', () => {}); });
      s.listen(port as number, host as string);
      return s;
    });
    await Promise.all(servers.map((s) => once(s, 'listening')));
    const drive = async (host: string, port: number, n: number, bytes: number): Promise<void> => {
      const child = tn.spawnNode(TRAFFIC_SCRIPT, [host, String(port), String(n), String(bytes)]);
      await once(child, 'exit');
    };
    await drive(tn.hostV4, p1, 3, 3000);
    await drive(tn.hostV6, p2, 2, 100_000);
    await drive(tn.hostV4, closed, 1, 10); // refused: SYN and RST
    await drive(tn.hostV6, p2, 1, 10);
    for (const s of servers) s.close();
    // Every last ACK has reached the host (so tcpdump's ring); then one more refused SYN,
    // whose RST is the last packet: once tcpdump -U has written it, it has written all.
    await connectionsSettled(p1);
    await connectionsSettled(p2);
    await drive(tn.hostV4, sentinel, 1, 10);
    const fromSentinel = (f: CaptureFrame): boolean => {
      const tcp = 14 + (f.data[14]! & 0x0f) * 4;
      return ipv4(f) && ((f.data[tcp]! << 8) | f.data[tcp + 1]!) === sentinel;
    };
    await eventually(() => fs.existsSync(file) && readCapture(fs.readFileSync(file)).some(fromSentinel), 10000, 'the capture');
    dump.kill('SIGINT');
    await once(dump, 'exit');
    frames = readCapture(fs.readFileSync(file));
  });

  afterAll(() => {
    tn?.destroy();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const corpus = (): string[] => [
    '',
    'tcp',
    'ip',
    'ip6',
    `port ${p1}`,
    `tcp port ${p1}`,
    `src port ${p1}`,
    `dst port ${p2}`,
    `tcp dst port ${p2}`,
    `port ${p1} or port ${p2}`,
    `port ${p1} or ${p2}`,
    `portrange ${p1}-${p2}`,
    'tcp src portrange 1-65535',
    `dst portrange ${p2}-${closed}`,
    `host ${tn.hostV4}`,
    `src host ${tn.nsV4}`,
    `dst host ${tn.hostV6}`,
    `ip host ${tn.nsV4}`,
    `ip6 src host ${tn.nsV6}`,
    `src ${tn.nsV4}`,
    `net ${tn.hostV4.split('.').slice(0, 3).join('.')}.0/24`,
    `net ${tn.hostV4.split('.').slice(0, 3).join('.')}.0 mask 255.255.255.0`,
    `dst net ${tn.hostV6.replace(/::1$/, "::")}/64`,
    `net ${tn.hostV4.split('.').slice(0, 2).join('.')}`,
    'tcp[tcpflags] & tcp-syn != 0',
    'tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn',
    'tcp[tcpflags] & (tcp-syn|tcp-ack) = (tcp-syn|tcp-ack)',
    `tcp port ${p1} && (tcp[tcpflags] & (tcp-fin|tcp-rst)) != 0`,
    'tcp[tcpflags] & tcp-rst != 0',
    'tcp[13] = 18',
    'tcp[13] & 8 != 0',
    `tcp[2:2] = ${p1}`,
    `tcp[0:2] > 1024 and tcp[0:2] < ${p1}`,
    'tcp[14:2] < 1000',
    'tcp[12] & 0xf0 > 0x50',
    'tcp[4:4] > 0x80000000',
    'tcp[8:4] = 0',
    'less 80',
    'greater 1000',
    'len > 100 and len <= 1514',
    'len = 74 or len = 94',
    'len >= 1500',
    `not port ${p1}`,
    `! port ${p2} && ip`,
    `not (port ${p1} or port ${p2})`,
    `(src host ${tn.nsV4} or src host ${tn.nsV6}) and tcp[tcpflags] & tcp-push != 0`,
    `ip6 and (greater 200 || len < 80)`,
    `ip and (greater 200 || tcp[13] & 1 != 0)`,
    `src and dst net ${tn.hostV4.split('.').slice(0, 3).join('.')}.0/24`,
    `src or dst port ${closed}`,
    'ip proto \\tcp',
    'ip6 proto 6',
    `port ${p1} and not tcp[tcpflags] & tcp-ack = 0`,
    `((port ${p1}) and ((src host ${tn.hostV4})))`,
  ];

  /** A packet's identity in both tools: its time (µs, as tcpdump -tt prints it) and length. */
  const key = (frame: CaptureFrame): string => {
    const us = frame.tsNs / 1000n;
    return `${us / 1_000_000n}.${String(us % 1_000_000n).padStart(6, '0')} ${frame.origLen}`;
  };

  const tcpdumpSelects = (expr: string): string[] => {
    const out = execFileSync('tcpdump', ['-r', file, '-nn', '-tt', '-e', ...(expr ? [expr] : [])], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    return out.split('\n').filter(Boolean).map((l) => `${l.split(' ')[0]} ${/, length (\d+):/.exec(l)![1]}`);
  };

  /**
   * libpcap applies tcp[...] to IPv4 packets only (pcap-filter(7): "tcp, udp and other
   * upper-layer protocol types only apply to IPv4, not IPv6"); tcpscope reads the TCP
   * header of IPv6 packets too. Expressions with tcp[...] are compared on IPv4 packets.
   */
  const ipv4 = (frame: CaptureFrame): boolean => frame.data[12] === 0x08 && frame.data[13] === 0x00;

  it('a corpus of 40+ expressions selects exactly tcpdump\'s packets', () => {
    const exprs = corpus();
    expect(exprs.length).toBeGreaterThanOrEqual(40);
    expect(frames.length).toBeGreaterThan(40);
    using f = new PacketFileFilter(undefined);
    const mismatches: string[] = [];
    let nonEmpty = 0;
    for (const expr of exprs) {
      f.stream.program.setFilter(expr);
      const onlyV4 = expr.includes('tcp[');
      const ours = frames.filter((frame) => (!onlyV4 || ipv4(frame)) && f.run(frame) !== undefined).map(key);
      const theirs = tcpdumpSelects(expr);
      if (theirs.length && theirs.length < frames.length) nonEmpty++;
      if (ours.join(',') !== theirs.join(',')) mismatches.push(`'${expr}': tcpdump ${theirs.length} [${theirs.slice(0, 8).join(',')}...], tcpscope ${ours.length} [${ours.slice(0, 8).join(',')}...]`);
    }
    expect(mismatches).toEqual([]);
    // The corpus discriminates: most expressions select some packets but not all.
    expect(nonEmpty).toBeGreaterThanOrEqual(30);
  });

  it('packets -r FILE (pcap and pcapng) prints the lines tcpdump -r prints, with the same filter', async () => {
    const pcapng = path.join(dir, 'traffic.pcapng');
    const writer = PcapngWriter.create(pcapng, { interfaces: [{ name: tn.hostIf, linkType: LINKTYPE_ETHERNET, snaplen: 262144 }], resolution: 'us' });
    for (const f of frames) writer.write(0, f.tsNs / 1000n, f.data, f.origLen);
    writer.close();
    const expr = `port ${p1} or (ip6 and tcp[tcpflags] & tcp-syn != 0)`;
    const theirs = execFileSync('tcpdump', ['-r', file, '-nn', '-S', expr], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim().split('\n');
    for (const input of [file, pcapng]) {
      const r = spawnSync(process.execPath, [CLI, 'packets', '-r', input, '-nn', expr], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/^reading from file .*, \d+ packets, filter/m);
      const ours = r.stdout.trim().split('\n').map((l) => l.replace(/^(\S+) \S+ In {2}/, '$1 '));
      // tcp[] is IPv4-only in libpcap: the IPv6 SYNs are tcpscope's extra lines.
      const v6syns = ours.filter((l) => / IP6 .*Flags \[S\.?\]/.test(l) && !l.includes(`.${p1}`));
      expect(v6syns.length).toBeGreaterThan(0);
      expect(ours.filter((l) => !v6syns.includes(l))).toEqual(theirs);
    }
    // -v: the IP header as tcpdump -v prints it (test/packets-verbose.test.ts compares whole lines).
    const vTheirs = execFileSync('tcpdump', ['-r', file, '-nn', '-S', '-v', expr], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim().split('\n');
    const v = spawnSync(process.execPath, [CLI, 'packets', '-r', file, '-nn', '-v', expr], { encoding: 'utf8' });
    expect(v.status, v.stderr).toBe(0);
    const vOurs = v.stdout.trim().split('\n').map((l) => l.replace(/^(\S+) \S+ In {2}/, '$1 '));
    const headers = (lines: string[]): string[] => lines.filter((l) => / IP \(/.test(l)).map((l) => l.replace(/\).*$/, ')'));
    expect(headers(vOurs)).toEqual(headers(vTheirs));
    expect(headers(vOurs).length).toBeGreaterThan(0);
    expect(vOurs.find((l) => / IP \(/.test(l))).toMatch(/IP \(tos 0x\d+, ttl \d+, id \d+, offset 0, flags \[DF\], proto TCP \(6\), length \d+\)/);
    const v6 = (lines: string[]): string[] => lines.filter((l) => l.includes(' IP6 (') && l.includes(`.${p1}`)).map((l) => l.replace(/\).*$/, ')'));
    expect(v6(vOurs)).toEqual(v6(vTheirs));
    const bad = spawnSync(process.execPath, [CLI, 'packets', '-r', path.join(dir, 'nope.pcap')], { encoding: 'utf8' });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/no such file: .*nope\.pcap/);
    fs.writeFileSync(path.join(dir, 'junk'), 'not a capture');
    const junk = spawnSync(process.execPath, [CLI, 'packets', '-r', path.join(dir, 'junk')], { encoding: 'utf8' });
    expect(junk.status).toBe(2);
    expect(junk.stderr).toMatch(/not a pcap or pcapng file/);
  });
});
