// Shared by the benchmarks: where things are, the C baseline helper, clocks, machine facts.
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const ROOT = path.resolve(__dirname, '..', '..');
const OUT = path.join(ROOT, 'bench', 'out');

/** The compiled runtime (dist/, from `node scripts/build.js`). */
function runtime() {
  const entry = path.join(ROOT, 'dist', 'lib', 'bpf', 'index.js');
  if (!fs.existsSync(entry)) fail(`${entry} is missing: run \`node scripts/build.js\` first`);
  return require(entry);
}

/**
 * Path of a bench BPF object. TCPSCOPE_BENCH_BPF_DIR points at objects built elsewhere, e.g.
 * against a patched bpf/include/tcpscope.h (see bench/README.md, "Trying a runtime change").
 */
function bpfObject(name) {
  const dir = process.env.TCPSCOPE_BENCH_BPF_DIR || path.join(ROOT, 'build', 'bpf');
  const file = path.join(dir, `${name}.bpf.o`);
  if (!fs.existsSync(file)) fail(`${file} is missing: run \`node scripts/build.js\` first`);
  return file;
}

/** Builds bench/out/bench_c (the C baselines) when missing or older than its source. */
function cHelper() {
  const src = path.join(ROOT, 'bench', 'c', 'bench_c.c');
  const bin = path.join(OUT, 'bench_c');
  if (fs.existsSync(bin) && fs.statSync(bin).mtimeMs > fs.statSync(src).mtimeMs) return bin;
  fs.mkdirSync(OUT, { recursive: true });
  const pc = spawnSync('pkg-config', ['--cflags', '--libs', 'libbpf'], { encoding: 'utf8' });
  if (pc.status !== 0) fail('pkg-config --cflags --libs libbpf failed: install libbpf-dev and pkg-config');
  const cc = process.env.CC || 'cc';
  const args = ['-O2', '-Wall', '-o', bin, src, ...pc.stdout.trim().split(/\s+/), '-lpthread'];
  const r = spawnSync(cc, args, { encoding: 'utf8' });
  if (r.status !== 0) fail(`${cc} ${args.join(' ')} failed:\n${r.stderr}`);
  return bin;
}

/** Runs the C helper and returns the JSON line it prints last. */
function runC(args) {
  const r = spawnSync(cHelper(), args.map(String), { encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) fail(`bench_c ${args.join(' ')} failed (${r.status ?? r.signal}):\n${r.stderr}`);
  return lastJson(r.stdout);
}

function lastJson(text) {
  const lines = text.trim().split('\n').filter((l) => l.startsWith('{'));
  if (!lines.length) throw new Error(`no JSON line in:\n${text}`);
  return JSON.parse(lines[lines.length - 1]);
}

/** Monotonic seconds (CLOCK_MONOTONIC, the same clock in every thread). */
function now() {
  return Number(process.hrtime.bigint()) / 1e9;
}

/** CPU seconds (user + system) of one thread of this process; the main thread by default. */
function threadCpu(tid = process.pid) {
  const stat = fs.readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state): utime is field 14, stime field 15
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function median(values) {
  const s = [...values].sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)] : NaN;
}

function round(x, digits = 3) {
  if (!Number.isFinite(x)) return x;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** What the figures came from. */
function machine() {
  const cpuinfo = fs.readFileSync('/proc/cpuinfo', 'utf8');
  const model = /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? os.cpus()[0]?.model ?? 'unknown';
  return { nproc: os.availableParallelism?.() ?? os.cpus().length, cpu: model, kernel: os.release(), node: process.version };
}

function loadavg() {
  return os.loadavg().map((x) => round(x, 2));
}

/**
 * Raises this process's scheduling priority where allowed (root), so that other work on a
 * shared machine disturbs the figures less. TCPSCOPE_BENCH_NICE=0 turns it off.
 */
function raisePriority() {
  if (process.env.TCPSCOPE_BENCH_NICE === '0') return 0;
  const nice = -20;
  try {
    os.setPriority(0, nice);
  } catch {
    return 0;
  }
  // With autogroup scheduling, nice only counts inside the session's group.
  try { fs.writeFileSync('/proc/self/autogroup', String(nice)); } catch { /* not available */ }
  return nice;
}

/** Parses --name value / --flag options. */
function args(defaults) {
  const out = { ...defaults };
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    const m = /^--([\w-]+)(?:=(.*))?$/.exec(argv[i]);
    if (!m) fail(`unexpected argument ${argv[i]}`);
    const key = m[1].replace(/-(\w)/g, (_, c) => c.toUpperCase());
    if (!(key in defaults)) fail(`unknown option --${m[1]} (options: ${Object.keys(defaults).join(', ')})`);
    let value = m[2];
    if (value === undefined) value = typeof defaults[key] === 'boolean' ? 'true' : argv[++i];
    out[key] = typeof defaults[key] === 'number' ? Number(value) : typeof defaults[key] === 'boolean' ? value !== 'false' : value;
  }
  return out;
}

function fail(message) {
  console.error(`bench: ${message}`);
  process.exit(1);
}

/** Progress and details go to stderr; stdout carries only the final JSON line. */
function log(...parts) {
  if (process.env.TCPSCOPE_BENCH_QUIET !== '1') console.error(...parts);
}

/** Prints the benchmark's figures as its last line. */
function report(figures) {
  process.stdout.write(`${JSON.stringify(figures)}\n`);
}

module.exports = { ROOT, OUT, runtime, bpfObject, cHelper, runC, lastJson, now, threadCpu, median, round, machine, loadavg, raisePriority, args, fail, log, report };
