#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// bench/startup: opening, loading and attaching every built-in probe (packets on lo,
// connections, retransmits, rtt, resets, drops), each in a fresh process so no BTF or
// object cache is warm. Target: < 1 s in all. JSON line last.
'use strict';
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..');
const child = `
  const lib = require(${JSON.stringify(path.join(ROOT, 'dist', 'lib'))});
  const t0 = performance.now();
  const per = {};
  const open = (name, f) => { const s = performance.now(); const p = f(); per[name] = +(performance.now() - s).toFixed(1); return p; };
  const probes = [
    open('packets', () => lib.packets({ interfaces: ['lo'] })),
    open('connections', () => lib.connections()),
    open('retransmits', () => lib.retransmits()),
    open('rtt', () => lib.rtt()),
    open('resets', () => lib.resets()),
    open('drops', () => lib.drops()),
  ];
  const total = performance.now() - t0;
  const c0 = performance.now();
  for (const p of probes) p.close();
  console.log(JSON.stringify({ total, per, close: performance.now() - c0 }));
`;
const rounds = Number(process.argv[2] ?? 5);
const runs = [];
for (let i = 0; i < rounds; i++) {
  const r = spawnSync(process.execPath, ['-e', child], { encoding: 'utf8', timeout: 60000 });
  if (r.status !== 0) { console.error(r.stderr); process.exit(1); }
  runs.push(JSON.parse(r.stdout.trim().split('\n').pop()));
  process.stderr.write(`startup round ${i + 1}: ${runs[i].total.toFixed(0)} ms\n`);
}
const totals = runs.map((r) => r.total).sort((a, b) => a - b);
const median = totals[Math.floor(totals.length / 2)];
const perProbe = Object.fromEntries(Object.keys(runs[0].per).map((k) => [k, +runs.map((r) => r.per[k]).sort((a, b) => a - b)[Math.floor(runs.length / 2)].toFixed(1)]));
console.log(JSON.stringify({ bench: 'startup', probes: Object.keys(perProbe).length, median_ms: +median.toFixed(1), max_ms: +totals[totals.length - 1].toFixed(1), per_probe_median_ms: perProbe, close_median_ms: +runs.map((r) => r.close).sort((a, b) => a - b)[Math.floor(runs.length / 2)].toFixed(1), target_ms: 1000, target_met: median < 1000, loadavg: require('node:os').loadavg() }));
