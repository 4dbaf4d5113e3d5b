// SPDX-License-Identifier: MIT
// Who owns a ring and the capture thread's output: one consumer per ring (a second gets a
// clear error and the first goes on), the capture thread writes through its own dup of the
// file, close() returns in bounded time even while the thread waits on a FIFO nobody reads,
// and failed starts leak no fd. Real loopback traffic through the packets probe.
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { packets } from '../lib/probes';
import { PacketPcapngEncoder } from '../lib/capture/pcapng';
import { captureAddon } from '../lib/capture/native';
import { PcapngWriter, readPcapng } from '../lib/pcapng';
import { threadInPoll } from './helpers/threads';
import { bpfAvailable, eventually } from './helpers/bpf';
import { loopbackExchange as exchange } from './helpers/listen';
import { freePort } from './helpers/tcpprobe';

const enabled = bpfAvailable('ring ownership');


const openFds = (): string[] => fs.readdirSync('/proc/self/fd').sort((a, b) => Number(a) - Number(b));
const randomPort = (): number => freePort();

describe.skipIf(!enabled)('ring ownership', () => {
  it('one consumer per ring: a second reader or iterator is refused, the capture goes on', async () => {
    const port = randomPort();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tcpscope-own-'));
    const stop = new AbortController();
    const probe = packets({ interfaces: ['lo'], filter: `port ${port}`, snaplen: 80, latencyMs: 20, signal: stop.signal });
    try {
      // a second native reader of the same ring map, in the same process
      expect(() => probe.object.ringBuffer('packets')).toThrow(/already has a reader in this process: one consumer per ring/);
      const file = path.join(dir, 'a.pcapng');
      const writer = PcapngWriter.create(file, { interfaces: [{ name: 'lo', snaplen: 80 }] });
      const run = new PacketPcapngEncoder(probe, writer).capture();
      // iterating the probe while capture() runs
      await expect(probe.batches().next()).rejects.toThrow(/already read by a native reader thread; one consumer per ring/);
      await expect(probe.rawBatches().next()).rejects.toMatchObject({ code: 'EBUSY' });
      await expect(new PacketPcapngEncoder(probe, writer).capture()).rejects.toThrow(/one consumer per ring/);
      expect(probe.isClosed).toBe(false);
      await exchange(port, 3, 100);
      await eventually(() => probe.counters().emitted >= 3 * 8, 3000, 'packets in the ring');
      stop.abort();
      const written = await run;
      writer.close();
      expect(written).toBe(probe.counters().emitted);
      expect(readPcapng(fs.readFileSync(file)).packets).toHaveLength(written);
    } finally {
      probe.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the capture thread writes through its own dup: closing the writer (and reusing its fd number) changes nothing', async () => {
    const port = randomPort();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tcpscope-own-'));
    const stop = new AbortController();
    const probe = packets({ interfaces: ['lo'], filter: `port ${port}`, snaplen: 80, latencyMs: 20, signal: stop.signal });
    let other: number | undefined;
    try {
      const file = path.join(dir, 'a.pcapng');
      const writer = PcapngWriter.create(file, { interfaces: [{ name: 'lo', snaplen: 80 }] });
      const run = new PacketPcapngEncoder(probe, writer).capture();
      const lent = writer.lendFd()!;
      writer.close();
      // the lowest free number: the one the writer just closed
      other = fs.openSync(path.join(dir, 'other'), 'w');
      expect(other).toBe(lent);
      await exchange(port, 3, 100);
      await eventually(() => probe.counters().emitted >= 3 * 8, 3000, 'packets in the ring');
      stop.abort();
      const written = await run;
      expect(written).toBeGreaterThanOrEqual(3 * 8);
      expect(readPcapng(fs.readFileSync(file)).packets).toHaveLength(written);
      expect(fs.statSync(path.join(dir, 'other')).size).toBe(0);
    } finally {
      if (other !== undefined) fs.closeSync(other);
      probe.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('close() returns in bounded time while the capture thread waits on a FIFO nobody reads', async () => {
    const port = randomPort();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tcpscope-own-'));
    const probe = packets({ interfaces: ['lo'], filter: `port ${port}`, snaplen: 1500, latencyMs: 10 });
    const fifo = path.join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    // A reader that never reads, and the FIFO filled to the brim once the capture has
    // started (after its header): the thread's first write has nowhere to go.
    const idleReader = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    const filler = fs.openSync(fifo, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
    const writerFd = fs.openSync(fifo, 'w'); // blocking, as a user's FIFO would be
    try {
      const writer = new PcapngWriter(writerFd, { interfaces: [{ name: 'lo', snaplen: 1500 }] }, true);
      const run = new PacketPcapngEncoder(probe, writer).capture().then((n) => n, (e: unknown) => e);
      const junk = Buffer.alloc(4096);
      for (;;) {
        try { fs.writeSync(filler, junk); } catch (e) { if ((e as NodeJS.ErrnoException).code === 'EAGAIN') break; throw e; }
      }
      await exchange(port, 5, 3000);
      await eventually(() => probe.counters().emitted >= 5 * 8, 3000, 'packets in the ring');
      // The thread holds blocks it cannot write once it waits in poll() for room in the pipe.
      await eventually(threadInPoll, 5000, 'the capture thread blocked on the full pipe');
      const started = performance.now();
      probe.close();
      const closeMs = performance.now() - started;
      expect(closeMs).toBeLessThan(1500);
      const outcome = await run;
      expect(outcome).toBeInstanceOf(Error);
      expect(String(outcome)).toMatch(/closed while the reader of the pipe was not reading/);
    } finally {
      probe.close();
      for (const fd of [idleReader, filler, writerFd]) { try { fs.closeSync(fd); } catch { /* closed by the writer */ } }
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('failed starts and refused consumers leak no fd', async () => {
    const port = randomPort();
    // warm up what opens fds once per process (the addon, BTF, libuv's pools)
    packets({ interfaces: ['lo'], filter: `port ${port}` }).close();
    const before = openFds();
    const closedFd = 999999; // never open: above any fd this process holds
    for (let i = 0; i < 3; i++) {
      const probe = packets({ interfaces: ['lo'], filter: `port ${port}` });
      expect(() => probe.object.ringBuffer('packets')).toThrow(/one consumer per ring/);
      // the addon's own refusals: a closed fd (dup fails), bad arguments
      await expect(probe.consumeOnThread((ring, wakeupMs, done) => {
        const layout = new Uint32Array(7).fill(0);
        layout[0] = probe.layout.size;
        captureAddon().ringCapturePcapng(ring, closedFd, 1, layout, 0n, Uint32Array.of(1), Uint32Array.of(0), wakeupMs, 1 << 16, done);
      })).rejects.toThrow(/duplicate the output fd: Bad file descriptor/);
      expect(probe.isClosed).toBe(true);
      const again = packets({ interfaces: ['lo'], filter: `port ${port}` });
      await expect(again.consumeOnThread((ring, _wakeupMs, done) => {
        const layout = new Uint32Array(7);
        layout[0] = again.layout.size;
        captureAddon().ringCapturePcapng(ring, 1, 1, layout, 0n, Uint32Array.of(1), Uint32Array.of(0), 0, 1 << 16, done);
      })).rejects.toThrow(/capturePcapng: needs an open fd, latencyMs > 0/);
      again.close();
      // a writer whose file cannot be opened
      expect(() => PcapngWriter.create('/nonexistent-dir/x.pcapng', { interfaces: [{ name: 'lo' }] })).toThrow();
    }
    expect(openFds()).toEqual(before);
  });
});
