#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// bench/packet-cost: kernel ns per packet of a tc program that parses a TCP SYN and emits a
// 64-byte event (test/bpf/bench_packet.bpf.c), from BPF_PROG_TEST_RUN's own duration, on a
// real frame from tcpFrame(). Compared:
//   no reader   nobody reads concurrently; the producing thread itself empties the ring
//               between chunks (untimed), so the ring never fills
//   reader      a RecordReader drains the ring with batches() on the main thread while
//               another process runs the program (bench/lib/producer.js): what attaching
//               a reader costs the packet path
// each with tcpscope_wakeup_bytes = 0 (wake on every submit that finds the ring empty:
// libbpf's default behaviour) and adaptive (64 KiB, the runtime's default), at two loads:
// flat out, and paced at --pps packets/s (0.5 ms slices). A run's figure is the median
// over its test-run chunks; each reader run is paired with the no-reader run just before
// it, and the figures below are medians over --rounds such pairs (the machine this was
// written on is shared and noisy: pairing keeps a slow minute from faking an overhead). Also: the same parse without the event, and the
// program with an 8-byte threshold, where every submit finds the backlog above it: a
// sentinel for wake-up storms (tcpscope.h forced one IPI per record above the threshold
// before a244c26, 4.6 us/record on this VM; it now forces at most one per consumer position).
//
//   node bench/packet-cost.js [--seconds 1] [--pps 1000000] [--rounds 2]
'use strict';
const c = require('./lib/common');
const { startProducer } = require('./lib/producer');

const opts = c.args({ seconds: 1, pps: 1e6, rounds: 3, adaptiveBytes: 64 << 10 });
const rt = c.runtime();
const FRAME = rt.tcpFrame({
  src: '192.0.2.10', dst: '198.51.100.20', sport: 43512, dport: 443, seq: 123456789,
  flags: { syn: true }, window: 64240, options: { mss: 1460, sackPermitted: true, timestamps: [2717823, 0], wscale: 7 },
});
const RING = 'packet_events';
const SLICE = 0.0005;
const RECORD = 72; // 64-byte event + 8-byte header
const sleeper = new Int32Array(new SharedArrayBuffer(4));

function load(wakeup) {
  return rt.BpfObject.load(c.bpfObject('bench_packet'), { globals: { tcpscope_wakeup_bytes: wakeup } });
}

function sleepUntil(t) {
  const wait = t - c.now();
  if (wait > 0) Atomics.wait(sleeper, 0, 0, wait * 1000);
}

/** Producer alone; the ring is emptied by this thread between chunks, untimed. */
function noReader(wakeup, pps, prog = 'bench_parse_emit') {
  const obj = load(wakeup);
  try {
    const reader = obj.ringBuffer(RING, { raw: true });
    const p = obj.program(prog);
    const durations = [];
    let runs = 0;
    const start = c.now();
    // flat out: chunks that fill 3/4 of the ring; paced: one slice's packets per chunk
    const chunk = pps ? Math.max(1, Math.round(pps * SLICE)) : Math.floor(((4 << 20) / RECORD) * 0.75);
    for (let slice = 0; c.now() - start < opts.seconds; slice++) {
      if (pps) sleepUntil(start + slice * SLICE);
      durations.push(p.testRun({ data: FRAME, repeat: chunk }).durationNs);
      runs += chunk;
      while (reader.readAvailable());
    }
    return { ns_per_packet: c.median(durations), runs, lost: reader.stats().lost };
  } finally {
    obj.close();
  }
}

/** Producer in another process, RecordReader.batches() reading on this thread. */
async function withReader(wakeup, pps) {
  const obj = load(wakeup);
  try {
    const controller = new AbortController();
    const reader = obj.ringBuffer(RING, { raw: true, signal: controller.signal });
    let produced;
    let failure;
    const guard = setTimeout(() => controller.abort(), (opts.seconds + 20) * 1000);
    let received = 0;
    let batches = 0;
    const cpu0 = c.threadCpu();
    const { done } = startProducer({ fd: obj.program('bench_parse_emit').fd, seconds: opts.seconds, rate: pps, frame: FRAME });
    done.then(
      (m) => {
        produced = m;
        setTimeout(() => controller.abort(), 50);
      },
      (e) => {
        failure = e;
        controller.abort();
      },
    );
    for await (const batch of reader.batches()) {
      received += batch.count;
      batches++;
    }
    const cpu = c.threadCpu() - cpu0;
    clearTimeout(guard);
    if (failure) throw failure;
    return {
      ns_per_packet: produced.median_ns,
      runs: produced.runs,
      lost: reader.stats().lost,
      received,
      records_per_batch: Math.round(received / Math.max(batches, 1)),
      reader_cpu_share: c.round(cpu / (produced.end - produced.start), 3),
    };
  } finally {
    obj.close();
  }
}

async function main() {
  const nice = c.raisePriority();
  const load0 = c.loadavg();
  c.log(`packet-cost: ${FRAME.length}-byte SYN frame, pps ${opts.pps}, nice ${nice}, load ${load0.join(' ')}`);
  noReader(0, 0); // warm-up

  const loads = [['max', 0], ['paced', opts.pps]];
  const configs = [['wake_every', 0], ['adaptive', opts.adaptiveBytes]];
  const results = {};
  const parseOnly = [];
  const tiny = [];
  for (let round = 0; round < opts.rounds; round++) {
    parseOnly.push(noReader(0, 0, 'bench_parse_only'));
    // every submit is above an 8-byte threshold
    tiny.push(noReader(8, 0));
    for (const [loadName, pps] of loads) {
      for (const [cfgName, wakeup] of configs) {
        for (const [readerName, fn] of [['no_reader', () => noReader(wakeup, pps)], ['reader', () => withReader(wakeup, pps)]]) {
          const key = `${loadName}.${cfgName}.${readerName}`;
          const r = await fn();
          (results[key] ??= []).push(r);
          c.log(key, JSON.stringify(r));
        }
      }
    }
  }

  const med = (key, field = 'ns_per_packet') => c.median(results[key].map((r) => r[field]));
  const overhead = (loadName, cfg) =>
    c.round(c.median(results[`${loadName}.${cfg}.reader`].map((r, i) => r.ns_per_packet / results[`${loadName}.${cfg}.no_reader`][i].ns_per_packet - 1)), 3);
  const sum = (key, field) => results[key].reduce((a, r) => a + r[field], 0);
  const section = (loadName) => ({
    no_reader_wake_every_ns: med(`${loadName}.wake_every.no_reader`),
    reader_wake_every_ns: med(`${loadName}.wake_every.reader`),
    no_reader_adaptive_ns: med(`${loadName}.adaptive.no_reader`),
    reader_adaptive_ns: med(`${loadName}.adaptive.reader`),
    reader_overhead_wake_every: overhead(loadName, 'wake_every'),
    reader_overhead_adaptive: overhead(loadName, 'adaptive'),
    reader_lost: { wake_every: sum(`${loadName}.wake_every.reader`, 'lost'), adaptive: sum(`${loadName}.adaptive.reader`, 'lost') },
    records_per_batch: { wake_every: med(`${loadName}.wake_every.reader`, 'records_per_batch'), adaptive: med(`${loadName}.adaptive.reader`, 'records_per_batch') },
    reader_cpu_share: { wake_every: med(`${loadName}.wake_every.reader`, 'reader_cpu_share'), adaptive: med(`${loadName}.adaptive.reader`, 'reader_cpu_share') },
  });
  const paced = section('paced');
  const max = section('max');
  const figures = {
    bench: 'packet-cost',
    frame_bytes: FRAME.length,
    event_bytes: 64,
    // headline: paced load, the runtime's default (adaptive) wake-ups
    ns_per_packet_no_reader: paced.no_reader_adaptive_ns,
    ns_per_packet_reader: paced.reader_adaptive_ns,
    reader_overhead: paced.reader_overhead_adaptive,
    ns_per_packet_parse_only: c.median(parseOnly.map((r) => r.ns_per_packet)),
    ns_per_packet_threshold_8_bytes: c.median(tiny.map((r) => r.ns_per_packet)),
    paced: { pps: opts.pps, ...paced },
    max,
    adaptive_bytes: opts.adaptiveBytes,
    targets: {
      reader_adds_le_30pct_paced_adaptive: paced.reader_overhead_adaptive <= 0.3,
      reader_adds_le_30pct_max_adaptive: max.reader_overhead_adaptive <= 0.3,
    },
    rounds: opts.rounds,
    seconds: opts.seconds,
    nice,
    loadavg: [load0, c.loadavg()],
  };
  c.report(figures);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
