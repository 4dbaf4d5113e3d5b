// PacketPcapngEncoder on real loopback traffic: packets written straight from the ring
// (run()) and from rawBatches() (writeBatch()) give the same blocks, tcpdump reads them,
// an abort still writes what was waiting, and the wake-up threshold is validated.
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { PacketPcapngEncoder, packets } from '../lib/probes';
import { wakeupBytesFor } from '../lib/probes/stream';
import { PcapngWriter, readPcapng } from '../lib/pcapng';
import { bpfAvailable, eventually } from './helpers/bpf';

const enabled = bpfAvailable('packets pcapng');

async function exchange(port: number, connections: number, bytes: number): Promise<void> {
  const server = net.createServer((s) => { s.resume(); s.on('end', () => s.end()); s.on('error', () => {}); });
  server.listen(port, '127.0.0.1');
  await once(server, 'listening');
  for (let i = 0; i < connections; i++) {
    const c = net.connect(port, '127.0.0.1');
    await once(c, 'connect');
    c.end(Buffer.alloc(bytes, 0x62));
    c.resume();
    await once(c, 'close');
  }
  server.close();
}

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
    const port = 20000 + Math.floor(Math.random() * 20000);
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
      await eventually(() => viaBatches.stats().received >= 5 * 8, 5000, 'raw batches read');
      await new Promise((r) => setTimeout(r, 100));
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
});
