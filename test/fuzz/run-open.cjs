// SPDX-License-Identifier: MIT
// Drives open-child.cjs over `count` mutated objects: restarts the child after a crash
// (any signal or abnormal exit) or a hang (no progress within hangMs), keeps each such
// input under fixturesDir named by its hash, and totals the children's summaries.
'use strict';
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { mutate } = require('./mutate.cjs');

const CHILD = path.join(__dirname, 'open-child.cjs');

function runChild(args, hangMs, env) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CHILD, ...args], { stdio: ['ignore', 'pipe', 'pipe', 'pipe'], env: { ...process.env, ...env, FUZZ_PROGRESS_FD: '3' } });
    let last = -1;
    let stdout = '';
    let stderr = '';
    let partial = '';
    let hung = false;
    let timer;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        hung = true;
        child.kill('SIGKILL');
      }, hangMs);
    };
    arm();
    child.stdio[3].on('data', (d) => {
      partial += d.toString();
      const lines = partial.split('\n');
      partial = lines.pop();
      if (lines.length) {
        last = Number(lines[lines.length - 1]);
        arm();
      }
    });
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr = (stderr + d).slice(-4000)));
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      let summary;
      try {
        summary = JSON.parse(stdout.trim().split('\n').pop());
      } catch {
        summary = undefined;
      }
      resolve({ code, signal, hung, last, summary, stderr });
    });
  });
}

/**
 * @returns {Promise<{inputs:number, opened:number, failed:number, crashes:Array, untyped:Array, duplicated:Array, kinds:Object}>}
 */
async function runOpenFuzz({ seed, count, corpus, fixturesDir, hangMs = 20000, chunk = 5000, env = {}, log = () => {} }) {
  const total = { inputs: 0, opened: 0, failed: 0, crashes: [], untyped: [], duplicated: [], kinds: {} };
  const inputs = corpus.map((f) => fs.readFileSync(f));
  let next = 0;
  while (next < count) {
    const n = Math.min(chunk, count - next);
    const r = await runChild([String(seed), String(next), String(n), ...corpus], hangMs, env);
    if (r.summary && r.code === 0) {
      total.inputs += n;
      total.opened += r.summary.opened;
      total.failed += r.summary.failed;
      total.untyped.push(...r.summary.untyped);
      total.duplicated.push(...r.summary.duplicated);
      for (const [k, v] of Object.entries(r.summary.kinds)) total.kinds[k] = (total.kinds[k] || 0) + v;
      next += n;
      continue;
    }
    // The child died on input r.last (or before its first announcement).
    const bad = r.last >= next ? r.last : next;
    const input = mutate(inputs[bad % inputs.length], seed, bad, 'elf');
    const hash = crypto.createHash('sha256').update(input).digest('hex').slice(0, 16);
    let file;
    if (fixturesDir) {
      fs.mkdirSync(fixturesDir, { recursive: true });
      file = path.join(fixturesDir, `${hash}.o`);
      fs.writeFileSync(file, input);
    }
    const what = r.hung ? 'hang' : r.signal ? `signal ${r.signal}` : `exit ${r.code}`;
    total.crashes.push({ index: bad, what, file, stderr: r.stderr.slice(-500) });
    log(`input ${bad}: ${what}${file ? ` (kept as ${file})` : ''}`);
    // Inputs before the crash were handled without incident; count them and go on after it.
    total.inputs += bad - next + 1;
    next = bad + 1;
  }
  return total;
}

/** Replays kept inputs (each in one child); returns the ones that still crash or hang. */
async function replayOpen(files, { hangMs = 20000, env = {} } = {}) {
  if (files.length === 0) return { failures: [], summary: undefined };
  const r = await runChild(['--file', ...files], hangMs, env);
  if (r.code === 0 && r.summary) return { failures: [], summary: r.summary };
  return { failures: [{ file: files[Math.max(0, r.last)], what: r.hung ? 'hang' : r.signal ? `signal ${r.signal}` : `exit ${r.code}`, stderr: r.stderr.slice(-500) }], summary: r.summary };
}

module.exports = { runOpenFuzz, replayOpen };
