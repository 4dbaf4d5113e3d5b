// SPDX-License-Identifier: MIT
/**
 * Decode throughput of the BTF object decoder for a typical connection event (no BPF, no
 * baseline: a figure to compare between builds). Under bench/ so that it does not ship.
 * Run after `npm run build:ts`: node dist/bench/btf-decode.js [count]
 */
import { BtfBuilder } from '../lib/bpf/btf/build';
import { decoderFor } from '../lib/bpf/btf/codec';
import { Btf } from '../lib/bpf/btf/parse';

/** @example const { sharedViewPerSec } = runDecodeBench(1e6); */
export interface DecodeBenchResult {
  /** Objects decoded per second, via one DataView over the whole buffer. */
  sharedViewPerSec: number;
  /** Objects decoded per second, one pre-made DataView per record (ring-buffer style). */
  perRecordViewPerSec: number;
  count: number;
  structSize: number;
}

/**
 * BTF for `struct conn_event` (72 bytes, 11 fields), the shape tcpscope probes emit.
 *
 * @example
 * decoderFor(connEventBtf(), 'conn_event').size; // 72
 */
export function connEventBtf(): Btf {
  const b = new BtfBuilder();
  const u8 = b.typedef('u8', b.int('unsigned char', 1));
  const u16 = b.typedef('u16', b.int('unsigned short', 2));
  const u32 = b.typedef('u32', b.int('unsigned int', 4));
  const u64 = b.typedef('u64', b.int('unsigned long long', 8));
  const ch = b.int('char', 1, { signed: true });
  const addr = b.array(u8, 16);
  const comm = b.array(ch, 16);
  b.struct('conn_event', 72, [
    { name: 'ts_ns', type: u64, bitOffset: 0 },
    { name: 'pid', type: u32, bitOffset: 64 },
    { name: 'sport', type: u16, bitOffset: 96 },
    { name: 'dport', type: u16, bitOffset: 112 },
    { name: 'saddr', type: addr, bitOffset: 128 },
    { name: 'daddr', type: addr, bitOffset: 256 },
    { name: 'comm', type: comm, bitOffset: 384 },
    { name: 'family', type: u8, bitOffset: 512 },
    { name: 'state', type: u8, bitOffset: 520 },
    { name: 'flags', type: u16, bitOffset: 528 },
    { name: 'rtt_us', type: u32, bitOffset: 544 },
  ]);
  return Btf.parse(b.build());
}

/**
 * Measure decoder throughput (best of 5 rounds of `count` decodes).
 *
 * @example
 * console.log(runDecodeBench(1_000_000).sharedViewPerSec / 1e6, 'M/s');
 */
export function runDecodeBench(count = 2_000_000): DecodeBenchResult {
  const btf = connEventBtf();
  const dec = decoderFor<{ pid: number; comm: string }>(btf, 'conn_event');
  const size = dec.size;
  const records = 1024;
  const buf = new ArrayBuffer(size * records);
  const bytes = new Uint8Array(buf);
  const names = ['nginx', 'curl', 'node', 'sshd', 'postgres', 'redis-server', 'envoy', 'kworker/0:1'];
  for (let i = 0; i < records; i++) {
    const o = i * size;
    for (let j = 0; j < size; j++) bytes[o + j] = (i * 31 + j * 7) & 0xff;
    bytes.fill(0, o + 48, o + 64);
    bytes.set(Buffer.from(names[i % names.length]!), o + 48);
  }
  const shared = new DataView(buf);
  const views = Array.from({ length: records }, (_, i) => new DataView(buf, i * size, size));

  // Best of several rounds: the first lets the JIT settle, and on a shared
  // 2-vCPU box the others absorb scheduler noise.
  const time = (fn: () => number): number => {
    let best = 0;
    for (let round = 0; round < 5; round++) {
      const t0 = process.hrtime.bigint();
      const sink = fn();
      const ns = Number(process.hrtime.bigint() - t0);
      if (sink === -1) console.log(sink);
      best = Math.max(best, (count / ns) * 1e9);
    }
    return best;
  };
  const sharedViewPerSec = time(() => {
    let s = 0;
    for (let i = 0; i < count; i++) s += dec.decode(shared, (i & (records - 1)) * size).pid;
    return s;
  });
  const perRecordViewPerSec = time(() => {
    let s = 0;
    for (let i = 0; i < count; i++) s += dec.decode(views[i & (records - 1)]!, 0).comm.length;
    return s;
  });
  return { sharedViewPerSec, perRecordViewPerSec, count, structSize: size };
}

if (require.main === module) {
  const n = Number(process.argv[2] ?? 2_000_000);
  const r = runDecodeBench(n);
  const m = (x: number): string => `${(x / 1e6).toFixed(2)} M objects/s`;
  console.log(`struct conn_event (${r.structSize} bytes, 11 fields), ${r.count} decodes`);
  console.log(`  shared DataView + offset: ${m(r.sharedViewPerSec)}`);
  console.log(`  DataView per record:      ${m(r.perRecordViewPerSec)}`);
}
