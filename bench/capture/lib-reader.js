#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// Library iterator phase of bench/capture: packets() on one interface, counting decoded
// events until SIGINT; prints {received, lost} as JSON.
//   latency: 'live' is the library's default batching (10 ms latency, 64 KiB wake-ups);
//     'buffered' batches as tcpdump -w does (1 s, wake-ups at 4 MiB of a 32 MiB ring).
//   lib: another build's dist/lib, for A/B runs.
// Two floors for the 'live' figure, the same program attached the same way:
//   reader 'c': the ring is read by `bench_c consume` (libbpf's consumer, C) instead, waking
//     as the library's reader does (10 ms timer, the producer's 64 KiB wake-ups); this
//     process only loads the probe and waits (its CPU counts too, see run.js).
//   reader 'raw': the library's reader without decoding (rawBatches(), counting records):
//     what the reading loop costs apart from the events.
//   reader 'timer': nothing reads the ring (received 0); the process only wakes every
//     10 ms while the traffic lasts (run.js sends SIGUSR2 when it ends, as lib_live's
//     reader then goes idle): what Node pays to wake at that rate at all.
'use strict';
const path = require('node:path');
const { spawn } = require('node:child_process');
const [iface, hook = 'tc', latency = 'live', lib = path.join(__dirname, '..', '..', 'dist', 'lib'), reader = 'js'] = process.argv.slice(2);
const { packets } = require(lib);
const batching = latency === 'buffered' ? { latencyMs: 1000, ringBytes: 1 << 25, wakeupBytes: 1 << 22 } : {};
const controller = new AbortController();

function flagsOffset(probe) {
  const t = probe.program.object.btf.resolve('struct packet_event');
  return t.members.find((m) => m.name === 'flags').bitOffset / 8;
}

async function readInC(probe) {
  const { cHelper } = require('../lib/common');
  const fd = probe.program.object.map('packets').fd;
  const child = spawn(cHelper(), ['consume', '3', '10', String(flagsOffset(probe))], { stdio: ['ignore', 'pipe', 'pipe', fd] });
  let out = '', err = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { err += d; });
  await new Promise((resolve, reject) => {
    child.stderr.on('data', () => { if (/listening on/.test(err)) resolve(); });
    child.on('exit', (code) => reject(new Error(`bench_c consume exited (${code}): ${err}`)));
  });
  process.stderr.write('listening on\n');
  await new Promise((resolve) => controller.signal.addEventListener('abort', resolve));
  child.kill('SIGINT');
  await new Promise((resolve) => child.on('exit', resolve));
  const r = JSON.parse(out.trim().split('\n').pop());
  return { received: r.received, syns: r.syns, lost: probe.stats().lost };
}

async function onlyWake() {
  process.stderr.write('listening on\n');
  let ticks = 0;
  const timer = setInterval(() => { ticks++; }, 10);
  // A timer that never fires keeps the process alive once the 10 ms one is cleared.
  const keepAlive = setInterval(() => {}, 1 << 30);
  process.on('SIGUSR2', () => clearInterval(timer));
  await new Promise((resolve) => controller.signal.addEventListener('abort', resolve));
  clearInterval(timer);
  clearInterval(keepAlive);
  return { received: 0, syns: 0, lost: 0, ticks };
}

async function readRaw(probe) {
  process.stderr.write('listening on\n');
  let n = 0;
  for await (const batch of probe.rawBatches()) n += batch.count;
  return { received: n, syns: 0, lost: probe.stats().lost };
}

async function readInJs(probe) {
  process.stderr.write('listening on\n');
  let n = 0;
  let syns = 0;
  for await (const events of probe.batches()) {
    n += events.length;
    // flagBits since the events' rename; an A/B build from before it has the byte in flags
    for (const e of events) if ((e.flagBits ?? e.flags) === 2) syns++;
  }
  return { received: n, syns, lost: probe.stats().lost };
}

process.on('SIGINT', () => controller.abort());
(async () => {
  const probe = packets({ interfaces: [iface], hook, signal: controller.signal, ...batching });
  const result = reader === 'c' ? await readInC(probe) : reader === 'timer' ? await onlyWake() : reader === 'raw' ? await readRaw(probe) : await readInJs(probe);
  probe.close();
  process.stdout.write(`${JSON.stringify(result)}\n`);
})().catch((e) => { console.error(e); process.exit(1); });
