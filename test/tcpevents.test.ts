// SPDX-License-Identifier: MIT
// retransmits(), rtt(), resets(), drops() on real traffic: loopback, and a veth pair into a
// namespace the test creates (bad checksums crafted there, segments dropped on the veth by
// a tc program of the test so the host retransmits).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BpfObject, parseIp } from '../lib/bpf';
import { connections, drops, resets, retransmits, rtt, tracepointAvailable } from '../lib/probes';
import { tracepointFields } from '../lib/probes/tcp_common';
import { log2Buckets } from '../lib/probes/rtt';
import { bpfAvailable, eventually, objectPath } from './helpers/bpf';
import { createTestNet, TestNet, TRAFFIC_SCRIPT } from './helpers/netns';
import { once } from 'node:events';
import net from 'node:net';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { kernelAtLeast } from '../lib/kernel/version';
import { collect, connectAndWrite, connectRefused, freePort, sleep, startServer } from './helpers/tcpprobe';

const enabled = bpfAvailable('tcpevents');
const hasResetReason = enabled && (tracepointFields('tcp', 'tcp_send_reset')?.has('reason') ?? false);
const hasDropReason = enabled && (tracepointFields('skb', 'kfree_skb')?.has('reason') ?? false);
// Before 6.10 (os.release()) tcp:tcp_send_reset needs a socket: a reset answering a segment
// no socket matches (a SYN to a closed port) does not fire it, so resets() cannot report it.
const resetSentWithoutSocket = kernelAtLeast(6, 10);
// Drop reasons (enum skb_drop_reason, the reason field of skb:kfree_skb) came in 5.17.
const kernelHasDropReasons = kernelAtLeast(5, 17);

/**
 * Sends one crafted segment from the namespace with hping3 or nping. hping3 exits 1 when
 * nothing answers, which is what a bad checksum gets; a tool that could not run (missing, or
 * another architecture's binary: `ip netns exec` reports "exec of ... failed") or that sent
 * nothing is an error, not an unanswered segment.
 */
function sendUnanswered(tn: TestNet, cmd: string, args: string[]): void {
  let out: string;
  try {
    out = tn.exec(cmd, args);
  } catch (e) {
    const { stdout, stderr } = e as { stdout?: unknown; stderr?: unknown };
    out = `${String(stdout ?? '')}${String(stderr ?? '')}`;
    const failed = /exec of .* failed.*/.exec(out);
    if (failed) throw new Error(`${cmd} could not run: ${failed[0]}`);
  }
  expect(out, `${cmd} sent one segment`).toMatch(/\b1 packets transmitted|Raw packets sent: 1\b/);
}

describe.skipIf(!enabled)('TCP event probes: options and kernel support', () => {
  it('validates options before attaching', () => {
    expect(() => resets({ directions: ['sideways' as never] })).toThrow(/bad direction 'sideways'/);
    expect(() => drops({ reasons: ['NOT_A_REASON'] })).toThrow(/unknown drop reason 'NOT_A_REASON'/);
    // Before 5.17 no drop has a reason: a reasons filter is refused, whatever it names.
    if (!kernelHasDropReasons) expect(() => drops({ reasons: ['NO_SOCKET'] })).toThrow(/has no drop reasons/);
    expect(() => rtt({ histogram: 'bogus' as never })).toThrow(/histogram must be/);
    expect(() => rtt({ events: false })).toThrow(/choose a histogram key/);
    expect(() => retransmits({ ports: ['http'] })).toThrow(/bad port 'http'/);
    expect(() => drops({ cidrs: ['not-an-ip'] })).toThrow(/bad address/);
  });

  it('every TCP probe takes wakeupBytes (and refuses a bad one before attaching)', async () => {
    const port = freePort();
    const server = await startServer('127.0.0.1', port, 'tcps-wakeup');
    try {
      await using c = connections({ ports: [port], wakeupBytes: 4096, events: ['close'] });
      await using r = resets({ ports: [port], wakeupBytes: 4096 });
      await using t = retransmits({ ports: [port], wakeupBytes: 4096 });
      await using d = drops({ ports: [port], wakeupBytes: 4096 });
      await using h = rtt({ ports: [port], wakeupBytes: 4096 });
      const conns = collect(c);
      const samples = collect(h);
      await connectAndWrite('127.0.0.1', port, 2000);
      const closed = await eventually(() => conns.events.find((e) => e.type === 'close'), 5000, 'close event');
      expect(closed.bytesReceived + closed.bytesAcked).toBeGreaterThan(0);
      await eventually(() => samples.events[0], 5000, 'rtt sample');
      expect([r, t, d].every((p) => !p.isClosed)).toBe(true);
    } finally {
      await server.stop();
    }
    expect(() => connections({ wakeupBytes: -1 })).toThrow(/connections\(\): wakeupBytes must be an integer/);
    expect(() => resets({ wakeupBytes: 1 << 16, ringBytes: 1 << 16 })).toThrow(/resets\(\): wakeupBytes .* must be smaller than ringBytes/);
  });

  it('detects tracepoints from tracefs', () => {
    expect(tracepointAvailable('sock', 'inet_sock_set_state')).toBe(true);
    expect(tracepointAvailable('tcp', 'tcp_no_such_event')).toBe(false);
  });

  it('buckets log2 histogram slots', () => {
    expect(log2Buckets([0, 0, 0, 0, 0, 2, 0, 1])).toEqual([
      { lowUs: 16, highUs: 31, count: 2 }, { lowUs: 32, highUs: 63, count: 0 }, { lowUs: 64, highUs: 127, count: 1 },
    ]);
  });
});

describe.skipIf(!enabled)('resets() and drops() on loopback', () => {
  it('drops({ countOnly }) counts per reason in the kernel, as many as the events tell, and sends no drop event', async () => {
    expect(() => drops({ countOnly: 'yes' as never })).toThrow(/^drops\(\): countOnly must be a boolean$/);
    expect(() => drops({ countOnly: true, cidrs: ['10.0.0.0/8'] })).toThrow(/countOnly counts in the kernel, which filters by port only: leave out the address filter/);
    const port = freePort();
    await using counted = drops({ ports: [port], countOnly: true });
    await using events = drops({ ports: [port] });
    const got = collect(counted);
    const ev = collect(events);
    for (let i = 0; i < 3; i++) await connectRefused('127.0.0.1', port);
    await eventually(() => ev.events.filter((e) => e.type === 'drop' && e.dport === port).length >= 3, 5000, 'three drop events');
    const byReason = (rows: Array<{ reason: string | undefined; count: number }>): Record<string, number> => Object.fromEntries(rows.map((r) => [r.reason ?? 'unknown', r.count]));
    const text = (m: Record<string, number>): string => JSON.stringify(Object.entries(m).sort());
    const fromEvents = (): Record<string, number> => {
      const out: Record<string, number> = {};
      for (const e of ev.events.filter((x) => x.type === 'drop')) out[e.reason ?? 'unknown'] = (out[e.reason ?? 'unknown'] ?? 0) + 1;
      return out;
    };
    // The counts are in the kernel when the tracepoint fires; the events follow through the ring.
    await eventually(() => text(byReason(counted.dropCounts())) === text(fromEvents()), 5000, 'kernel counts equal to the events');
    expect(byReason(counted.dropCounts())).toEqual(fromEvents());
    if (hasDropReason) expect(fromEvents()['NO_SOCKET']).toBeGreaterThanOrEqual(3);
    expect(got.events.filter((e) => e.type === 'drop')).toEqual([]);
    await counted.close();
    expect(counted.dropCounts()).toEqual([]);
    expect(events.dropCounts()).toEqual([]);
  });

  for (const host of ['127.0.0.1', '::1']) {
    it(`${host}: a SYN to a closed port gives a reset sent (NO_SOCKET; 6.10+), one received, and a NO_SOCKET drop`, async () => {
      const port = freePort();
      await using r = resets({ ports: [port] });
      await using d = drops({ ports: [port] });
      const rs = collect(r);
      const ds = collect(d);
      await connectRefused(host, port);
      const received = await eventually(() => rs.events.find((e) => e.type === 'received'), 5000, 'reset received');
      expect(received.dport).toBe(port);
      expect(received.state).toBe('SYN_SENT');
      expect(received.cookie).toBeGreaterThan(0n);
      if (resetSentWithoutSocket) {
        const sent = await eventually(() => rs.events.find((e) => e.type === 'sent'), 5000, 'reset sent');
        expect(sent.saddr).toBe(host);
        expect(sent.sport).toBe(port);
        expect(sent.state).toBe('NONE');
        if (hasResetReason) expect(sent.reason).toBe('NO_SOCKET');
        else expect(sent.reason).toBeUndefined();
        expect(received.sport).toBe(sent.dport);
      } else {
        // The documented fallback: no socket, no tcp:tcp_send_reset before 6.10. A 'sent' record
        // would be in the ring before the 'received' one already read: the RST is sent first.
        expect(rs.events.filter((e) => e.type === 'sent')).toEqual([]);
      }
      const drop = await eventually(() => ds.events.find((e) => e.type === 'drop' && e.dport === port), 5000, 'drop');
      expect(drop.portsKnown).toBe(true);
      expect(drop.flagBits).toBe(0x02);
      expect(drop.flags).toMatchObject({ syn: true, ack: false, rst: false });
      expect(drop.saddrBytes.subarray(0, host.includes(':') ? 16 : 4)).toEqual(parseIp(drop.saddr));
      expect(drop.family).toBe(host === '::1' ? 'ipv6' : 'ipv4');
      if (hasDropReason) expect(drop.reason).toBe('NO_SOCKET');
      else expect(drop.reason).toBeUndefined();
      expect(r.stats().lost).toBe(0);
      expect(r.unavailable).toEqual([]);
    });
  }

  for (const host of ['127.0.0.1', '::1']) {
    it(`${host}: a connection aborted with SO_LINGER 0 gives a reset sent on every kernel`, async () => {
      const port = freePort();
      const server = net.createServer((s) => s.on('error', () => {}));
      await new Promise<void>((resolve) => server.listen(port, host, resolve));
      try {
        await using r = resets({ ports: [port], directions: ['sent'] });
        const rs = collect(r);
        const socket = net.connect({ host, port });
        await once(socket, 'connect');
        const localPort = socket.localPort;
        socket.resetAndDestroy();
        const sent = await eventually(() => rs.events.find((e) => e.type === 'sent'), 5000, 'reset sent');
        expect(sent.saddr).toBe(host);
        expect(sent.sport).toBe(localPort);
        expect(sent.dport).toBe(port);
        if (hasResetReason) expect(sent.reason).toBeDefined();
        else expect(sent.reason).toBeUndefined();
        expect(r.unavailable).toEqual([]);
      } finally {
        await new Promise((resolve) => server.close(resolve));
      }
    });
  }

  it('only the directions and reasons asked for', async () => {
    const port = freePort();
    await using r = resets({ ports: [port], directions: ['received'] });
    if (!kernelHasDropReasons) expect(() => drops({ ports: [port], reasons: ['TCP_CSUM'] })).toThrow(/has no drop reasons/);
    await using d = kernelHasDropReasons ? drops({ ports: [port], reasons: ['TCP_CSUM'], badChecksums: false }) : undefined;
    const rs = collect(r);
    const ds = d ? collect(d) : { events: [] };
    await connectRefused('127.0.0.1', port);
    // A 'sent' record would come before the 'received' one in the same ring (the RST is sent first).
    await eventually(() => rs.events.length > 0, 5000, 'reset received');
    expect(rs.events.every((e) => e.type === 'received')).toBe(true);
    // No record of this probe orders the SYN's NO_SOCKET drop (it writes none): a quiet
    // window is all that shows the reason filter kept it out.
    await sleep(100);
    expect(ds.events).toEqual([]);
  });
});

describe.skipIf(!enabled)('rtt() on loopback', () => {
  for (const host of ['127.0.0.1', '::1']) {
    it(`${host}: samples > 0 and a histogram per local port`, async () => {
      const port = freePort();
      const server = await startServer(host, port, 'tcps-rtt');
      try {
        await using probe = rtt({ ports: [port], histogram: 'local-port' });
        const { events } = collect(probe);
        for (let i = 0; i < 3; i++) await connectAndWrite(host, port, 64 * 1024);
        await eventually(() => events.length >= 3, 5000, 'RTT samples');
        for (const e of events) {
          expect(e.srttUs).toBeGreaterThan(0);
          expect(e.sport === port || e.dport === port).toBe(true);
        }
        const rows = probe.histogram();
        const serverRow = rows.find((row) => row.port === port);
        expect(serverRow).toBeDefined();
        expect(serverRow!.count).toBeGreaterThan(0);
        expect(serverRow!.avgUs).toBeGreaterThan(0);
        expect(serverRow!.buckets.reduce((n, b) => n + b.count, 0)).toBe(serverRow!.count);
        probe.resetHistogram();
        expect(probe.histogram()).toEqual([]);
      } finally {
        await server.stop();
      }
    });
  }

  it('histogram by remote address without per-sample events', async () => {
    const port = freePort();
    const server = await startServer('127.0.0.1', port, 'tcps-rtt2');
    try {
      await using probe = rtt({ ports: [port], histogram: 'remote-addr', events: false });
      const { events } = collect(probe);
      await connectAndWrite('127.0.0.1', port, 32 * 1024);
      const rows = await eventually(() => { const h = probe.histogram(); return h.length ? h : undefined; }, 5000, 'histogram rows');
      expect(rows[0]!.addr).toBe('127.0.0.1');
      expect(events).toEqual([]);
    } finally {
      await server.stop();
    }
  });
});

describe.skipIf(!enabled)('over a veth pair into a namespace', () => {
  let tn: TestNet;
  beforeAll(() => { tn = createTestNet(); });
  afterAll(() => tn?.destroy());

  for (const family of ['ipv4', 'ipv6'] as const) {
    it(`${family}: segments dropped on the veth are retransmitted, with seq and state`, async () => {
      // The client in the namespace sends; the host's ingress drops its first data segments
      // silently (a drop at the sender's own egress would be reported to TCP as local
      // congestion and resent as new data, not retransmitted).
      const port = freePort();
      const hostAddr = family === 'ipv4' ? tn.hostV4 : tn.hostV6;
      const nsAddr = family === 'ipv4' ? tn.nsV4 : tn.nsV6;
      const server = await startServer(hostAddr, port, 'tcps-retr');
      using lossy = BpfObject.open(objectPath('tcpevents_lossy'), { globals: { target_port: port } });
      try {
        lossy.load();
        lossy.map<number, number>('lossy_counts').set(0, 2);
        lossy.program('lossy_egress').attachTc(tn.hostIf, { direction: 'ingress' });
        await using probe = retransmits({ ports: [port] });
        const { events } = collect(probe);
        const child = tn.spawnNode(TRAFFIC_SCRIPT, [hostAddr, String(port), '1', '8192']);
        const [code] = (await once(child, 'exit')) as [number];
        expect(code).toBe(0);
        const retrans = await eventually(() => { const r = events.filter((e) => e.type === 'retransmit'); return r.length >= 1 ? r : undefined; }, 8000, 'retransmissions');
        expect(lossy.map<number, number>('lossy_counts').get(1)).toBe(2);
        for (const e of retrans) {
          expect(e.family).toBe(family);
          expect(e.saddr).toBe(nsAddr);
          expect(e.daddr).toBe(hostAddr);
          expect(e.dport).toBe(port);
          expect(['ESTABLISHED', 'FIN_WAIT1', 'CLOSE_WAIT', 'LAST_ACK', 'CLOSING']).toContain(e.state);
          expect(e.seq).toBeGreaterThan(0);
          expect(e.cookie).toBeGreaterThan(0n);
        }
      } finally {
        await server.stop();
      }
    });

    it(`${family}: retransmitted segments (GSO skbs count each segment) add up to TcpRetransSegs and tcp_info total_retrans`, async () => {
      // The namespace sends 2 MB to a host server; the host's ingress drops the first data
      // skbs (over a veth they stay GSO skbs of many segments), so the sender retransmits
      // skbs carrying several segments. The sender reports its connection's total_retrans
      // (ss reads TCP_INFO) before closing; its namespace's TcpRetransSegs counts only it.
      const port = freePort();
      const hostAddr = family === 'ipv4' ? tn.hostV4 : tn.hostV6;
      const nsAddr = family === 'ipv4' ? tn.nsV4 : tn.nsV6;
      const TOTAL = 2_000_000;
      const server = net.createServer((s) => {
        let got = 0;
        s.on('data', (d: Buffer) => { got += d.length; if (got >= TOTAL) s.end('k'); });
        s.on('error', () => {});
      });
      await new Promise<void>((resolve) => server.listen(port, hostAddr, resolve));
      const script = path.join(os.tmpdir(), `tcpscope-rtx-${process.pid}.js`);
      fs.writeFileSync(script, `
        const net = require('node:net'); const { execFileSync } = require('node:child_process');
        const [host, port, total] = process.argv.slice(2);
        const s = net.connect({ host, port: Number(port) }, () => s.write(Buffer.alloc(Number(total), 7)));
        s.on('data', () => {
          const info = execFileSync('ss', ['-tinH', 'dport', '=', ':' + port], { encoding: 'utf8' });
          const m = / retrans:\\d+\\/(\\d+)/.exec(info);
          process.stdout.write('total_retrans ' + (m ? m[1] : '0') + '\\n');
          s.destroy();
        });`);
      const snmpRetransSegs = (): number => {
        const lines = tn.exec('cat', ['/proc/net/snmp']).split('\n').filter((l) => l.startsWith('Tcp:'));
        const names = lines[0]!.split(/\s+/), values = lines[1]!.split(/\s+/);
        return Number(values[names.indexOf('RetransSegs')]);
      };
      using lossy = BpfObject.open(objectPath('tcpevents_lossy'), { globals: { target_port: port } });
      try {
        lossy.load();
        lossy.map<number, number>('lossy_counts').set(0, 6);
        lossy.program('lossy_egress').attachTc(tn.hostIf, { direction: 'ingress' });
        await using probe = retransmits({ ports: [port] });
        const { events } = collect(probe);
        const before = snmpRetransSegs();
        const child = tn.spawnNode(script, [hostAddr, String(port), String(TOTAL)]);
        let out = '';
        child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
        const [code] = (await once(child, 'exit')) as [number];
        expect(code).toBe(0);
        const totalRetrans = Number(/total_retrans (\d+)/.exec(out)?.[1]);
        const kernelSegs = snmpRetransSegs() - before;
        expect(totalRetrans).toBeGreaterThan(0);
        expect(kernelSegs).toBe(totalRetrans);
        const mine = (): typeof events => events.filter((e) => e.saddr === nsAddr && e.dport === port);
        const sum = (): number => mine().reduce((n, e) => n + e.segs, 0);
        await eventually(() => sum() >= kernelSegs, 5000, 'every retransmit event');
        expect(sum()).toBe(kernelSegs);
        // The case this guards: skbs of several segments, which an event count misses.
        expect(mine().some((e) => e.segs > 1)).toBe(true);
        // Attempts the kernel abandoned (the skb still in the host queue: EBUSY, common under
        // load) are events with segs 0 and no segment sent: count the ones that sent.
        expect(mine().filter((e) => e.segs > 0).length).toBeLessThan(kernelSegs);
      } finally {
        await new Promise((resolve) => server.close(resolve));
        fs.rmSync(script, { force: true });
      }
    });

    it(`${family}: a segment with a bad checksum from the namespace: bad_csum and a TCP_CSUM drop`, async () => {
      const port = freePort();
      const hostAddr = family === 'ipv4' ? tn.hostV4 : tn.hostV6;
      await using probe = drops({ ports: [port] });
      const { events } = collect(probe);
      if (family === 'ipv4') sendUnanswered(tn, 'hping3', ['-c', '1', '-S', '-p', String(port), '--badcksum', hostAddr]);
      else sendUnanswered(tn, 'nping', ['--tcp', '-6', '-p', String(port), '--flags', 'syn', '--badsum', '-c', '1', hostAddr]);
      const drop = await eventually(() => events.find((e) => e.type === 'drop'), 5000, 'TCP_CSUM drop');
      expect(drop.saddr).toBe(family === 'ipv4' ? tn.nsV4 : tn.nsV6);
      expect(drop.daddr).toBe(hostAddr);
      expect(drop.dport).toBe(port);
      if (hasDropReason) expect(drop.reason).toBe('TCP_CSUM');
      if (tracepointAvailable('tcp', 'tcp_bad_csum')) {
        const bad = await eventually(() => events.find((e) => e.type === 'bad_csum'), 5000, 'bad_csum');
        expect(bad.dport).toBe(port);
        expect(bad.saddr).toBe(drop.saddr);
      } else {
        expect(probe.unavailable.map((u) => u.tracepoint)).toContain('tcp/tcp_bad_csum');
      }
    });
  }
});
