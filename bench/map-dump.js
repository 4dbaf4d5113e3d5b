#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// bench/map-dump: reading every entry of a 100k-entry BPF hash map (16-byte key, 32-byte
// value: test/bpf/bench_map.bpf.c) into JavaScript, vs C bpf_map_lookup_batch in the same
// run. The map is filled by 100k test runs of bench_fill in each process.
//   c          bench_c mapdump: bpf_map_lookup_batch into buffers allocated once
//   dump_raw   BpfMap.dumpRaw(): the same batch walk into two fresh Uint8Arrays
//   entries    BpfMap.entries(): dumpRaw() + BTF codecs, an array of [key, value] objects
// plus, to split the costs, the addon's batch call into buffers reused across dumps.
// Times are medians of repeated dumps (at least 5 and --seconds of dumping per reader).
//
//   node bench/map-dump.js [--seconds 1] [--rounds 2]
'use strict';
const c = require('./lib/common');

const opts = c.args({ seconds: 1, rounds: 2, entries: 100000 });
const rt = c.runtime();

function timeDumps(fn) {
  const times = [];
  let spent = 0;
  let result;
  const wall0 = c.now();
  while ((times.length < 5 || spent < opts.seconds) && times.length < 1000 && c.now() - wall0 < opts.seconds * 4 + 5) {
    const t0 = c.now();
    result = fn();
    const dt = c.now() - t0;
    times.push(dt);
    spent += dt;
  }
  return { median_ms: c.round(c.median(times) * 1e3, 2), min_ms: c.round(Math.min(...times) * 1e3, 2), dumps: times.length, result };
}

function jsRound() {
  const obj = rt.BpfObject.load(c.bpfObject('bench_map'));
  try {
    obj.program('bench_fill').testRun({ data: new Uint8Array(64), repeat: opts.entries });
    const map = obj.map('flows');
    const native = require(`${c.ROOT}/dist/lib/bpf/native.js`).native();
    const keys = new Uint8Array(map.maxEntries * map.keySize);
    const values = new Uint8Array(map.maxEntries * map.valueSize);
    const reused = timeDumps(() => native.mapDumpBatch(map.fd, keys, values, map.keySize, map.valueSize, map.maxEntries));
    const raw = timeDumps(() => map.dumpRaw());
    const entries = timeDumps(() => map.entries());
    if (raw.result.count !== opts.entries || entries.result.length !== opts.entries || reused.result !== opts.entries) {
      throw new Error(`read ${raw.result.count} / ${entries.result.length} / ${reused.result} entries, expected ${opts.entries}`);
    }
    const sample = entries.result[opts.entries - 1];
    if (typeof sample[0].saddr !== 'number' || typeof sample[1].packets !== 'bigint') throw new Error(`unexpected decoded entry ${JSON.stringify(sample, (k, v) => (typeof v === 'bigint' ? String(v) : v))}`);
    for (const r of [reused, raw, entries]) delete r.result;
    return { reused, raw, entries };
  } finally {
    obj.close();
  }
}

function main() {
  const nice = c.raisePriority();
  const load0 = c.loadavg();
  c.log(`map-dump: ${opts.entries} entries, nice ${nice}, load ${load0.join(' ')}`);
  const runs = { c: [], reused: [], raw: [], entries: [] };
  for (let round = 0; round < opts.rounds; round++) {
    const cr = c.runC(['mapdump', c.bpfObject('bench_map'), 'bench_fill', 'flows', opts.entries, opts.seconds]);
    if (cr.entries !== opts.entries) throw new Error(`C read ${cr.entries} entries, expected ${opts.entries}`);
    runs.c.push(cr);
    c.log('c', JSON.stringify(cr));
    const js = jsRound();
    for (const k of ['reused', 'raw', 'entries']) runs[k].push(js[k]);
    c.log('js', JSON.stringify(js));
  }
  // per reader, the round with the lowest median
  const best = (list) => list.reduce((a, b) => (b.median_ms < a.median_ms ? b : a));
  const cMs = best(runs.c).median_ms;
  const rawMs = best(runs.raw).median_ms;
  const entriesMs = best(runs.entries).median_ms;
  const figures = {
    bench: 'map-dump',
    entries: opts.entries,
    key_bytes: 16,
    value_bytes: 32,
    c_ms: cMs,
    js_dump_raw_ms: rawMs,
    js_entries_ms: entriesMs,
    dump_raw_ratio: c.round(rawMs / cMs, 2),
    entries_ratio: c.round(entriesMs / cMs, 2),
    js_batch_call_reused_buffers_ms: best(runs.reused).median_ms,
    min_ms: { c: best(runs.c).min_ms, dump_raw: best(runs.raw).min_ms, entries: best(runs.entries).min_ms },
    targets: {
      dump_raw_le_1_5x_c: rawMs / cMs <= 1.5,
      entries_le_1_5x_c: entriesMs / cMs <= 1.5,
    },
    rounds: opts.rounds,
    nice,
    loadavg: [load0, c.loadavg()],
  };
  c.report(figures);
}

try {
  main();
} catch (e) {
  console.error(e);
  process.exit(1);
}
