#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// bench/ringbuf: events/s from a 4 MiB BPF ring buffer into JavaScript vs libbpf's C
// consumer (ring_buffer__poll/consume) of the same producer, measured in the same run.
//
// Producer: test/bpf/bench_ring.bpf.c run through BPF_PROG_TEST_RUN with a large repeat,
// `burst` records per run, by the same producer for every consumer: `bench_c produce` in a
// child process handed the program's fd (bench/lib/producer.js for JavaScript; the C
// consumer forks the same mode of itself), same program, same pacing.
// Measurements per consumer:
//   stream: producer flat out and consumer concurrently for --seconds; rate = records
//           received / time from the producer's start to the last record read; lost from
//           the ring's <ring>_lost counter. The consumer's CPU share tells whether it or
//           the producer was the bottleneck.
//   paced:  the same with the producer paced to a fixed load (--paced-rate): does the
//           reader keep up without loss?
//   drain:  the ring is filled while nobody reads (test runs in the consumer's thread,
//           untimed), then emptied; rate = records / the consumer thread's run time while
//           emptying it (CLOCK_THREAD_CPUTIME_ID in C; getrusage through process.cpuUsage()
//           in JS, all of the process's threads, GC helpers included: a running thread's
//           own schedstat lags by up to a time slice): the consumer's own speed, whatever
//           the producer can do and however loaded the machine is. The
//           wall-clock rate is reported beside it. This is the headline.
// Consumers: C (libbpf, a callback per record), JS raw (RecordReader.batches(): RecordBatch
// views), JS decoded (decodedBatches(): objects from the BTF decoder) and, in drain, JS lazy
// (viewDecoderFor views over a copy of each batch, as packets() delivers). Each reads the
// `seq` field of every record and checks it for gaps. Wake-up threshold: the runtime's
// default (64 KiB, lib/probes/stream.ts). Drain: medians of --rounds, interleaved; stream
// and paced: best of --rounds.
//
//   node bench/ringbuf.js --record-bytes 64|256 [--seconds 1] [--rounds 2]
'use strict';
const c = require('./lib/common');
const { startProducer } = require('./lib/producer');

const opts = c.args({
  recordBytes: 64,
  seconds: 1,
  rounds: 2,
  burst: 16,
  // tcpscope_wakeup_bytes: the runtime's default (lib/probes/stream.ts)
  wakeupBytes: 64 << 10,
  drainSeconds: 0.3,
  // offered loads (records/s) of the paced runs: can the reader keep up without loss?
  pacedRate: 10e6,
  pacedDecodedRate: 5e6,
  // which measurements: drain,stream,paced
  only: 'drain,stream,paced',
  // size of both consumers' rings (the program's own: 4 MiB)
  ringBytes: 4 << 20,
});
const ONLY = new Set(String(opts.only).split(','));
const SIZE = opts.recordBytes;
if (SIZE !== 64 && SIZE !== 256) c.fail('--record-bytes must be 64 or 256');
const RING = `ring${SIZE}`;
const PROG = `bench_emit${SIZE}`;
const TYPE = `bench_event${SIZE}`;
const RING_BYTES = opts.ringBytes;
if (!(RING_BYTES >= 4096 && (RING_BYTES & (RING_BYTES - 1)) === 0)) c.fail('--ring-bytes must be a power of two of at least 4096');
// the C helper sizes its rings from this too
process.env.BENCH_RING_BYTES = String(RING_BYTES);
const SEQ_OFFSET = 12; // offsetof(struct bench_event*, seq)
const FRAME = new Uint8Array(64);

const rt = c.runtime();
const { viewDecoderFor } = require(require('node:path').join(c.ROOT, 'dist', 'lib', 'bpf', 'btf'));
const { copyView } = require(require('node:path').join(c.ROOT, 'dist', 'lib', 'bpf', 'ringbuf'));

function load(wakeup) {
  const obj = rt.BpfObject.open(c.bpfObject('bench_ring'), { globals: { burst: opts.burst, tcpscope_wakeup_bytes: wakeup } });
  obj.setMaxEntries(RING, RING_BYTES);
  obj.load();
  return obj;
}

/** JavaScript consumer reading while another process produces. */
async function jsStream(mode, wakeup, rate = 0) {
  const obj = load(wakeup);
  try {
    const controller = new AbortController();
    const reader = obj.ringBuffer(RING, mode === 'raw' ? { raw: true, signal: controller.signal } : { signal: controller.signal });
    const seq0 = Number(obj.global('next_seq'));
    const lost0 = reader.stats().lost;
    let produced;
    let count = 0;
    let sum = 0;
    let gaps = 0;
    let expect = -1;
    let last = 0;
    let failure;
    // Stop once everything produced was read, or a bounded time after the producer ended.
    const guard = setTimeout(() => controller.abort(), (opts.seconds + 20) * 1000);
    const cpu0 = c.threadCpu();
    const { done } = startProducer({ fd: obj.program(PROG).fd, seconds: opts.seconds, rate: rate / opts.burst, frame: FRAME });
    done.then(
      (m) => {
        produced = m;
        const total = Number(obj.global('next_seq')) - seq0;
        const until = c.now() + 2;
        const check = setInterval(() => {
          if (count >= total || c.now() > until) {
            clearInterval(check);
            controller.abort();
          }
        }, 2);
      },
      (e) => {
        failure = e;
        controller.abort();
      },
    );
    if (mode === 'raw') {
      for await (const batch of reader.batches()) {
        const view = batch.view;
        const offsets = batch.offsets;
        const n = batch.count;
        for (let i = 0; i < n; i++) {
          const seq = view.getUint32(offsets[i] + SEQ_OFFSET, true);
          if (seq !== expect && expect >= 0) gaps++;
          expect = (seq + 1) >>> 0;
          sum += seq;
        }
        count += n;
        last = c.now();
      }
    } else {
      for await (const events of reader.decodedBatches()) {
        const n = events.length;
        for (let i = 0; i < n; i++) {
          const seq = events[i].seq;
          if (seq !== expect && expect >= 0) gaps++;
          expect = (seq + 1) >>> 0;
          sum += seq;
        }
        count += n;
        last = c.now();
      }
    }
    const cpu = c.threadCpu() - cpu0;
    clearTimeout(guard);
    if (failure) throw failure;
    const lost = reader.stats().lost - lost0;
    const total = Number(obj.global('next_seq')) - seq0;
    const elapsed = last - produced.start;
    return {
      consumer: `js-${mode}`,
      mode: 'stream',
      received: count,
      produced: total,
      lost,
      unread: total - count,
      elapsed_s: c.round(elapsed, 4),
      events_per_s: Math.round(count / elapsed),
      offered_per_s: Math.round((total + lost) / (produced.end - produced.start)),
      producer_ns_per_event: c.round(produced.kernel_ns / produced.runs / opts.burst, 1),
      consumer_cpu_share: c.round(cpu / elapsed, 3),
      gaps,
      checksum: sum,
    };
  } finally {
    obj.close();
  }
}

/** Raw: the seq field of each record, read from the batch. */
function sumRaw(batch) {
  const view = batch.view;
  const offsets = batch.offsets;
  const n = batch.count;
  let sum = 0;
  for (let i = 0; i < n; i++) sum += view.getUint32(offsets[i] + SEQ_OFFSET, true);
  return sum;
}

/** What decodedBatches() does per batch: an object per record; then seq of each. */
function sumDecoded(batch, decoder) {
  const view = batch.view;
  const offsets = batch.offsets;
  const n = batch.count;
  const out = new Array(n);
  for (let i = 0; i < n; i++) out[i] = decoder.decode(view, offsets[i]);
  let sum = 0;
  for (let i = 0; i < n; i++) sum += out[i].seq;
  return sum;
}

/** What packets() does per batch: lazy views over a copy of the batch; then seq of each. */
function sumLazy(batch, View) {
  const view = copyView(batch);
  const offsets = batch.offsets;
  const n = batch.count;
  const out = new Array(n);
  for (let i = 0; i < n; i++) out[i] = new View(view, offsets[i]);
  let sum = 0;
  for (let i = 0; i < n; i++) sum += out[i].seq;
  return sum;
}

/** JavaScript consumer emptying a ring filled while nobody read. */
function jsDrain(mode) {
  const obj = load(0);
  try {
    const reader = obj.ringBuffer(RING, { raw: true });
    const decoder = mode === 'decoded' ? obj.decoder(TYPE) : mode === 'lazy' ? viewDecoderFor(obj.btf, TYPE) : undefined;
    const prog = obj.program(PROG);
    const repeat = Math.floor((RING_BYTES / (((SIZE + 8 + 7) >> 3) << 3)) * 0.95 / opts.burst);
    let drained = 0;
    let spent = 0;
    let cpu = 0;
    let rounds = 0;
    let sum = 0;
    const wall0 = c.now();
    while (spent < opts.drainSeconds && c.now() - wall0 < opts.drainSeconds * 4 + 2) {
      prog.testRun({ data: FRAME, repeat });
      const run0 = process.cpuUsage();
      const t0 = c.now();
      for (let batch = reader.readAvailable(); batch; batch = reader.readAvailable()) {
        const n = batch.count;
        // one function per consumer, so that each keeps its own type feedback
        sum += mode === 'decoded' ? sumDecoded(batch, decoder) : mode === 'lazy' ? sumLazy(batch, decoder.View) : sumRaw(batch);
        drained += n;
      }
      spent += c.now() - t0;
      const used = process.cpuUsage(run0);
      cpu += (used.user + used.system) / 1e6;
      rounds++;
    }
    return {
      consumer: `js-${mode}`, mode: 'drain', received: drained, rounds, drain_s: c.round(spent, 4), drain_cpu_s: c.round(cpu, 4),
      events_per_s: Math.round(drained / spent), events_per_cpu_s: Math.round(drained / cpu), lost: reader.stats().lost, checksum: sum,
    };
  } finally {
    obj.close();
  }
}

function cStream(wakeup, rate = 0) {
  return c.runC(['ringbuf', 'stream', c.bpfObject('bench_ring'), PROG, RING, opts.seconds, opts.burst, wakeup, SIZE, rate]);
}

function cDrain() {
  return c.runC(['ringbuf', 'drain', c.bpfObject('bench_ring'), PROG, RING, opts.drainSeconds, opts.burst, 0, SIZE]);
}

function fewestLost(runs) {
  return runs.reduce((a, b) => (b.lost < a.lost ? b : a));
}

function best(runs) {
  return runs.reduce((a, b) => (b.events_per_s > a.events_per_s ? b : a));
}

async function main() {
  const nice = c.raisePriority();
  c.cHelper();
  const load0 = c.loadavg();
  c.log(`ringbuf ${SIZE}-byte records, ring ${RING_BYTES >> 20} MiB, burst ${opts.burst}, nice ${nice}, load ${load0.join(' ')}`);
  const stalls = c.runC(['stalls', 1]);
  c.log(`scheduling noise: ${JSON.stringify(stalls)}`);

  // warm-up: JIT the JavaScript consumers, fault in the rings
  jsDrain('raw');
  jsDrain('decoded');
  jsDrain('lazy');

  const drains = { c: [], raw: [], decoded: [], lazy: [] };
  const streams = { c: [], raw: [], decoded: [] };
  const paced = { c: [], raw: [], decoded: [] };
  const show = (r, extra = {}) => c.log(JSON.stringify({ ...r, ...extra }));
  for (let round = 0; round < opts.rounds; round++) {
    // interleaved, so that a disturbance on a shared machine hits every consumer alike
    if (ONLY.has('drain')) {
      for (const [key, fn] of [['c', cDrain], ['raw', () => jsDrain('raw')], ['decoded', () => jsDrain('decoded')], ['lazy', () => jsDrain('lazy')]]) {
        const r = fn();
        drains[key].push(r);
        show(r);
      }
    }
    if (ONLY.has('stream')) {
      for (const [key, fn] of [['c', () => cStream(opts.wakeupBytes)], ['raw', () => jsStream('raw', opts.wakeupBytes)], ['decoded', () => jsStream('decoded', opts.wakeupBytes)]]) {
        const r = await fn();
        streams[key].push(r);
        show(r, { wakeup_bytes: opts.wakeupBytes });
      }
    }
    if (ONLY.has('paced')) {
      for (const [key, fn] of [
        ['c', () => cStream(opts.wakeupBytes, opts.pacedRate)],
        ['raw', () => jsStream('raw', opts.wakeupBytes, opts.pacedRate)],
        ['decoded', () => jsStream('decoded', opts.wakeupBytes, opts.pacedDecodedRate)],
      ]) {
        const r = await fn();
        paced[key].push(r);
        show(r, { wakeup_bytes: opts.wakeupBytes, paced: true });
      }
    }
  }

  const some = (runs) => runs.length > 0;
  const medianOf = (runs, key) => (some(runs) ? Math.round(c.median(runs.map((r) => r[key]))) : null);
  const ratioOf = (a, b) => (a && b ? c.round(a / b, 3) : null);
  const drainCpu = { c: medianOf(drains.c, 'events_per_cpu_s'), raw: medianOf(drains.raw, 'events_per_cpu_s'), decoded: medianOf(drains.decoded, 'events_per_cpu_s'), lazy: medianOf(drains.lazy, 'events_per_cpu_s') };
  const drainWall = { c: medianOf(drains.c, 'events_per_s'), raw: medianOf(drains.raw, 'events_per_s'), decoded: medianOf(drains.decoded, 'events_per_s'), lazy: medianOf(drains.lazy, 'events_per_s') };
  const cBest = some(streams.c) ? best(streams.c) : undefined;
  const rawBest = some(streams.raw) ? best(streams.raw) : undefined;
  const decBest = some(streams.decoded) ? best(streams.decoded) : undefined;
  // CPU the consumer thread spent per record it read
  const cpuNs = (r) => (r ? c.round((r.consumer_cpu_share / r.events_per_s) * 1e9, 1) : null);
  const lostFraction = (r) => (r ? c.round(r.lost / (r.received + r.lost), 4) : null);
  const pacedFew = (runs) => (some(runs) ? fewestLost(runs) : undefined);
  const pacedRaw = pacedFew(paced.raw);
  const figures = {
    bench: 'ringbuf',
    record_bytes: SIZE,
    ring_bytes: RING_BYTES,
    // the headline: the consumers' own speed on a full ring, per second of their thread's run time
    drain: {
      ratio: ratioOf(drainCpu.raw, drainCpu.c),
      c_events_per_cpu_s: drainCpu.c,
      js_events_per_cpu_s: drainCpu.raw,
      js_decoded_events_per_cpu_s: drainCpu.decoded,
      js_lazy_events_per_cpu_s: drainCpu.lazy,
      decoded_ratio: ratioOf(drainCpu.decoded, drainCpu.c),
      lazy_ratio: ratioOf(drainCpu.lazy, drainCpu.c),
      wall: { c_events_per_s: drainWall.c, js_events_per_s: drainWall.raw, js_decoded_events_per_s: drainWall.decoded, js_lazy_events_per_s: drainWall.lazy, ratio: ratioOf(drainWall.raw, drainWall.c) },
      rounds: drains.c.length,
    },
    stream: cBest && rawBest && decBest ? {
      c_events_per_s: cBest.events_per_s,
      js_events_per_s: rawBest.events_per_s,
      js_decoded_events_per_s: decBest.events_per_s,
      ratio: ratioOf(rawBest.events_per_s, cBest.events_per_s),
      lost: { c: cBest.lost, js: rawBest.lost, js_decoded: decBest.lost },
      lost_fraction: { js: lostFraction(rawBest), js_decoded: lostFraction(decBest), c: lostFraction(cBest) },
      producer_ns_per_event: { c: cBest.producer_ns_per_event, js: rawBest.producer_ns_per_event, js_decoded: decBest.producer_ns_per_event },
      consumer_cpu_share: { c: cBest.consumer_cpu_share, js: rawBest.consumer_cpu_share, js_decoded: decBest.consumer_cpu_share },
      consumer_cpu_ns_per_event: { c: cpuNs(cBest), js: cpuNs(rawBest), js_decoded: cpuNs(decBest) },
    } : null,
    paced: pacedRaw ? {
      // producer paced to a fixed load; the run with the fewest losses of each reader
      offered_per_s: opts.pacedRate,
      c_events_per_s: fewestLost(paced.c).events_per_s,
      c_lost: fewestLost(paced.c).lost,
      c_lost_all: paced.c.map((r) => r.lost),
      js_events_per_s: pacedRaw.events_per_s,
      js_lost: pacedRaw.lost,
      js_lost_all: paced.raw.map((r) => r.lost),
      decoded_offered_per_s: opts.pacedDecodedRate,
      js_decoded_events_per_s: fewestLost(paced.decoded).events_per_s,
      js_decoded_lost: fewestLost(paced.decoded).lost,
    } : null,
    wakeup_bytes: opts.wakeupBytes,
    burst: opts.burst,
    gaps: [...streams.raw, ...streams.decoded, ...paced.raw, ...paced.decoded, ...streams.c, ...paced.c].reduce((a, r) => a + r.gaps, 0),
    unread: [...streams.raw, ...streams.decoded, ...paced.raw, ...paced.decoded].reduce((a, r) => a + r.unread, 0),
    targets: {
      drain_raw_ge_80pct_of_c: drainCpu.raw && drainCpu.c ? drainCpu.raw >= 0.8 * drainCpu.c : null,
      raw_0_lost_paced: pacedRaw ? pacedRaw.lost === 0 : null,
      decoded_ge_5M_per_s: decBest ? decBest.events_per_s >= 5e6 : null,
    },
    sched_noise: stalls,
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
