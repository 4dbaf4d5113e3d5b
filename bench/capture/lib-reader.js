#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// Library iterator phase of bench/capture: packets() on one interface, counting decoded
// events until SIGINT; prints {received, lost} as JSON.
'use strict';
const path = require('node:path');
// latency: 'live' is the library's default batching (10 ms latency, 64 KiB wake-ups);
// 'buffered' batches as tcpdump -w does (1 s, wake-ups at 4 MiB of a 32 MiB ring).
// lib: another build's dist/lib, for A/B runs.
const [iface, hook = 'tc', latency = 'live', lib = path.join(__dirname, '..', '..', 'dist', 'lib')] = process.argv.slice(2);
const { packets } = require(lib);
const batching = latency === 'buffered' ? { latencyMs: 1000, ringBytes: 1 << 25, wakeupBytes: 1 << 22 } : {};
const controller = new AbortController();
process.on('SIGINT', () => controller.abort());
(async () => {
  const probe = packets({ interfaces: [iface], hook, signal: controller.signal, ...batching });
  process.stderr.write('listening on\n');
  let n = 0;
  let syns = 0;
  for await (const events of probe.batches()) {
    n += events.length;
    // flagBits since the events' rename; an A/B build from before it has the byte in flags
    for (const e of events) if ((e.flagBits ?? e.flags) === 2) syns++;
  }
  const s = probe.stats();
  process.stdout.write(`${JSON.stringify({ received: n, syns, lost: s.lost })}\n`);
})().catch((e) => { console.error(e); process.exit(1); });
