#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// vmtest/matrix.mjs — `npm run test:vmtest`: run the focused integration suite
// (vmtest/suite.txt) in a VM per kernel of vmtest/kernels.txt, two VMs at a
// time, and print a table kernel × test file → pass/fail/skip.
//
//   npm run test:vmtest [-- options] [-- FILE...]
//   node vmtest/matrix.mjs [options] [FILE...]
//
// Options:
//   --kernel NAME[,NAME]  only these kernels (repeatable; default: all)
//   --jobs N              VMs at a time (default VMTEST_JOBS or 2; 1 vCPU each)
//   --timeout SEC         limit per VM, boot included (default VMTEST_TIMEOUT or 1200)
//   --selftest            also run vmtest/selftest (always run when the suite is empty)
//   --suite FILE          list of test files (default vmtest/suite.txt)
//   --out DIR             results (default .vmtest-cache/runs/matrix-DATE)
//   --verbose             print every VM's test output, not only failing ones
//   --list                print the kernels and test files, run nothing
// FILE arguments replace the suite list.
//
// Cells: pass / fail / skip (every test skipped) / timeout / error (no result:
// vitest or the VM died) / missing, with the file's duration in the guest.
// Exit status 0 when every kernel booted and no test file failed, else 1
// (2 on usage errors). TCPSCOPE_REQUIRE_BPF=1 is set in the guests unless the
// caller sets it otherwise.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const VMTEST = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(VMTEST, '..');
const SELFTEST = 'vmtest/selftest/kernel.test.ts';

function usage(code) {
  const text = fs.readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n');
  const lines = [];
  for (const l of text.slice(1)) {
    if (!l.startsWith('//')) break;
    lines.push(l.replace(/^\/\/ ?/, ''));
  }
  (code ? console.error : console.log)(lines.join('\n'));
  process.exit(code);
}
function die(msg) {
  console.error(`vmtest: error: ${msg}`);
  process.exit(2);
}
const log = (msg) => console.error(`vmtest: ${msg}`);

// ---- arguments -------------------------------------------------------------
const opts = {
  kernels: [],
  jobs: Number(process.env.VMTEST_JOBS || 2),
  timeout: Number(process.env.VMTEST_TIMEOUT || 1200),
  selftest: false,
  suite: path.join(VMTEST, 'suite.txt'),
  out: '',
  verbose: false,
  list: false,
  files: [],
};
{
  const args = process.argv.slice(2);
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const [flag, inline] = a.startsWith('--') && a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const value = () => {
      if (inline !== undefined) return inline;
      if (i + 1 >= args.length) die(`${flag} needs a value`);
      return args[++i];
    };
    switch (flag) {
      case '--kernel': opts.kernels.push(...value().split(',').filter(Boolean)); break;
      case '--jobs': opts.jobs = Number(value()); break;
      case '--timeout': opts.timeout = Number(value()); break;
      case '--selftest': opts.selftest = true; break;
      case '--suite': opts.suite = path.resolve(value()); break;
      case '--out': opts.out = path.resolve(value()); break;
      case '--verbose': opts.verbose = true; break;
      case '--list': opts.list = true; break;
      case '-h': case '--help': usage(0); break;
      case '--': opts.files.push(...args.slice(i + 1)); i = args.length; break;
      default:
        if (a.startsWith('-')) die(`unknown option ${a} (see --help)`);
        opts.files.push(a);
    }
  }
  if (!(opts.jobs >= 1)) die('--jobs takes a number >= 1');
  if (!(opts.timeout > 0)) die('--timeout takes seconds');
}

// ---- kernels and test files --------------------------------------------------
const readList = (file) =>
  fs.readFileSync(file, 'utf8').split('\n').map((l) => l.replace(/#.*/, '').trim()).filter(Boolean);

const allKernels = readList(path.join(VMTEST, 'kernels.txt')).map((l) => l.split(/\s+/)[0]);
const kernels = opts.kernels.length ? opts.kernels : allKernels;
for (const k of kernels) if (!allKernels.includes(k)) die(`kernel '${k}' is not in vmtest/kernels.txt (known: ${allKernels.join(' ')})`);

function expand(entry) {
  // A file, or a directory (every *.test.ts / *.test.js below it), relative to the repo root.
  const abs = path.resolve(ROOT, entry);
  if (!fs.existsSync(abs)) return null;
  if (fs.statSync(abs).isDirectory()) {
    const found = [];
    const walk = (d) => {
      for (const e of fs.readdirSync(d, { withFileTypes: true })) {
        if (e.name === 'node_modules') continue;
        const p = path.join(d, e.name);
        if (e.isDirectory()) walk(p);
        else if (/\.test\.[cm]?[jt]s$/.test(e.name)) found.push(path.relative(ROOT, p));
      }
    };
    walk(abs);
    return found.sort();
  }
  return [path.relative(ROOT, abs)];
}

const entries = opts.files.length ? opts.files : fs.existsSync(opts.suite) ? readList(opts.suite) : [];
const missing = [];
const files = [];
for (const e of entries) {
  const x = expand(e);
  if (x === null) missing.push(e);
  else for (const f of x) if (!files.includes(f)) files.push(f);
}
// The selftest has its own vitest config (the project's include does not cover vmtest/).
if (files.includes(SELFTEST)) {
  files.splice(files.indexOf(SELFTEST), 1);
  opts.selftest = true;
}
const selftest = opts.selftest || files.length === 0;

if (opts.list) {
  console.log(`kernels: ${kernels.join(' ')}`);
  console.log(`test files (${path.relative(ROOT, opts.suite)}):`);
  for (const f of files) console.log(`  ${f}`);
  for (const m of missing) console.log(`  ${m}  (missing)`);
  if (selftest) console.log(`  ${SELFTEST}  (selftest)`);
  process.exit(0);
}

if (missing.length) log(`warning: listed but not found (counted as failures): ${missing.join(', ')}`);
if (files.length === 0) log(`no test files in ${path.relative(ROOT, opts.suite)}${missing.length ? ' exist' : ''}: running the vmtest selftest only`);
if (!fs.existsSync(path.join(ROOT, 'node_modules', '.bin', 'vitest'))) die("node_modules/.bin/vitest not found: run 'npm ci' first");
if (files.length && !fs.existsSync(path.join(ROOT, 'build', 'Release', 'tcpscope.node'))) {
  log("warning: build/Release/tcpscope.node not found: the BPF tests will fail in the guests (run 'npm run build' first)");
}

const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-');
const outDir = opts.out || path.join(ROOT, '.vmtest-cache', 'runs', `matrix-${stamp}`);
fs.mkdirSync(outDir, { recursive: true });

// ---- fetch kernels first (downloads are sequential and cached) ----------------
{
  log(`preparing kernels: ${kernels.join(' ')}`);
  const cacheDir = process.env.VMTEST_CACHE || path.join(ROOT, '.vmtest-cache');
  fs.mkdirSync(cacheDir, { recursive: true });
  const lock = path.join(cacheDir, '.fetch.lock');
  const r = spawnSync('flock', [lock, path.join(VMTEST, 'fetch'), ...kernels], { stdio: ['ignore', 'ignore', 'inherit'] });
  if (r.status !== 0) die('vmtest/fetch failed');
}

// ---- run the VMs ----------------------------------------------------------
const env = { ...process.env, TCPSCOPE_REQUIRE_BPF: process.env.TCPSCOPE_REQUIRE_BPF ?? '1' };
const guestCmd = ['vmtest/guest/vitest.sh', ...(selftest ? ['--selftest'] : []), ...files];
log(`${kernels.length} kernel(s) × ${files.length + (selftest ? 1 : 0)} test file(s), ${Math.min(opts.jobs, kernels.length)} VM(s) at a time; results in ${path.relative(ROOT, outDir)}`);

function runKernel(kernel) {
  const dir = path.join(outDir, kernel);
  fs.mkdirSync(dir, { recursive: true });
  const started = Date.now();
  return new Promise((resolve) => {
    const stderr = fs.openSync(path.join(dir, 'run.log'), 'w');
    const child = spawn(
      path.join(VMTEST, 'run'),
      ['--kernel', kernel, '--quiet', '--out', dir, '--timeout', String(opts.timeout), '--cwd', ROOT, '--', ...guestCmd],
      { cwd: ROOT, env, stdio: ['ignore', stderr, stderr] },
    );
    child.on('close', (code, signal) => {
      fs.closeSync(stderr);
      const res = collect(kernel, dir, code ?? 128);
      res.wall_s = (Date.now() - started) / 1000;
      log(`[${kernel}] ${res.ok ? 'ok' : 'FAILED'}: exit ${code ?? signal}, boot ${fmt(res.boot_s)}s, vitest ${fmt(res.vitest_s)}s${res.reason ? ` (${res.reason})` : ''}`);
      resolve(res);
    });
  });
}

const fmt = (n) => (typeof n === 'number' ? n.toFixed(1) : '?');
const readJson = (p) => {
  try {
    return JSON.parse(fs.readFileSync(p, 'utf8'));
  } catch {
    return null;
  }
};

function fileStatus(tr) {
  const asserts = tr.assertionResults ?? [];
  if (tr.status === 'failed' || asserts.some((a) => a.status === 'failed')) return 'fail';
  if (tr.status === 'skipped' || asserts.length === 0 || asserts.every((a) => ['skipped', 'pending', 'todo', 'disabled'].includes(a.status))) return 'skip';
  return 'pass';
}

// Without a JSON report (vitest killed by a timeout, guest crash), take the
// per-file summary lines of vitest's default reporter from the output log:
//   " ✓ test/a.test.ts (3 tests | 1 skipped) 2447ms", " ❯ test/b.test.ts (26 tests | 3 failed) 271307ms"
function statusesFromLog(dir) {
  const found = {};
  let text = '';
  try {
    text = fs.readFileSync(path.join(dir, 'output.log'), 'utf8').replace(/\x1b\[[0-9;]*m/g, '');
  } catch {
    return found;
  }
  const re = /^\s*([✓❯×↓])\s+(\S+\.test\.[cm]?[jt]s)\s+\(([^)]*)\)(?:\s+(\d+)ms)?/gmu;
  for (const m of text.matchAll(re)) {
    const [, mark, file, counts, ms] = m;
    const failed = /\d+ failed/.test(counts);
    const total = Number((counts.match(/(\d+) tests?/) ?? [])[1] ?? 0);
    const skipped = Number((counts.match(/(\d+) skipped/) ?? [])[1] ?? 0);
    const status = failed || mark === '×' || mark === '❯' ? 'fail' : mark === '↓' || (total > 0 && skipped === total) ? 'skip' : 'pass';
    found[path.relative(ROOT, path.resolve(ROOT, file))] = { status, ms: ms ? Number(ms) : undefined };
  }
  return found;
}

function collect(kernel, dir, exitCode) {
  const summary = readJson(path.join(dir, 'summary.json')) ?? {};
  const cells = {};
  const times = {};
  for (const report of ['selftest.json', 'vitest.json']) {
    const j = readJson(path.join(dir, report));
    for (const tr of j?.testResults ?? []) {
      const f = path.relative(ROOT, tr.name);
      cells[f] = fileStatus(tr);
      if (tr.endTime && tr.startTime) times[f] = (tr.endTime - tr.startTime) / 1000;
    }
  }
  for (const [f, { status, ms }] of Object.entries(statusesFromLog(dir))) {
    if (cells[f]) continue;
    cells[f] = status;
    if (ms !== undefined) times[f] = ms / 1000;
  }
  let vitest_s = 0;
  let timed = false;
  try {
    for (const line of fs.readFileSync(path.join(dir, 'timings'), 'utf8').trim().split('\n')) {
      const [, s] = line.split(' ');
      vitest_s += Number(s);
      timed = true;
    }
  } catch {}
  const wanted = [...files, ...(selftest ? [SELFTEST] : [])];
  const vmFailed = summary.status === undefined || [124, 125, 126].includes(summary.status) || exitCode >= 124;
  // A file with no result: still running when the time ran out, or vitest/the VM died.
  for (const f of wanted) if (!cells[f]) cells[f] = summary.status === 124 ? 'timeout' : 'error';
  const ok = !vmFailed && exitCode === 0 && wanted.every((f) => ['pass', 'skip'].includes(cells[f]));
  return {
    kernel,
    release: summary.release,
    packages: summary.packages,
    exit: exitCode,
    reason: summary.reason || (exitCode !== 0 && !vmFailed ? 'vitest failed' : ''),
    ok,
    boot_s: summary.boot_s ?? undefined,
    vitest_s: timed ? vitest_s : undefined,
    command_s: summary.command_s ?? undefined,
    cells,
    times,
    dir,
  };
}

async function pool(items, n, fn) {
  const results = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        results[i] = await fn(items[i]);
      }
    }),
  );
  return results;
}

let interrupted = false;
process.on('SIGINT', () => { interrupted = true; });
const results = await pool(kernels, opts.jobs, runKernel);

// ---- report -----------------------------------------------------------------
for (const r of results) {
  if (r.ok && !opts.verbose) continue;
  const header = `===== ${r.kernel} (${r.release ?? '?'}): ${r.ok ? 'ok' : 'FAILED'} =====`;
  console.log(`\n${header}`);
  try {
    const out = fs.readFileSync(path.join(r.dir, 'output.log'), 'utf8').split('\n');
    if (out.length > 300 && !opts.verbose) console.log(`[... ${out.length - 300} lines, full output in ${path.relative(ROOT, r.dir)}/output.log]`);
    console.log((opts.verbose ? out : out.slice(-300)).join('\n'));
  } catch {
    console.log('(no test output)');
  }
  const runLog = fs.readFileSync(path.join(r.dir, 'run.log'), 'utf8');
  if (runLog.trim()) console.log(runLog); // console log of a VM that failed, and vmtest/run's messages
}

const rows = [...files, ...missing, ...(selftest ? [SELFTEST] : [])];
const table = [['test file', ...kernels]];
for (const f of rows) {
  table.push([f, ...results.map((r) => {
    if (missing.includes(f)) return 'missing';
    const t = r.times[f];
    return `${r.cells[f] ?? '-'}${t !== undefined ? ` ${t < 10 ? t.toFixed(1) : t.toFixed(0)}s` : ''}`;
  })]);
}
table.push(null);
table.push(['VM exit status', ...results.map((r) => String(r.exit))]);
table.push(['boot (s)', ...results.map((r) => fmt(r.boot_s))]);
table.push(['vitest (s)', ...results.map((r) => fmt(r.vitest_s))]);
const widths = table[0].map((_, c) => Math.max(...table.filter(Boolean).map((row) => row[c].length)));
const line = (row) => row.map((cell, c) => cell.padEnd(widths[c])).join('  ').trimEnd();
console.log('');
console.log(line(table[0]));
console.log(widths.map((w) => '-'.repeat(w)).join('  '));
for (const row of table.slice(1)) console.log(row ? line(row) : widths.map((w) => '-'.repeat(w)).join('  '));
console.log('');
const kw = Math.max(...kernels.map((k) => k.length));
for (const r of results) console.log(`${r.kernel.padEnd(kw)}  ${r.release ?? '?'}  [${r.packages ?? '?'}]`);

const failed = results.filter((r) => !r.ok).map((r) => r.kernel);
fs.writeFileSync(
  path.join(outDir, 'results.json'),
  JSON.stringify({ files: rows, missing, selftest, kernels: results.map(({ dir, ...r }) => r) }, null, 2),
);
const passed = results.length - failed.length;
console.log('');
if (failed.length) console.log(`vmtest: failed kernels: ${failed.join(' ')}`);
if (missing.length) console.log(`vmtest: missing test files: ${missing.join(' ')}`);
console.log(`kernels: ${passed} passed, ${failed.length} failed`);
process.exit(failed.length || missing.length || interrupted ? 1 : 0);
