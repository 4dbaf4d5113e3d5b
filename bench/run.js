#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// npm run bench: runs every benchmark, each in its own process, and prints the JSON line
// each one ends with (stdout carries only JSON lines; progress goes to stderr). The lines are
// also written to bench/out/latest.jsonl.
//
//   node bench/run.js [--only ringbuf,packet-cost,map-dump,filter-ops] [--quick] [--quiet]
//
// Needs root (or CAP_BPF + CAP_PERFMON + CAP_NET_ADMIN), `node scripts/build.js` done, and a C
// compiler with libbpf-dev for the C baselines (built into bench/out/ on first use).
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { spawn } = require('node:child_process');
const c = require('./lib/common');

const opts = c.args({ only: '', quick: false, quiet: false });
if (opts.quiet) process.env.TCPSCOPE_BENCH_QUIET = '1';

const BENCHES = [
  { name: 'ringbuf', script: 'ringbuf.js', args: ['--record-bytes', '64'] },
  { name: 'ringbuf', script: 'ringbuf.js', args: ['--record-bytes', '256'] },
  { name: 'packet-cost', script: 'packet-cost.js', args: [] },
  { name: 'map-dump', script: 'map-dump.js', args: [] },
  { name: 'startup', script: 'startup.js', args: [] },
  { name: 'filter-ops', script: 'filter-ops.js', args: [] },
];
const QUICK = { 'ringbuf.js': ['--rounds', '1', '--seconds', '0.5', '--drain-seconds', '0.1'], 'packet-cost.js': ['--rounds', '1', '--seconds', '0.5'], 'map-dump.js': ['--rounds', '1', '--seconds', '0.3'], 'startup.js': ['2'], 'filter-ops.js': ['--rounds', '3', '--repeat', '20000'] };

function preflight() {
  for (const f of ['dist/lib/bpf/index.js', 'build/Release/tcpscope.node', 'build/bpf/bench_ring.bpf.o', 'build/bpf/bench_packet.bpf.o', 'build/bpf/bench_map.bpf.o']) {
    if (!process.env.TCPSCOPE_BENCH_BPF_DIR || !f.startsWith('build/bpf/')) {
      if (!fs.existsSync(path.join(c.ROOT, f))) c.fail(`${f} is missing: run \`node scripts/build.js\` first`);
    }
  }
  const priv = c.runtime().bpfPrivilege();
  if (!priv.ok) c.fail(`BPF is not available to this process: ${priv.reason}`);
  c.cHelper();
}

function runOne(bench) {
  const args = [path.join(__dirname, bench.script), ...bench.args, ...(opts.quick ? QUICK[bench.script] : [])];
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', opts.quiet ? 'ignore' : 'inherit'] });
    // every benchmark bounds its own loops; this bounds the whole run should one hang
    const limit = setTimeout(() => child.kill('SIGKILL'), 15 * 60 * 1000);
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('close', (code, signal) => {
      clearTimeout(limit);
      if (code !== 0) {
        resolve({ error: `${bench.script} ${bench.args.join(' ')} failed (${code ?? signal})` });
        return;
      }
      try {
        resolve({ line: JSON.stringify(c.lastJson(out)) });
      } catch (e) {
        resolve({ error: `${bench.script}: ${e.message}` });
      }
    });
  });
}

async function main() {
  preflight();
  // children inherit the priority (and the session's autogroup)
  const nice = c.raisePriority();
  const only = opts.only ? new Set(opts.only.split(',')) : null;
  const selected = BENCHES.filter((b) => !only || only.has(b.name));
  if (!selected.length) c.fail(`--only matches no benchmark (${[...new Set(BENCHES.map((b) => b.name))].join(', ')})`);
  const lines = [JSON.stringify({ bench: 'machine', ...c.machine(), nice, loadavg: c.loadavg(), bpf_objects: process.env.TCPSCOPE_BENCH_BPF_DIR || 'build/bpf', date: new Date().toISOString() })];
  process.stdout.write(`${lines[0]}\n`);
  let failed = 0;
  for (const bench of selected) {
    c.log(`\n== ${bench.name} ${bench.args.join(' ')}`);
    const r = await runOne(bench);
    if (r.error) {
      failed++;
      console.error(`bench: ${r.error}`);
      continue;
    }
    lines.push(r.line);
    process.stdout.write(`${r.line}\n`);
  }
  fs.mkdirSync(c.OUT, { recursive: true });
  fs.writeFileSync(path.join(c.OUT, 'latest.jsonl'), `${lines.join('\n')}\n`);
  if (failed) process.exit(1);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
