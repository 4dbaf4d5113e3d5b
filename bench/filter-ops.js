#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// bench/filter-ops: what the two filter instructions added for tcpdump's grammar cost in the
// kernel, FIELD_EQ (`tcp[OFF:SIZE] & MASK = N`, `len = N`) and FIELD_GT (`... > N`, `less`,
// `greater`), against the instructions that already did the same test on a parsed field
// (DPORT: `dst port N`, `dst portrange A-B`), on the same packet and the same loaded program.
//
// The program is the live packets program (build/bpf/packets.bpf.o, the one `packets` attaches
// and `packets -r` runs), opened detached; each expression is set as its filter and the program
// is run by BPF_PROG_TEST_RUN over a 74-byte TCP SYN to port 443 that no expression selects
// (so no ring record is written and what differs is the filter). Per expression: the test
// run's own mean ns/packet over --repeat runs. Each test is run as a chain of --ops of them
// or'ed together (every one evaluated) and alone: its cost per instruction =
// (chain - alone) / (ops - 1), which leaves out parsing and the program's fixed costs.
// Subject and baseline alternate within each round, and the figures are medians over
// --rounds rounds.
//
//   node bench/filter-ops.js [--rounds 21] [--repeat 200000] [--ops 30]   (at most 32: FILTER_MAX_INSNS)
'use strict';
const path = require('node:path');
const c = require('./lib/common');

const opts = c.args({ rounds: 21, repeat: 200000, ops: 30 });
if (!(opts.ops >= 2)) c.fail('--ops must be 2 or more');
const rt = c.runtime();
const { openDetachedPackets } = require(path.join(c.ROOT, 'dist', 'lib', 'probes', 'packets.js'));
const { compileFilter } = require(path.join(c.ROOT, 'dist', 'lib', 'filter', 'compile.js'));
const FRAME = rt.tcpFrame({
  src: '192.0.2.10', dst: '198.51.100.20', sport: 43512, dport: 443, seq: 123456789,
  flags: { syn: true }, window: 64240, options: { mss: 1460, sackPermitted: true, timestamps: [2717823, 0], wscale: 7 },
});

const chain = (n, f) => Array.from({ length: n }, (_, i) => f(i)).join(' or ');
const n = opts.ops;
/** name -> [one test (i: which of the chain), the instruction it compiles to]; pairs: subject (new op), baseline (old op). */
const TESTS = {
  field_eq: [(i) => `tcp[2:2] = ${1000 + i}`, 'field_eq'],
  dport_eq: [(i) => `dst port ${1000 + i}`, 'dport'],
  field_gt: [(i) => `tcp[2:2] > ${60000 + i}`, 'field_gt'],
  dport_range: [(i) => `dst portrange ${60001 + i}-65535`, 'dport'],
  // Fields with no older instruction: sequence number, the flags/window word, frame length.
  field_gt_seq: [(i) => `tcp[4:4] > ${0xf0000000 + i}`, 'field_gt'],
  field_eq_window: [(i) => `tcp[14:2] = ${i}`, 'field_eq'],
  field_gt_len: [(i) => `len > ${9000 + i}`, 'field_gt'],
};
/** name/1 and name/N -> [expression, instruction, how many]. */
const EXPRESSIONS = Object.fromEntries(Object.entries(TESTS).flatMap(([name, [test, op]]) => [
  [`${name}/1`, [test(0), op, 1]],
  [`${name}/${n}`, [chain(n, test), op, n]],
]));

function main() {
  const nice = c.raisePriority();
  const stream = openDetachedPackets({});
  const samples = Object.fromEntries(Object.keys(EXPRESSIONS).map((k) => [k, []]));
  try {
    const program = stream.program.object.program('packets_tc');
    for (const [name, [expr, op, count]] of Object.entries(EXPRESSIONS)) {
      stream.program.setFilter(expr);
      // The chain compiles to the instruction it is meant to measure (and nothing else).
      const compiled = compileFilter(expr);
      const ops = compiled.insns.length ? compiled.listing().split('\n').map((l) => l.split(/\s+/)[1]) : [];
      if (ops.length !== count || ops.some((o) => o !== op)) c.fail(`${name}: '${expr}' compiles to [${ops.join(',')}], not ${count} x ${op}`);
      if (program.testRun({ data: FRAME, repeat: 1 }).retval === undefined) c.fail('test run gave no result');
    }
    const names = Object.keys(EXPRESSIONS);
    const deadline = c.now() + 300; // bounded whatever the machine's load
    for (let round = 0; round < opts.rounds && c.now() < deadline; round++) {
      // Alternate the order each round so neither side always runs first.
      for (const name of round % 2 ? [...names].reverse() : names) {
        stream.program.setFilter(EXPRESSIONS[name][0]);
        samples[name].push(program.testRun({ data: FRAME, repeat: opts.repeat }).durationNs);
      }
      c.log(`round ${round + 1}: ${names.map((k) => `${k} ${samples[k][round]}`).join(', ')}`);
    }
    if (stream.readAvailable().length) c.fail('an expression selected the frame: the figures would include a ring record');
  } finally {
    stream.close();
  }
  const med = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, c.median(v)]));
  const perOp = (k) => c.round((med[`${k}/${n}`] - med[`${k}/1`]) / (n - 1), 2);
  const figures = {
    bench: 'filter-ops',
    ...c.machine(),
    load: c.loadavg(),
    nice,
    rounds: samples[Object.keys(samples)[0]].length,
    repeat: opts.repeat,
    ops_per_chain: n,
    ns_per_packet: med,
    ns_per_op: Object.fromEntries(Object.keys(TESTS).map((k) => [k, perOp(k)])),
    // Subject / baseline, per instruction (1.0: the new instruction costs what the old one does).
    ratio_field_eq_vs_dport: c.round(perOp('field_eq') / perOp('dport_eq'), 2),
    ratio_field_gt_vs_dport_range: c.round(perOp('field_gt') / perOp('dport_range'), 2),
  };
  c.report(figures);
}

main();
