// SPDX-License-Identifier: MIT
// Integration tests of the packets probe and SYN accounting on real traffic: a veth pair
// into a namespace this file creates (and loopback), at tc ingress and XDP.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import { once } from 'node:events';
import { packets, synCounts, PacketStream, PacketView, TimeFormatter, formatPacket, packetToJson, tcpOptions } from '../lib/probes';
import { formatAddress } from '../lib/net/addr';
import { FilterError } from '../lib/filter';
import { bpfAvailable, eventually } from './helpers/bpf';
import { createTestNet, runTraffic, TestNet } from './helpers/netns';
import { listen } from './helpers/listen';
import { freePort } from './helpers/tcpprobe';

const enabled = bpfAvailable('packets');
const SYN = 0x02, ACK = 0x10;

/** Reads events in the background until stopped. */
function collect(probe: PacketStream): { events: PacketView[]; done: Promise<void> } {
  const events: PacketView[] = [];
  const done = (async () => { for await (const batch of probe.batches()) events.push(...batch); })();
  return { events, done };
}

/** Ids of the BPF programs this process holds (from /proc/self/fdinfo). */
function heldPrograms(): number[] {
  const ids = new Set<number>();
  for (const fd of fs.readdirSync('/proc/self/fdinfo')) {
    try {
      const m = /^prog_id:\s+(\d+)/m.exec(fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
      if (m) ids.add(Number(m[1]));
    } catch { /* closed meanwhile */ }
  }
  return [...ids];
}

function attachedPrograms(dev: string): string {
  return execFileSync('bpftool', ['net', 'show', 'dev', dev], { encoding: 'utf8' });
}

describe.skipIf(!enabled)('packets: options are validated before anything is attached', () => {
  it('rejects unknown interfaces, bad filters, bad numbers', () => {
    const before = heldPrograms();
    expect(() => packets({ interfaces: ['lo', 'no-such-if9'] })).toThrow(/no network interface named 'no-such-if9'/);
    expect(() => packets({ interfaces: [] })).toThrow(/at least one interface/);
    expect(() => packets({ interfaces: ['lo'], filter: 'net 10.0.0.0/99' })).toThrow(/prefix length/);
    expect(() => packets({ interfaces: ['lo'], filter: { srcAddresses: ['10.0.0.300'] } })).toThrow(/bad address/);
    expect(() => packets({ interfaces: ['lo'], filter: 'port 99999' })).toThrow(FilterError);
    expect(() => packets({ interfaces: ['lo'], filter: { ports: ['http-alt-x'] } })).toThrow(/bad port/);
    expect(() => packets({ interfaces: ['lo'], sampleRate: 0 })).toThrow(/sampleRate must be an integer 1\.\./);
    expect(() => packets({ interfaces: ['lo'], payloadBytes: -1 })).toThrow(/payloadBytes/);
    expect(() => packets({ interfaces: ['lo'], hook: 'kprobe' as 'tc' })).toThrow(/hook must be 'tc' or 'xdp'/);
    expect(heldPrograms()).toEqual(before);
  });
});

describe.skipIf(!enabled)('packets on a veth pair into a test namespace', () => {
  let tn: TestNet;
  beforeAll(() => { tn = createTestNet(); });
  afterAll(() => tn?.destroy());

  for (const hook of ['tc', 'xdp'] as const) {
    it(`${hook}: IPv4 and IPv6 handshakes and a small transfer match what the sender did`, async () => {
      const port = freePort();
      const probe = packets({ interfaces: [tn.hostIf], hook, filter: `dst port ${port}` });
      const { events, done } = collect(probe);
      const s4 = await listen(port, tn.hostV4);
      const s6 = await listen(port, tn.hostV6);
      try {
        await runTraffic(tn, tn.hostV4, port, 1, 5000);
        await runTraffic(tn, tn.hostV6, port, 1, 3000);
        await eventually(() => events.filter((e) => e.flags.fin).length >= 2, 3000, 'both FINs');
      } finally {
        s4.close(); s6.close();
        probe.close();
        await done;
      }
      for (const [family, familyNumber, src, dst, mss, bytes] of [['ipv4', 2, tn.nsV4, tn.hostV4, 1460, 5000], ['ipv6', 10, tn.nsV6, tn.hostV6, 1440, 3000]] as const) {
        const flow = events.filter((e) => e.family === family);
        expect(flow.every((e) => e.dport === port && e.hook === hook && e.ifname === tn.hostIf)).toBe(true);
        // lazy views, read after every later batch: string addresses beside the raw bytes
        expect(flow.every((e) => e.saddr === src && e.daddr === dst)).toBe(true);
        expect(flow.every((e) => formatAddress(e.saddrBytes, familyNumber) === src && formatAddress(e.daddrBytes, familyNumber) === dst)).toBe(true);
        expect(flow.every((e) => e.saddrBytes.length === 16)).toBe(true);
        expect(JSON.parse(JSON.stringify(flow[0], (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)))).toMatchObject({
          saddr: src, daddr: dst, sport: flow[0]!.sport, dport: port, ifname: tn.hostIf, tsNs: flow[0]!.tsNs.toString(), family, hook,
          flags: { syn: true, ack: false, fin: false, rst: false }, flagBits: SYN,
        });
        const syn = flow[0]!;
        // the struct's own names stay inside the view
        expect(Object.keys(syn.toJSON()).filter((k) => k.includes('_'))).toEqual([]);
        // the wall clock of the capture: within the test's run, not the monotonic clock
        expect(Math.abs(Number(syn.epochNs / 1_000_000n) - Date.now())).toBeLessThan(60_000);
        expect(syn.time.getTime()).toBe(Number(syn.epochNs / 1_000_000n));
        expect(syn.epochNs - syn.tsNs).toBe(probe.clockOffsetNs);
        expect(syn.flagBits).toBe(SYN);
        expect(syn.flags).toEqual({ fin: false, syn: true, rst: false, psh: false, ack: false, urg: false, ece: false, cwr: false });
        const options = syn.options;
        expect(options).toMatchObject({ order: ['mss', 'sackPermitted', 'timestamps', 'nop', 'wscale'], mss, sackPermitted: true });
        expect(options.timestamps).toEqual([expect.any(Number), 0]);
        expect(options.wscale).toBeGreaterThanOrEqual(0);
        expect(options.malformed).toBeUndefined();
        expect(tcpOptions(syn)).toEqual([`mss ${mss}`, 'sackOK', `TS val ${options.timestamps![0]} ecr 0`, 'nop', `wscale ${options.wscale}`]);
        expect(syn.ttl).toBe(64);
        expect(syn.payloadLen).toBe(0);
        expect(syn.headerLen).toBe(40);
        expect(syn.ipLen).toBe(family === 'ipv4' ? 60 : 80);
        expect(syn.frameLen).toBe(14 + syn.ipLen);
        const sport = syn.sport;
        expect(flow.every((e) => e.sport === sport)).toBe(true);
        // handshake ACK, then data whose sequence numbers follow on without gaps
        expect(flow[1]!.flagBits & (SYN | ACK)).toBe(ACK);
        expect(flow[1]!.seq).toBe((syn.seq + 1) >>> 0);
        let next = (syn.seq + 1) >>> 0;
        let total = 0;
        for (const e of flow.slice(1)) {
          expect(e.seq).toBe(next);
          next = (next + e.payloadLen + (e.flags.fin ? 1 : 0)) >>> 0;
          total += e.payloadLen;
          expect(e.payload).toBeUndefined(); // never captured unless asked
        }
        expect(total).toBe(bytes);
        expect(formatPacket(syn)).toMatch(new RegExp(`${tn.hostIf} In  IP6? ${src.replace(/\./g, '\\.')}\\.${sport} > .*: Flags \\[S\\], seq ${syn.seq}, win \\d+, options \\[mss ${mss},sackOK,TS val \\d+ ecr 0,nop,wscale \\d+\\], length 0`));
        // without a time, the line starts with the capture's wall-clock time of day
        expect(formatPacket(syn).slice(0, 15)).toBe(new TimeFormatter().format(syn.epochNs));
        expect(packetToJson(syn)).toMatchObject({ saddr: src, daddr: dst, family, hook, flags: 'S', payloadLen: 0, headerLen: 40, options: { mss } });
      }
      expect(probe.stats().lost).toBe(0);
      expect(attachedPrograms(tn.hostIf)).not.toMatch(/packets_/);
    });
  }

  it('filters include and exclude in the kernel (address, CIDR, flags)', async () => {
    const port = freePort();
    const probe = packets({ interfaces: [tn.hostIf], filter: `dst port ${port} and not src net ${tn.nsV4}/24 and tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn` });
    const { events, done } = collect(probe);
    const s4 = await listen(port, tn.hostV4);
    const s6 = await listen(port, tn.hostV6);
    try {
      await runTraffic(tn, tn.hostV4, port, 3);
      await runTraffic(tn, tn.hostV6, port, 2);
      await eventually(() => probe.counters().matched >= 2, 3000, 'matches');
      // The SYNs are through: what the kernel let past the filter is all read.
      await eventually(() => events.length === probe.counters().emitted, 3000, 'every record the kernel wrote');
    } finally {
      s4.close(); s6.close();
      probe.close();
      await done;
    }
    expect(events).toHaveLength(2); // the two IPv6 SYNs: IPv4 excluded, non-SYNs excluded
    expect(events.every((e) => e.family === 'ipv6' && e.flagBits === SYN)).toBe(true);
    const c = probe.counters();
    expect(c.matched).toBe(2);
    expect(c.tcp).toBeGreaterThan(10);
  });

  it('samples 1 in N in the kernel', async () => {
    const port = freePort();
    const probe = packets({ interfaces: [tn.hostIf], filter: `dst port ${port} and syn`, sampleRate: 4 });
    const { events, done } = collect(probe);
    const server = await listen(port, tn.hostV4);
    try {
      await runTraffic(tn, tn.hostV4, port, 40);
      await eventually(() => probe.counters().matched >= 40, 3000, '40 SYNs');
      await eventually(() => events.length === probe.counters().emitted, 3000, 'every record the kernel wrote');
    } finally {
      server.close();
      probe.close();
      await done;
    }
    const c = probe.counters();
    expect(c.matched).toBe(40);
    expect(c.emitted + c.sampledOut).toBe(40);
    expect(c.emitted).toBe(events.length);
    expect(events.length).toBeGreaterThanOrEqual(8); // per-CPU counters: 10 +- one per CPU
    expect(events.length).toBeLessThanOrEqual(12);
  });

  it('changes the filter while running, without reloading', async () => {
    const a = freePort(), b = a + 1;
    const probe = packets({ interfaces: [tn.hostIf], filter: `dst port ${a} and syn` });
    const progId = probe.object.program('packets_tc').info().id;
    const { events, done } = collect(probe);
    const sa = await listen(a, tn.hostV4), sb = await listen(b, tn.hostV4);
    try {
      await runTraffic(tn, tn.hostV4, a, 2);
      await runTraffic(tn, tn.hostV4, b, 2);
      await eventually(() => events.length >= 2, 3000, 'port A SYNs');
      expect(() => probe.setFilter('dst port 99999')).toThrow(FilterError); // a bad filter changes nothing
      probe.setFilter({ dstPorts: [b], flags: ['syn'] });
      await runTraffic(tn, tn.hostV4, a, 2);
      await runTraffic(tn, tn.hostV4, b, 3);
      await eventually(() => events.length >= 5, 3000, 'port B SYNs');
      await eventually(() => events.length === probe.counters().emitted, 3000, 'every record the kernel wrote');
      expect(probe.object.program('packets_tc').info().id).toBe(progId);
    } finally {
      sa.close(); sb.close();
      probe.close();
      await done;
    }
    expect(events.map((e) => e.dport)).toEqual([a, a, b, b, b]);
  });

  it('captures payload bytes only when asked, and frames with snaplen', async () => {
    const port = freePort();
    const probe = packets({ interfaces: [tn.hostIf], filter: `dst port ${port}`, payloadBytes: 16 });
    const { events, done } = collect(probe);
    const server = await listen(port, tn.hostV4);
    try {
      await runTraffic(tn, tn.hostV4, port, 1, 100);
      await eventually(() => events.some((e) => e.payloadLen > 0), 3000, 'data segment');
      probe.setCapture({ payloadBytes: 0, snaplen: 60 });
      await runTraffic(tn, tn.hostV4, port, 1, 100);
      await eventually(() => events.filter((e) => e.payloadLen > 0).length >= 2, 3000, 'second data segment');
    } finally {
      server.close();
      probe.close();
      await done;
    }
    const [first, second] = events.filter((e) => e.payloadLen > 0);
    expect(Buffer.from(first!.payload!).toString()).toBe('a'.repeat(16));
    expect(first!.frame).toBeUndefined();
    expect(events.filter((e) => e.payloadLen === 0 && e.payload === undefined && e.frame === undefined).length).toBeGreaterThan(0);
    expect(second!.frame).toHaveLength(60);
    expect(second!.frameLen).toBe(14 + 20 + 32 + 100);
    expect(new DataView(second!.frame!.buffer).getUint16(12)).toBe(0x0800);
  });

  it('counts SYNs per source, prefix and destination port', async () => {
    const port = freePort();
    using syns = synCounts({ interfaces: [tn.hostIf], filter: `dst port ${port}` });
    const s4 = await listen(port, tn.hostV4), s6 = await listen(port, tn.hostV6);
    try {
      await runTraffic(tn, tn.hostV4, port, 5);
      await runTraffic(tn, tn.hostV6, port, 3);
    } finally {
      s4.close(); s6.close();
    }
    const snap = syns.snapshot();
    expect(snap.total).toBe(8);
    expect(snap.sources.map((r) => [r.cidr, r.count])).toEqual([[`${tn.nsV4}/32`, 5], [`${tn.nsV6}/128`, 3]]);
    const v4Prefix = tn.nsV4.replace(/\.\d+$/, '.0');
    const v6Prefix = tn.nsV6.replace(/::\d+$/, '::');
    expect(snap.prefixes.map((r) => [r.cidr, r.count])).toEqual([[`${v4Prefix}/24`, 5], [`${v6Prefix}/64`, 3]]);
    expect(snap.ports).toEqual([{ port, count: 8, lastNs: expect.any(BigInt) }]);
    syns.reset();
    expect(syns.snapshot().sources).toEqual([]);
    syns.close();
    expect(attachedPrograms(tn.hostIf)).not.toMatch(/packets_/);
  });

  it('watches several interfaces at once (veth and loopback)', async () => {
    const port = freePort();
    const probe = packets({ interfaces: [tn.hostIf, 'lo'], filter: `dst port ${port} and syn` });
    const id = probe.object.program('packets_tc').info().id;
    const { events, done } = collect(probe);
    const s = await listen(port, '0.0.0.0');
    try {
      await runTraffic(tn, tn.hostV4, port, 1);
      const c = net.connect(port, '127.0.0.1');
      c.on('error', () => {});
      await once(c, 'connect');
      c.end();
      await eventually(() => events.length >= 2, 3000, 'SYNs on both');
    } finally {
      s.close();
      probe.close();
      await done;
    }
    expect(new Set(events.map((e) => e.ifname))).toEqual(new Set([tn.hostIf, 'lo']));
    expect(attachedPrograms('lo')).not.toMatch(new RegExp(`prog_id ${id}\\b`));
    expect(execFileSync('tc', ['qdisc', 'show', 'dev', tn.hostIf], { encoding: 'utf8' })).not.toMatch(/clsact/);
  });
});

describe.skipIf(!enabled)('packets on loopback', () => {
  it('sees IPv4 and IPv6 connections over lo at tc ingress', async () => {
    const port = freePort();
    const probe = packets({ interfaces: ['lo'], filter: `dst port ${port} and syn` });
    const { events, done } = collect(probe);
    const s = await listen(port, '::');
    try {
      for (const host of ['127.0.0.1', '::1']) {
        const c = net.connect(port, host);
        c.on('error', () => {});
        await once(c, 'connect');
        c.end();
      }
      await eventually(() => events.length >= 2, 3000, 'two SYNs');
    } finally {
      s.close();
      probe.close();
      await done;
    }
    expect(events.map((e) => e.daddr).sort()).toEqual(['127.0.0.1', '::1']);
    expect(events.every((e) => e.options.mss === 65495 || e.options.mss === 65476)).toBe(true);
  });
});
