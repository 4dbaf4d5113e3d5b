#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// bench/guard: what listing a million sources costs the guard (bpf/guard.bpf.c).
//   1. inserting N /32 entries (strings) through Guard.denyMany (the bulk path: parse, one
//      LPM update with BPF_NOEXIST each), entries/s and kernel memory of the trie; then
//      --single more through Guard.deny one by one (the path detectors use: parse,
//      exact-match lookup, update, an entry object back), us per call
//   2. kernel ns per packet from BPF_PROG_TEST_RUN (median of --rounds runs of --repeat
//      packets each) on a real SYN frame: with empty tries, then with N entries, for a source
//      that is not listed (the common case: parse + one LPM lookup that misses) and for one
//      that is (lookup hit + atomic counters + XDP_DROP)
// Nothing is attached: the program runs only under test runs. The last line is JSON.
//
//   node bench/guard/run.js [--entries 1000000] [--repeat 1000000] [--rounds 5]
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const os = require('node:os');

const ROOT = path.resolve(__dirname, '..', '..');
const dist = (p) => {
  const file = path.join(ROOT, 'dist', 'lib', p);
  if (!fs.existsSync(`${file}.js`) && !fs.existsSync(path.join(file, 'index.js'))) {
    console.error(`${file} is missing: run \`node scripts/build.js\` first`);
    process.exit(1);
  }
  return require(file);
};
const { Guard } = dist('guard');
const { tcpFrame } = dist('bpf');

function args(defaults) {
  const out = { ...defaults };
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    const m = /^--(\w+)$/.exec(argv[i]);
    if (!m || !(m[1] in out)) { console.error(`unknown option ${argv[i]}; options: ${Object.keys(defaults).map((k) => `--${k}`).join(' ')}`); process.exit(2); }
    out[m[1]] = Number(argv[++i]);
  }
  return out;
}

const opts = args({ entries: 1_000_000, repeat: 1_000_000, rounds: 5, single: 20_000 });
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** The i-th of 2^22 addresses in 100.64.0.0/10, spread by an odd multiplier (a bijection). */
function address(i) {
  const n = (0x64400000 + ((Math.imul(i, 0x9e3779b1) >>> 0) & 0x3fffff)) >>> 0;
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

function syn(src) {
  return tcpFrame({ src, dst: '192.0.2.1', sport: 43512, dport: 443, flags: { syn: true }, window: 64240,
    options: { mss: 1460, sackPermitted: true, timestamps: [1, 0], wscale: 7 } });
}

function perPacket(prog, frame) {
  const runs = [];
  let retval = 0;
  for (let r = 0; r < opts.rounds; r++) {
    const res = prog.testRun({ data: frame, repeat: opts.repeat });
    runs.push(res.durationNs);
    retval = res.retval;
  }
  return { ns: median(runs), min: Math.min(...runs), retval };
}

/** Kernel memory charged to a map, from /proc/self/fdinfo (the kernel's own estimate). */
function mapMemlock(map) {
  try {
    const m = /memlock:\s+(\d+)/.exec(fs.readFileSync(`/proc/self/fdinfo/${map.fd}`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch { return null; }
}

function slabUsed() {
  const m = /Slab:\s+(\d+) kB/.exec(fs.readFileSync('/proc/meminfo', 'utf8'));
  return m ? Number(m[1]) * 1024 : null;
}

const load0 = os.loadavg()[0];
const guard = Guard.start({ interfaces: [] });
const prog = guard.program; // guard_xdp, or its _xadd variant on kernels before 5.12
const missFrame = syn('198.51.100.77');             // outside the listed range
const nearFrame = syn(address(opts.entries + 12345)); // inside 100.64.0.0/10, not listed: a deep walk
const hitSrc = address(Math.floor(opts.entries / 2));
const hitFrame = syn(hitSrc);

const empty = perPacket(prog, missFrame);
console.log(`empty tries:         ${empty.ns.toFixed(1)} ns/packet (min ${empty.min}) retval ${empty.retval}`);

const slab0 = slabUsed();
const list = Array.from({ length: opts.entries }, (_, i) => address(i));
const t0b = process.hrtime.bigint();
guard.denyMany(list);
const insertSec = Number(process.hrtime.bigint() - t0b) / 1e9;
const slab1 = slabUsed();
const v4 = guard.object.map('guard_v4');
console.log(`denyMany: inserted ${guard.size} /32 entries in ${insertSec.toFixed(2)} s (${Math.round(opts.entries / insertSec)} entries/s, ${(insertSec * 1e6 / opts.entries).toFixed(2)} us each)`);
const memlock = mapMemlock(v4);
const slabDelta = slab0 !== null && slab1 !== null ? slab1 - slab0 : null;
console.log(`trie memory: memlock estimate ${memlock === null ? '?' : (memlock / 1048576).toFixed(1)} MiB, slab growth ${slabDelta === null ? '?' : (slabDelta / 1048576).toFixed(1)} MiB`);

// One by one through deny(), in 172.16.0.0/12 (outside the bulk range).
const singles = Array.from({ length: opts.single }, (_, i) => `172.${16 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`);
const t2 = process.hrtime.bigint();
for (const a of singles) guard.deny(a);
const singleUs = opts.single ? Number(process.hrtime.bigint() - t2) / 1e3 / opts.single : 0;
console.log(`deny() one by one: ${singleUs.toFixed(2)} us per call (${opts.single} calls)`);

const full = perPacket(prog, missFrame);
const near = perPacket(prog, nearFrame);
const hit = perPacket(prog, hitFrame);
console.log(`${opts.entries} entries, miss: ${full.ns.toFixed(1)} ns/packet (min ${full.min}) retval ${full.retval}`);
console.log(`${opts.entries} entries, near miss (same /10): ${near.ns.toFixed(1)} ns/packet (min ${near.min}) retval ${near.retval}`);
console.log(`${opts.entries} entries, hit:  ${hit.ns.toFixed(1)} ns/packet (min ${hit.min}) retval ${hit.retval} (drop + atomic counters)`);
const entry = guard.get(hitSrc);

const t1 = process.hrtime.bigint();
guard.close();
const closeSec = Number(process.hrtime.bigint() - t1) / 1e9;
console.log(`close (detach + free the tries): ${closeSec.toFixed(2)} s`);

console.log(JSON.stringify({
  bench: 'guard',
  kernel: os.release(),
  cpus: os.cpus().length,
  loadavg_start: +load0.toFixed(2),
  loadavg_end: +os.loadavg()[0].toFixed(2),
  entries: opts.entries,
  repeat: opts.repeat,
  rounds: opts.rounds,
  insert_seconds: +insertSec.toFixed(3),
  insert_per_sec: Math.round(opts.entries / insertSec),
  insert_us_each: +(insertSec * 1e6 / opts.entries).toFixed(3),
  deny_single_calls: opts.single,
  deny_single_us_each: +singleUs.toFixed(3),
  trie_memlock_bytes: memlock,
  slab_growth_bytes: slabDelta,
  ns_per_packet_empty: empty.ns,
  ns_per_packet_full_miss: full.ns,
  ns_per_packet_full_near_miss: near.ns,
  ns_per_packet_full_hit: hit.ns,
  miss_overhead_ns: +(full.ns - empty.ns).toFixed(1),
  hit_retval: hit.retval,
  hit_entry_dropped: entry ? Number(entry.droppedPackets) : null,
  close_seconds: +closeSec.toFixed(3),
}));
