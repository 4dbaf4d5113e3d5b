#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// bench/packet-view: what packets() costs per event on the JavaScript side, for this build
// and a baseline build (another checkout's dist/lib) in the same run. The packet program,
// loaded and attached nowhere, runs a real SYN frame (BPF_PROG_TEST_RUN) until its ring holds
// one full read; that batch is then turned into events (PacketStream's decode step: a copy of
// the read and one lazy view per record) over and over, alone and with one kind of field read
// from every event:
//   views     the views only (no field read)
//   seq       one number field
//   flags     the flag byte (flagBits; `flags` in builds before the rename)
//   address   the source address as text (saddr; `src` before the rename)
//   line      formatPacketBody(), the tcpdump line without time
// Each build runs in its own process; runs alternate between the builds and the figures are
// medians of the rounds (ns of process CPU time per event, garbage collection included).
//
//   node bench/packet-view.js [--base DIR] [--rounds 5] [--seconds 0.5]
'use strict';
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const c = require('./lib/common');

const opts = c.args({ base: '', rounds: 5, seconds: 0.5, child: '' });
const KINDS = ['views', 'seq', 'flags', 'address', 'line'];

function child(lib) {
  const { openDetachedPackets, formatPacketBody } = require(path.join(lib, 'probes', 'packets'));
  const { tcpFrame } = require(path.join(lib, 'bpf', 'packet'));
  const frame = tcpFrame({
    src: '192.0.2.10', dst: '198.51.100.20', sport: 43512, dport: 443, seq: 123456789,
    flags: { syn: true }, window: 64240, options: { mss: 1460, sackPermitted: true, timestamps: [2717823, 0], wscale: 7 },
  });
  const stream = openDetachedPackets({});
  try {
    const prog = stream.program.object.program('packets_tc');
    // The detached program's ring (64 KiB) holds about 580 events: fill it, read it once.
    prog.testRun({ data: frame, repeat: 4096 });
    const batch = stream.ring.readAvailable();
    if (!batch || batch.count < 100) throw new Error(`expected a full ring, got ${batch ? batch.count : 0} records`);
    const renamed = 'flagBits' in stream.decode(batch)[0];
    const read = {
      views: () => 0,
      seq: (e) => e.seq,
      flags: renamed ? (e) => e.flagBits : (e) => e.flags,
      address: renamed ? (e) => e.saddr.length : (e) => e.src.length,
      line: (e) => formatPacketBody(e).length,
    };
    const out = { renamed, batch_events: batch.count, batch_bytes: batch.bytes.length };
    for (const kind of KINDS) {
      const f = read[kind];
      // one function object per kind: each keeps its own type feedback
      const run = new Function('stream', 'batch', 'f', `
        const events = stream.decode(batch);
        let s = 0;
        for (let i = 0; i < events.length; i++) s += f(events[i]) | 0;
        return s + events.length;`);
      let events = 0;
      let sink = 0;
      for (let t0 = c.now(); c.now() - t0 < opts.seconds / 4;) sink += run(stream, batch, f); // warm-up
      const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1e6; };
      const cpu0 = cpu();
      while (cpu() - cpu0 < opts.seconds) {
        for (let i = 0; i < 16; i++) sink += run(stream, batch, f);
        events += 16 * batch.count;
      }
      out[`ns_${kind}`] = +(((cpu() - cpu0) * 1e9) / events).toFixed(2);
      if (sink === -1) console.error(sink);
    }
    process.stdout.write(`${JSON.stringify(out)}\n`);
  } finally {
    stream.close();
  }
}

function main() {
  const subject = path.join(c.ROOT, 'dist', 'lib');
  const builds = [['subject', subject]];
  if (opts.base) builds.push(['base', path.resolve(opts.base)]);
  const results = Object.fromEntries(builds.map(([name]) => [name, []]));
  for (let round = 0; round < opts.rounds; round++) {
    // alternate which build goes first, so neither always meets the same minute of load
    const order = round % 2 ? [...builds].reverse() : builds;
    for (const [name, lib] of order) {
      const r = spawnSync(process.execPath, [__filename, '--child', lib, '--seconds', String(opts.seconds)], { encoding: 'utf8', timeout: 120_000 });
      if (r.status !== 0) c.fail(`${name} (${lib}) failed: ${r.stderr || r.signal}`);
      results[name].push(JSON.parse(r.stdout.trim().split('\n').pop()));
      process.stderr.write(`round ${round + 1} ${name}: ${r.stdout.trim()}\n`);
    }
  }
  const summary = { bench: 'packet-view', rounds: opts.rounds, load: require('node:os').loadavg().map((x) => +x.toFixed(1)) };
  for (const [name] of builds) {
    const runs = results[name];
    summary[name] = { batch_events: runs[0].batch_events };
    for (const kind of KINDS) summary[name][`ns_${kind}`] = c.median(runs.map((r) => r[`ns_${kind}`]));
  }
  if (opts.base) {
    for (const kind of KINDS) summary[`ratio_${kind}`] = +(summary.subject[`ns_${kind}`] / summary.base[`ns_${kind}`]).toFixed(3);
  }
  process.stdout.write(`${JSON.stringify(summary)}\n`);
}

if (opts.child) child(opts.child);
else main();
