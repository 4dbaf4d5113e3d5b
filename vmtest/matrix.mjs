#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// vmtest/matrix.mjs — `npm run test:vmtest`: run the focused integration suite
// (vmtest/suite.txt) in a VM per kernel of vmtest/kernels.txt, two VMs at a
// time, and print a table kernel × test file → pass/fail/skip.
//
//   npm run test:vmtest [-- options] [-- FILE...]
//   node vmtest/matrix.mjs [options] [FILE...]
//
//   node vmtest/matrix.mjs [options] --project DIR --run -- COMMAND [ARGS...]
//
// Options:
//   --arch A[,B]          guest architectures: x86_64 (kernels.txt) and arm64 (kernels-arm64.txt),
//                         both running suite.txt; default: both
//   --kernel NAME[,NAME]  only these kernels (repeatable; default: all), of each
//                         architecture that lists them; `7.x` is the newest of a series
//   --jobs N              VMs at a time (default VMTEST_JOBS or 2; 1 vCPU each)
//   --timeout SEC         limit per VM, boot included (default VMTEST_TIMEOUT or 1200)
//   --selftest            also run vmtest/selftest (always run when the suite is empty)
//   --suite FILE          list of test files (default vmtest/suite.txt)
//   --out DIR             results (default .vmtest-cache/runs/matrix-DATE)
//   --verbose             print every VM's test output, not only failing ones
//   --list                print the kernels and test files, run nothing
//   --project DIR         the project the command runs in (default: this repository)
//   --run -- COMMAND...   run COMMAND in the project under each kernel instead of the suite
//                         (`tcpscope vmtest` uses this); a vitest command reports per file
// FILE arguments replace the suite list. Without --arch, a FILE runs on the arm64 kernels only
// when the suite lists it (a leg left with no file is not started); with --arch, every FILE
// runs on each architecture named.
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
  project: ROOT,
  command: null,
  arches: [],
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
      case '--arch': opts.arches.push(...value().split(',').filter(Boolean)); break;
      case '--jobs': opts.jobs = Number(value()); break;
      case '--timeout': opts.timeout = Number(value()); break;
      case '--selftest': opts.selftest = true; break;
      case '--suite': opts.suite = path.resolve(value()); break;
      case '--out': opts.out = path.resolve(value()); break;
      case '--verbose': opts.verbose = true; break;
      case '--list': opts.list = true; break;
      case '--project': opts.project = path.resolve(value()); break;
      case '--run':
        if (args[i + 1] !== '--' || i + 2 >= args.length) die('--run takes the command after --: --run -- COMMAND [ARGS...]');
        opts.command = args.slice(i + 2);
        i = args.length;
        break;
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

// Architectures, each with its kernel list and its suite.
const ARCHES = {
  x86_64: { kernels: process.env.VMTEST_KERNELS_FILE || path.join(VMTEST, 'kernels.txt'), suite: opts.suite, label: '' },
  // The same suite: every kernel-dependent file runs on both architectures.
  arm64: { kernels: path.join(VMTEST, 'kernels-arm64.txt'), suite: opts.suite, label: 'arm64 ' },
};
const ARCH_ALIASES = { x86_64: 'x86_64', x64: 'x86_64', amd64: 'x86_64', arm64: 'arm64', aarch64: 'arm64' };
const arches = [...new Set((opts.arches.length ? opts.arches : Object.keys(ARCHES)).map((a) => ARCH_ALIASES[a.toLowerCase()] ?? die(`unknown architecture '${a}' (x86_64 or arm64)`)))]
  .filter((a) => opts.arches.length || fs.existsSync(ARCHES[a].kernels));
const kernelsOf = {};
for (const a of arches) {
  if (!fs.existsSync(ARCHES[a].kernels)) die(`no ${a} kernels: ${path.relative(ROOT, ARCHES[a].kernels)} is missing`);
  kernelsOf[a] = readList(ARCHES[a].kernels).map((l) => l.split(/\s+/)[0]);
}
// `7.x`: the newest kernel of that series in a list (which runs oldest to newest).
const resolveKernel = (all, k) => {
  if (all.includes(k)) return k;
  const series = /^(\d+(?:\.\d+)*)\.x$/.exec(k)?.[1];
  return series ? all.filter((n) => n === series || n.startsWith(`${series}.`)).pop() : undefined;
};
// One leg per architecture and kernel: a VM.
const legs = [];
for (const a of arches) {
  const names = opts.kernels.length ? opts.kernels.map((k) => resolveKernel(kernelsOf[a], k)).filter(Boolean) : kernelsOf[a];
  for (const kernel of new Set(names)) legs.push({ arch: a, kernel, label: `${ARCHES[a].label}${kernel}` });
}
for (const k of opts.kernels) {
  if (!arches.some((a) => resolveKernel(kernelsOf[a], k))) {
    die(`kernel '${k}' is not listed for ${arches.join(' or ')} (known: ${arches.map((a) => `${a}: ${kernelsOf[a].join(' ')}`).join('; ')}; NAME.x picks the newest of a series)`);
  }
}
if (legs.length === 0) die('no kernel to run');

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

if (opts.command && opts.files.length) die('give either test files or --run -- COMMAND, not both');
const missing = [];
/** Files of a list of entries (files or directories); missing entries are noted. */
function expandAll(entries) {
  const out = [];
  for (const e of entries) {
    const x = expand(e);
    if (x === null) { if (!missing.includes(e)) missing.push(e); }
    else for (const f of x) if (!out.includes(f)) out.push(f);
  }
  return out;
}
/**
 * Test files of an architecture's leg: its suite, or the FILE arguments. x86-64 runs every
 * FILE; without an explicit --arch another architecture runs only the FILEs its suite lists,
 * so that a file meant for x86-64 is not a failure of the arm64 kernels of the same name.
 */
function suiteFiles(arch) {
  if (opts.command) return [];
  const suite = ARCHES[arch].suite;
  const listed = fs.existsSync(suite) ? readList(suite) : [];
  if (!opts.files.length) return expandAll(listed);
  const given = expandAll(opts.files);
  if (opts.arches.length || arch === 'x86_64') return given;
  const inSuite = new Set(expandAll(listed));
  return given.filter((f) => inSuite.has(f));
}
for (const leg of legs) leg.files = suiteFiles(leg.arch);
// Legs left with nothing to run when FILEs were given (the suite of that architecture lists none).
if (opts.files.length && !opts.selftest) {
  const idle = legs.filter((l) => l.files.length === 0 && l.arch !== 'x86_64');
  if (idle.length && idle.length < legs.length) {
    log(`not starting ${idle.map((l) => l.label).join(', ')}: its suite lists none of the files (--arch ${idle[0].arch} runs them there)`);
    legs.splice(0, legs.length, ...legs.filter((l) => !idle.includes(l)));
  }
}
const files = [...new Set(legs.flatMap((l) => l.files))];
// The selftest has its own vitest config (the project's include does not cover vmtest/).
if (files.includes(SELFTEST)) {
  files.splice(files.indexOf(SELFTEST), 1);
  for (const leg of legs) leg.files = leg.files.filter((f) => f !== SELFTEST);
  opts.selftest = true;
}
const selftest = opts.selftest || (files.length === 0 && !opts.command);
const kernels = legs.map((l) => l.label);

if (opts.list) {
  console.log(`kernels: ${kernels.join(' ')}`);
  if (opts.command) {
    console.log(`command (in ${opts.project}): ${opts.command.join(' ')}`);
    process.exit(0);
  }
  for (const a of arches.filter((x) => legs.some((l) => l.arch === x))) {
    console.log(`test files for ${a} (${opts.files.length ? 'arguments' : path.relative(ROOT, ARCHES[a].suite)}):`);
    for (const f of legs.find((l) => l.arch === a)?.files ?? []) console.log(`  ${f}`);
  }
  for (const m of missing) console.log(`  ${m}  (missing)`);
  if (selftest) console.log(`  ${SELFTEST}  (selftest)`);
  process.exit(0);
}

if (missing.length) log(`warning: listed but not found (counted as failures): ${missing.join(', ')}`);
if (files.length === 0 && !opts.command) log(`no test files in the suites${missing.length ? ' exist' : ''}: running the vmtest selftest only`);
if (!opts.command && !fs.existsSync(path.join(ROOT, 'node_modules', '.bin', 'vitest'))) die("node_modules/.bin/vitest not found: run 'npm ci' first");
if (!fs.existsSync(opts.project)) die(`--project ${opts.project}: no such directory`);
if (files.length && !fs.existsSync(path.join(ROOT, 'build', 'Release', 'tcpscope.node'))) {
  log("warning: build/Release/tcpscope.node not found: the BPF tests will fail in the guests (run 'npm run build' first)");
}

const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-');
const cacheDir = process.env.VMTEST_CACHE || path.join(ROOT, '.vmtest-cache');
const outDir = opts.out || path.join(cacheDir, 'runs', `matrix-${stamp}`);
fs.mkdirSync(outDir, { recursive: true });

// ---- fetch kernels first (downloads are sequential and cached) ----------------
// and, for arm64, the guest root, addon, objects and npm bindings (vmtest/arm64/prepare).
const binds = {};
{
  fs.mkdirSync(cacheDir, { recursive: true });
  const lock = path.join(cacheDir, '.fetch.lock');
  for (const a of arches) {
    const names = [...new Set(legs.filter((l) => l.arch === a).map((l) => l.kernel))];
    if (!names.length) continue;
    log(`preparing ${a} kernels: ${names.join(' ')}`);
    const archEnv = { ...process.env, VMTEST_ARCH: a, VMTEST_CACHE: cacheDir };
    if (a !== 'x86_64') delete archEnv.VMTEST_KERNELS_FILE;
    const r = spawnSync('flock', [lock, path.join(VMTEST, 'fetch'), ...names], { stdio: ['ignore', 'ignore', 'inherit'], env: archEnv });
    if (r.status !== 0) die(`vmtest/fetch failed (${a})`);
    if (a === 'arm64') {
      const p = spawnSync('flock', [lock, path.join(VMTEST, 'arm64', 'prepare'), ...(opts.project !== ROOT ? [opts.project] : [])], { stdio: ['ignore', 'pipe', 'inherit'], env: archEnv, encoding: 'utf8' });
      if (p.status !== 0) die('vmtest/arm64/prepare failed');
      binds[a] = p.stdout.trim();
    }
  }
}

// ---- run the VMs ----------------------------------------------------------
const env = { ...process.env, TCPSCOPE_REQUIRE_BPF: process.env.TCPSCOPE_REQUIRE_BPF ?? '1' };
const guestCmd = (leg) => (opts.command ? userCommand(opts.command) : ['vmtest/guest/vitest.sh', ...(selftest ? ['--selftest'] : []), ...leg.files]);
log(opts.command
  ? `${kernels.length} kernel(s), ${Math.min(opts.jobs, kernels.length)} VM(s) at a time: ${guestCmd(legs[0]).join(' ')} (in ${opts.project}); results in ${outDir}`
  : `${kernels.length} kernel(s) × ${files.length + (selftest ? 1 : 0)} test file(s), ${Math.min(opts.jobs, kernels.length)} VM(s) at a time; results in ${path.relative(ROOT, outDir)}`);

// A user's command as it runs in the guest. A vitest run also writes its JSON report to the
// results share (the table's per-file cells) and gets the longer per-test limits the suite
// gets under emulation; `npx vitest` runs the project's vitest binary directly (npx itself
// costs ~10 s per call under TCG).
function userCommand(cmd) {
  const out = [...cmd];
  const local = path.join(opts.project, 'node_modules', '.bin', 'vitest');
  if (out[0] === 'npx' && out[1] === 'vitest' && fs.existsSync(local) && !process.env.VMTEST_VITEST) out.splice(0, 2, 'node_modules/.bin/vitest');
  const v = out.findIndex((a) => /(^|\/)vitest(\.m?js)?$/.test(a));
  if (v >= 0 && (out[v + 1] === 'run' || out.slice(v + 1).includes('--run'))) {
    const limit = process.env.VMTEST_TEST_TIMEOUT_MS || '120000';
    const has = (flag) => out.some((a) => a === flag || a.startsWith(`${flag}=`));
    if (!has('--testTimeout')) out.push(`--testTimeout=${limit}`);
    if (!has('--hookTimeout')) out.push(`--hookTimeout=${limit}`);
    if (!has('--reporter')) out.push('--reporter=default');
    out.push('--reporter=json', '--outputFile.json=/run/vmtest/vitest.json');
  }
  return out;
}

function runLeg(leg) {
  const dir = path.join(outDir, leg.label.replace(/\s+/g, '-'));
  fs.mkdirSync(dir, { recursive: true });
  const started = Date.now();
  const legEnv = { ...env, VMTEST_ARCH: leg.arch, VMTEST_CACHE: cacheDir, VMTEST_BINDS: binds[leg.arch] ?? '' };
  if (leg.arch !== 'x86_64') delete legEnv.VMTEST_KERNELS_FILE;
  // arm64 guests run the test files in one vitest process: node starts in seconds there.
  if (leg.arch === 'arm64' && !opts.command) legEnv.VMTEST_VITEST_ARGS = process.env.VMTEST_VITEST_ARGS ?? '--no-isolate --maxWorkers=1';
  return new Promise((resolve) => {
    const stderr = fs.openSync(path.join(dir, 'run.log'), 'w');
    const child = spawn(
      path.join(VMTEST, 'run'),
      ['--kernel', leg.kernel, '--quiet', '--out', dir, '--timeout', String(opts.timeout), '--cwd', opts.project, '--', ...guestCmd(leg)],
      { cwd: ROOT, env: legEnv, stdio: ['ignore', stderr, stderr] },
    );
    child.on('close', (code, signal) => {
      fs.closeSync(stderr);
      const res = collect(leg, dir, code ?? 128);
      res.wall_s = (Date.now() - started) / 1000;
      log(`[${leg.label}] ${res.ok ? 'ok' : 'FAILED'}: exit ${code ?? signal}, boot ${fmt(res.boot_s)}s, ${opts.command ? `command ${fmt(res.command_s)}s` : `vitest ${fmt(res.vitest_s)}s`}${res.reason ? ` (${res.reason})` : ''}`);
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
    found[path.relative(opts.project, path.resolve(opts.project, file))] = { status, ms: ms ? Number(ms) : undefined };
  }
  return found;
}

function collect(leg, dir, exitCode) {
  const summary = readJson(path.join(dir, 'summary.json')) ?? {};
  const cells = {};
  const times = {};
  for (const report of ['selftest.json', 'vitest.json']) {
    const j = readJson(path.join(dir, report));
    for (const tr of j?.testResults ?? []) {
      const f = path.relative(opts.project, tr.name);
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
  // A user's command: the files its vitest report names (none for other commands).
  if (opts.command) for (const f of Object.keys(cells)) if (!files.includes(f)) files.push(f);
  const wanted = [...(opts.command ? Object.keys(cells).filter((f) => f !== SELFTEST) : leg.files), ...(selftest ? [SELFTEST] : [])];
  const vmFailed = summary.status === undefined || [124, 125, 126].includes(summary.status) || exitCode >= 124;
  // A file with no result: still running when the time ran out, or vitest/the VM died.
  for (const f of wanted) if (!cells[f]) cells[f] = summary.status === 124 ? 'timeout' : 'error';
  const ok = !vmFailed && exitCode === 0 && wanted.every((f) => ['pass', 'skip'].includes(cells[f] ?? 'pass'));
  return {
    kernel: leg.label,
    arch: leg.arch,
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
const results = await pool(legs, opts.jobs, runLeg);

// ---- report -----------------------------------------------------------------
for (const r of results) {
  if (r.ok && !opts.verbose) continue;
  const header = `===== ${r.kernel} (${r.release ?? '?'}): ${r.ok ? 'ok' : 'FAILED'} =====`;
  console.log(`\n${header}`);
  try {
    const out = fs.readFileSync(path.join(r.dir, 'output.log'), 'utf8').split('\n');
    if (out.length > 300 && !opts.verbose) console.log(`[... ${out.length - 300} lines, full output in ${r.dir}/output.log]`);
    console.log((opts.verbose ? out : out.slice(-300)).join('\n'));
  } catch {
    console.log('(no test output)');
  }
  const runLog = fs.readFileSync(path.join(r.dir, 'run.log'), 'utf8');
  if (runLog.trim()) console.log(runLog); // console log of a VM that failed, and vmtest/run's messages
}

files.sort();
const rows = [...files, ...missing, ...(selftest ? [SELFTEST] : [])];
const table = [[opts.command ? 'result' : 'test file', ...kernels]];
if (opts.command) {
  table.push(['command', ...results.map((r) => `${r.exit === 0 ? 'pass' : r.exit === 124 ? 'timeout' : 'fail'}${typeof r.command_s === 'number' ? ` ${r.command_s.toFixed(0)}s` : ''}`)]);
}
for (const f of rows) {
  table.push([f, ...results.map((r) => {
    if (missing.includes(f)) return 'missing';
    if (!r.cells[f]) return opts.command && r.exit !== 0 ? 'error' : '-';
    const t = r.times[f];
    return `${r.cells[f] ?? '-'}${t !== undefined ? ` ${t < 10 ? t.toFixed(1) : t.toFixed(0)}s` : ''}`;
  })]);
}
table.push(null);
table.push(['VM exit status', ...results.map((r) => String(r.exit))]);
table.push(['boot (s)', ...results.map((r) => fmt(r.boot_s))]);
table.push(opts.command ? ['command (s)', ...results.map((r) => fmt(r.command_s))] : ['vitest (s)', ...results.map((r) => fmt(r.vitest_s))]);
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
