// SPDX-License-Identifier: MIT
// PacketPcapngEncoder on real loopback traffic: packets written straight from the ring
// (run()) and from rawBatches() (writeBatch()) give the same blocks, tcpdump reads them,
// an abort still writes what was waiting, and the wake-up threshold is validated.
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { packets } from '../lib/probes';
import { PacketPcapngEncoder } from '../lib/capture/pcapng';
import { wakeupBytesFor } from '../lib/probes/stream';
import { PcapngWriter, readPcapng } from '../lib/pcapng';
import { bpfAvailable, eventually } from './helpers/bpf';
import { connectionsSettled, loopbackExchange as exchange } from './helpers/listen';
import { newThreadAsleep, threadIds } from './helpers/threads';
import { freePort } from './helpers/tcpprobe';

const enabled = bpfAvailable('packets pcapng');


describe('wake-up threshold option', () => {
  it('is validated against the ring size', () => {
    expect(wakeupBytesFor({})).toBe(64 * 1024);
    expect(wakeupBytesFor({ wakeupBytes: 1 << 20, ringBytes: 1 << 22 })).toBe(1 << 20);
    expect(() => wakeupBytesFor({ wakeupBytes: 1 << 22, ringBytes: 1 << 22 })).toThrow(/must be smaller than ringBytes/);
    expect(() => wakeupBytesFor({ wakeupBytes: -1 })).toThrow(/wakeupBytes must be an integer/);
  });
});

describe.skipIf(!enabled)('PacketPcapngEncoder', () => {
  it('writes the same packets from the ring and from raw batches; an abort writes what waited', async () => {
    const port = freePort();
    const filter = `port ${port}`;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tcpscope-enc-'));
    const stopDirect = new AbortController();
    const direct = packets({ interfaces: ['lo'], filter, snaplen: 80, signal: stopDirect.signal, latencyMs: 5000, wakeupBytes: 1 << 22, ringBytes: 1 << 23 });
    const viaBatches = packets({ interfaces: ['lo'], filter, snaplen: 80 });
    try {
      const directFile = path.join(dir, 'direct.pcapng');
      const writerA = PcapngWriter.create(directFile, { interfaces: [{ name: 'lo', snaplen: 80 }] });
      const writerB = new PcapngWriter(-1, { interfaces: [{ name: 'lo', snaplen: 80 }] });
      const encoderB = new PacketPcapngEncoder(viaBatches, writerB);
      // 5 s latency and a 4 MiB threshold: nothing is read before the abort, which must
      // still write every packet waiting in the ring.
      const runA = (async () => { let n = 0; for await (const k of new PacketPcapngEncoder(direct, writerA).run()) n += k; return n; })();
      const runB = (async () => { for await (const batch of viaBatches.rawBatches()) encoderB.writeBatch(batch); })();
      await exchange(port, 5, 300);
      // Every segment, the last ACKs too, is past tc ingress, in both rings; the raw batches are read.
      await connectionsSettled(port);
      await eventually(() => viaBatches.stats().received >= 5 * 8 && viaBatches.stats().received === viaBatches.counters().emitted, 5000, 'raw batches read');
      stopDirect.abort();
      const writtenA = await runA;
      writerA.close();
      viaBatches.close();
      await runB;

      const a = readPcapng(fs.readFileSync(directFile));
      const b = readPcapng(writerB.toBytes());
      expect(writtenA).toBe(direct.stats().received);
      expect(a.packets.length).toBe(writtenA);
      expect(a.packets.length).toBe(b.packets.length);
      expect(a.packets.length).toBeGreaterThanOrEqual(5 * 8); // SYN, SYN-ACK, ACK, data, FINs, ACKs per connection
      for (let i = 0; i < a.packets.length; i++) {
        expect(a.packets[i]!.capLen).toBe(Math.min(80, a.packets[i]!.origLen));
        expect(Array.from(a.packets[i]!.data)).toEqual(Array.from(b.packets[i]!.data));
      }
      // the 300-byte data segments were on the wire whole and cut at the snaplen
      expect(a.packets.filter((p) => p.origLen === 14 + 20 + 32 + 300)).toHaveLength(5);
      const text = execFileSync('tcpdump', ['-r', directFile, '-nn'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      expect(text.trim().split('\n').filter((l) => l.includes(`.${port}: Flags [S]`))).toHaveLength(5);
    } finally {
      direct.close();
      viaBatches.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('capture(): a native thread writes the file; timer wake-ups, -c, abort and write errors', async () => {
    const port = freePort();
    const filter = `port ${port}`;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tcpscope-cap-'));
    const stop = new AbortController();
    // A 300 ms timer and a threshold far above this traffic: the thread must write on its timer.
    const timed = packets({ interfaces: ['lo'], filter, snaplen: 80, signal: stop.signal, latencyMs: 300, wakeupBytes: 1 << 22, ringBytes: 1 << 23 });
    const limited = packets({ interfaces: ['lo'], filter, snaplen: 80, latencyMs: 300 });
    const reference = packets({ interfaces: ['lo'], filter, snaplen: 80 });
    const full = packets({ interfaces: ['lo'], filter, snaplen: 80, latencyMs: 50 });
    try {
      const timedFile = path.join(dir, 'timed.pcapng');
      const timedWriter = PcapngWriter.create(timedFile, { interfaces: [{ name: 'lo', snaplen: 80 }] });
      const limitedWriter = PcapngWriter.create(path.join(dir, 'limited.pcapng'), { interfaces: [{ name: 'lo', snaplen: 80 }] });
      // A pipe whose reader goes away after the header: the thread's first write fails.
      const fifo = path.join(dir, 'fifo');
      execFileSync('mkfifo', [fifo]);
      const fifoReader = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
      const fullWriter = new PcapngWriter(fs.openSync(fifo, 'w'), { interfaces: [{ name: 'lo', snaplen: 80 }] }, true);
      const headerBytes = fs.statSync(timedFile).size; // lendFd() wrote the buffered header
      const timedRun = new PacketPcapngEncoder(timed, timedWriter).capture();
      const limitedRun = new PacketPcapngEncoder(limited, limitedWriter).capture(7);
      const fullRun = new PacketPcapngEncoder(full, fullWriter).capture().then(() => undefined, (e: unknown) => e);
      fs.closeSync(fifoReader);
      const referenceEvents: number[] = [];
      const referenceRun = (async () => { for await (const e of reference) referenceEvents.push(e.frameLen); })();

      await exchange(port, 5, 300);
      expect(await limitedRun).toBe(7); // ends by itself
      expect(limited.isClosed).toBe(true);
      await eventually(() => referenceEvents.length >= 5 * 8, 5000, 'reference events');
      // written by the thread's timer while JavaScript only waited
      await eventually(() => fs.statSync(timedFile).size > headerBytes, 3000, 'timer-driven write');

      const fullError = await fullRun;
      expect(fullError).toBeInstanceOf(Error);
      expect(String(fullError)).toMatch(/write the capture file.*EPIPE \(the reader of the pipe went away\)/);
      expect(fullWriter.packets).toBe(0);
      expect(full.isClosed).toBe(true);

      await exchange(port, 2, 10); // waits in the ring (300 ms timer) when the abort comes
      stop.abort();
      const written = await timedRun;
      timedWriter.close();
      limitedWriter.close();
      await eventually(() => referenceEvents.length >= written, 3000, 'reference caught up');
      reference.close();
      await referenceRun;

      expect(written).toBe(referenceEvents.length);
      expect(timed.stats()).toMatchObject({ received: written, lost: 0 });
      expect(timedWriter.packets).toBe(written);
      const back = readPcapng(fs.readFileSync(timedFile));
      expect(back.packets.map((p) => p.origLen)).toEqual(referenceEvents);
      expect(readPcapng(fs.readFileSync(path.join(dir, 'limited.pcapng'))).packets).toHaveLength(7);
      const text = execFileSync('tcpdump', ['-r', timedFile, '-nn'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      expect(text.trim().split('\n').filter((l) => l.includes(`.${port}: Flags [S]`))).toHaveLength(7);
    } finally {
      for (const probe of [timed, limited, reference, full]) probe.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('capture(): close() stops the thread at once', async () => {
    const probe = packets({ interfaces: ['lo'], filter: 'port 9', latencyMs: 10000 });
    const writer = new PcapngWriter(fs.openSync('/dev/null', 'w'), { interfaces: [{ name: 'lo' }] }, true);
    const before = threadIds();
    const run = new PacketPcapngEncoder(probe, writer).capture();
    await newThreadAsleep(before); // the capture thread, in its 10 s wait
    const started = Date.now();
    probe.close();
    expect(await run).toBe(0);
    expect(Date.now() - started).toBeLessThan(2000);
    writer.close();
  });
});
