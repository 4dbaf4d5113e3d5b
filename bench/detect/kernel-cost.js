#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// Kernel ns per SYN of the packets program's SYN accounting under a random-source flood:
// every source counted in the LRU tables (synCounts(), and detect() before issue 9) against
// sources admitted through the count-min sketch (detect() now), no events either way.
// BPF_PROG_TEST_RUN of packets_tc, one run per frame, each frame from a new random
// source; the kernel's own duration per run, medians over chunks, the two variants
// alternated chunk by chunk in one process.
//
//   sudo node bench/detect/kernel-cost.js [--frames 20000] [--rounds 5] [--baseline DIR]
// --baseline DIR adds DIR's build/bpf/packets.bpf.o (another tree, built) with the sketch as
// a third variant, `baseline_sketch`, alternated with the others.
'use strict';
const path = require('node:path');
const ROOT = path.resolve(__dirname, '..', '..');
const { BpfObject, builtObjectPath, tcpFrame } = require(path.join(ROOT, 'dist', 'lib', 'bpf'));

const args = process.argv.slice(2);
const opt = (name, def) => { const i = args.indexOf(`--${name}`); return i >= 0 ? Number(args[i + 1]) : def; };
const FRAMES = opt('frames', 20000);
const ROUNDS = opt('rounds', 5);
const bi = args.indexOf('--baseline');
const BASELINE = bi >= 0 ? path.join(path.resolve(args[bi + 1] ?? ''), 'build', 'bpf', 'packets.bpf.o') : null;
if (BASELINE && !require('node:fs').existsSync(BASELINE)) { console.error(`--baseline: ${BASELINE} is missing: build that tree first`); process.exit(2); }
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor((s.length - 1) / 2)]; };

function open(hhMin, file = builtObjectPath('packets')) {
  const obj = BpfObject.open(file, { skipPrograms: ['packets_xdp', 'packets_tc_egress'] });
  if (hhMin === 0) { obj.setMaxEntries('syn_sketch_addr', 1); obj.setMaxEntries('syn_sketch_prefix', 1); }
  obj.load();
  obj.map('packets_filter').set(0, { len: 0, insns: [] });
  obj.map('packets_config').set(0, { features: 2, sample_rate: 1, snaplen: 0, payload_bytes: 0, filter_slot: 0, events_per_slot: 0, hh_min: hhMin, _pad: 0 });
  return { obj, prog: obj.program('packets_tc') };
}

/** A SYN from a random source (as hping3 --rand-source sends). */
const a = () => 1 + Math.floor(Math.random() * 223);
const synFrom = () => tcpFrame({ src: `${a()}.${a()}.${a()}.${a()}`, dst: '10.0.0.1', sport: 1024 + Math.floor(Math.random() * 60000), dport: 80, flags: { syn: true } });
const variants = { lru_every_source: open(0), sketch_admission: open(6), ...(BASELINE ? { baseline_sketch: open(6, BASELINE) } : {}) };
const results = Object.fromEntries(Object.keys(variants).map((k) => [k, []]));
for (let r = 0; r < ROUNDS; r++) {
  for (const [name, v] of Object.entries(variants)) {
    const ns = [];
    for (let i = 0; i < FRAMES; i++) ns.push(v.prog.testRun({ data: synFrom(), repeat: 1 }).durationNs);
    results[name].push(median(ns));
  }
}
for (const v of Object.values(variants)) v.obj.close();
const out = { benchmark: 'detect-kernel-cost', frames: FRAMES, rounds: ROUNDS, ns_per_syn: {} };
for (const [name, xs] of Object.entries(results)) out.ns_per_syn[name] = { median: median(xs), rounds: xs };
out.sketch_over_lru = out.ns_per_syn.sketch_admission.median / out.ns_per_syn.lru_every_source.median;
if (BASELINE) out.sketch_over_baseline_sketch = out.ns_per_syn.sketch_admission.median / out.ns_per_syn.baseline_sketch.median;
process.stdout.write(JSON.stringify(out) + '\n');
