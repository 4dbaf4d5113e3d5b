// SPDX-License-Identifier: MIT
// Unit tests of the pcapng writer, read back by our reader and by tcpdump itself.
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PcapngWriter, readPcapng, pcapngHeader, LINKTYPE_ETHERNET } from '../lib/pcapng';
import { tcpFrame } from '../lib/bpf/packet';
import { captureAddon } from '../lib/capture/native';

const hasTcpdump = (() => { try { execFileSync('tcpdump', ['--version'], { stdio: 'ignore' }); return true; } catch { return false; } })();

describe('pcapng writer', () => {
  it('writes a section header, one IDB per interface and enhanced packet blocks', () => {
    const w = new PcapngWriter(-1, { interfaces: [{ name: 'lo', snaplen: 96 }, { name: 'veth0', linkType: LINKTYPE_ETHERNET }] });
    const frame = tcpFrame({ src: '10.0.0.1', dst: '10.0.0.2', sport: 1, dport: 2, payload: new Uint8Array(200) });
    w.write(0, 1_700_000_000_123_456_789n, frame);
    w.write(1, 5, frame.subarray(0, 61), frame.length);
    const bytes = w.toBytes();
    const view = new DataView(bytes.buffer);
    expect(view.getUint32(0, true)).toBe(0x0a0d0d0a);
    expect(view.getUint32(8, true)).toBe(0x1a2b3c4d);
    expect(bytes.length % 4).toBe(0);
    const r = readPcapng(bytes);
    expect(r.interfaces).toEqual([
      { linkType: 1, snaplen: 96, name: 'lo', tsresol: 9 },
      { linkType: 1, snaplen: 0, name: 'veth0', tsresol: 9 },
    ]);
    expect(r.packets).toHaveLength(2);
    expect(r.packets[0]).toMatchObject({ iface: 0, capLen: 96, origLen: frame.length });
    expect((BigInt(r.packets[0]!.tsHigh) << 32n) | BigInt(r.packets[0]!.tsLow)).toBe(1_700_000_000_123_456_789n);
    expect(Array.from(r.packets[0]!.data)).toEqual(Array.from(frame.subarray(0, 96)));
    expect(r.packets[1]).toMatchObject({ iface: 1, capLen: 61, origLen: frame.length, tsHigh: 0, tsLow: 5 });
    expect(w.packets).toBe(2);
  });

  it('flushes in chunks and grows for packets larger than its buffer', () => {
    const w = new PcapngWriter(-1, { interfaces: [{ name: 'x' }], bufferBytes: 4096 });
    const big = new Uint8Array(10000).fill(7);
    for (let i = 0; i < 50; i++) w.write(0, i, big.subarray(0, 100 + i));
    w.write(0, 99, big);
    const r = readPcapng(w.toBytes());
    expect(r.packets).toHaveLength(51);
    expect(r.packets[50]!.capLen).toBe(10000);
    expect(r.packets[7]!.capLen).toBe(107);
  });

  it('uses microsecond resolution when asked', () => {
    const header = readPcapng(pcapngHeader({ interfaces: [{ name: 'a' }], resolution: 'us' }));
    expect(header.interfaces[0]!.tsresol).toBe(6);
  });

  it.runIf(hasTcpdump)('is read back by tcpdump -r (ns timestamps, IPv4 and IPv6, truncated capture)', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tcpscope-pcapng-'));
    try {
      const file = path.join(dir, 'x.pcapng');
      const w = PcapngWriter.create(file, { interfaces: [{ name: 'lo', snaplen: 80 }, { name: 'eth9', snaplen: 80 }] }); // libpcap wants one snaplen per file
      const t0 = 1_700_000_000_000_000_000n;
      w.write(0, t0 + 123_456_789n, tcpFrame({ src: '10.1.1.1', dst: '10.1.1.2', sport: 5000, dport: 8080, seq: 123, flags: { syn: true }, options: { mss: 1460, sackPermitted: true, timestamps: [1, 0], wscale: 7 } }));
      const v6 = tcpFrame({ src: 'fd00::1', dst: 'fd00::2', sport: 6000, dport: 443, seq: 7, ack: 9, flags: { ack: true, psh: true }, payload: new Uint8Array(300) });
      w.write(1, t0 + 2_000_000_000n, v6, v6.length); // truncated to the snaplen by the writer
      w.close();
      const out = execFileSync('tcpdump', ['-r', file, '-nn', '-tt', '--nano'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      const lines = out.trim().split('\n');
      expect(lines).toHaveLength(2);
      expect(lines[0]).toMatch(/^1700000000\.123456789 IP 10\.1\.1\.1\.5000 > 10\.1\.1\.2\.8080: Flags \[S\], seq 123, win 65535, options \[mss 1460,sackOK,TS val 1 ecr 0,wscale 7(,nop)?\], length 0/);
      expect(lines[1]).toMatch(/^1700000002\.000000000 IP6 fd00::1\.6000 > fd00::2\.443: Flags \[P\.\], seq 7:307, ack 9, win 65535, length 300/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('native pcapng encoder (packet events of a ring batch)', () => {
  // A packet_event-like record: ts_ns u64 @0, ifindex u32 @8, frame_len u32 @12,
  // cap_kind u8 @16, cap_len u32 @20; 24 bytes, captured bytes after it.
  const layout = Uint32Array.of(24, 0, 8, 12, 16, 20, 0);
  function batchOf(records: Array<{ ts: bigint; ifindex: number; frame: Uint8Array; frameLen: number; capKind?: number; flags?: number }>): Uint8Array {
    const size = records.reduce((n, r) => n + ((8 + 24 + r.frame.length + 7) & ~7), 0);
    const out = new Uint8Array(size);
    const view = new DataView(out.buffer);
    let at = 0;
    for (const r of records) {
      const length = 24 + r.frame.length;
      view.setUint32(at, length | (r.flags ?? 0), true);
      view.setBigUint64(at + 8, r.ts, true);
      view.setUint32(at + 16, r.ifindex, true);
      view.setUint32(at + 20, r.frameLen, true);
      out[at + 24] = r.capKind ?? 1;
      view.setUint32(at + 28, r.frame.length, true);
      out.set(r.frame, at + 32);
      at += (8 + length + 7) & ~7;
    }
    return out;
  }

  it('writes the same blocks as PcapngWriter.write, honours snaplen, skips discarded records, stops at maxPackets', () => {
    const v4 = tcpFrame({ src: '10.1.1.1', dst: '10.1.1.2', sport: 5000, dport: 80, flags: { syn: true }, options: { mss: 1460 } });
    const v6 = tcpFrame({ src: 'fd00::1', dst: 'fd00::2', sport: 6000, dport: 443, flags: { ack: true }, payload: new Uint8Array(120).fill(9) });
    const offset = 1_700_000_000_000_000_000n;
    const batch = batchOf([
      { ts: 5n, ifindex: 7, frame: v4, frameLen: v4.length },
      { ts: 6n, ifindex: 3, frame: v4, frameLen: v4.length, flags: 1 << 30 }, // discarded
      { ts: 4_294_967_301n, ifindex: 3, frame: v6, frameLen: v6.length + 1000 },
      { ts: 8n, ifindex: 99, frame: v4.subarray(0, 10), frameLen: v4.length, capKind: 2 }, // no frame bytes; unknown ifindex
    ]);
    const interfaces = [{ name: 'a', snaplen: 0 }, { name: 'b', snaplen: 100 }];
    const expected = new PcapngWriter(-1, { interfaces });
    expected.write(0, 5n + offset, v4, v4.length);
    expected.write(1, 4_294_967_301n + offset, v6, v6.length + 1000);
    expected.write(0, 8n + offset, new Uint8Array(0), v4.length);

    const out = new Uint8Array(1 << 16);
    const positions = new Float64Array(2);
    const args = [layout, offset, Uint32Array.of(7, 3), Uint32Array.of(0, 100), positions] as const;
    const n = captureAddon().encodePcapng(batch, 0, out, 0, Infinity, ...args);
    expect(n).toBe(3);
    expect(positions[0]).toBe(batch.length);
    const header = pcapngHeader({ interfaces }).length;
    expect(Array.from(out.subarray(0, positions[1]))).toEqual(Array.from(expected.toBytes().subarray(header)));
    const r = readPcapng(expected.toBytes());
    expect(r.packets[1]).toMatchObject({ iface: 1, capLen: 100, origLen: v6.length + 1000 });

    // maxPackets, and an output buffer too small for the next block, stop at a record boundary
    expect(captureAddon().encodePcapng(batch, 0, out, 0, 1, ...args)).toBe(1);
    const firstBlock = 32 + ((v4.length + 3) & ~3);
    expect(positions[1]).toBe(firstBlock);
    expect(captureAddon().encodePcapng(batch, positions[0]!, out, 0, Infinity, ...args)).toBe(2);
    expect(captureAddon().encodePcapng(batch, 0, out.subarray(0, firstBlock + 10), 0, Infinity, ...args)).toBe(1);

    // microseconds
    const us = new Float64Array(2);
    captureAddon().encodePcapng(batch, 0, out, 0, 1, Uint32Array.of(24, 0, 8, 12, 16, 20, 1), offset, Uint32Array.of(7, 3), Uint32Array.of(0, 0), us);
    const view = new DataView(out.buffer);
    expect((BigInt(view.getUint32(12, true)) << 32n) | BigInt(view.getUint32(16, true))).toBe((5n + offset) / 1000n);
  });

  it('the ring consumers refuse anything but a ring buffer reader, with a TypeError', () => {
    const addon = captureAddon();
    const args = [new Uint8Array(64), 0, 1, layout, 0n, Uint32Array.of(1), Uint32Array.of(0), new Float64Array(2)] as const;
    for (const notRing of [{}, null, 7, new Uint8Array(8), { consume: () => 0 }]) {
      expect(() => addon.ringConsumePcapng(notRing as never, ...args)).toThrow(/encode from the ring buffer: not a ring buffer reader/);
      expect(() => addon.ringCapturePcapng(notRing as never, 1, 1, layout, 0n, Uint32Array.of(1), Uint32Array.of(0), 10, 1 << 16, () => undefined))
        .toThrow(/start a capture: not a ring buffer reader/);
    }
  });
});
