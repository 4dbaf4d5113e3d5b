// SPDX-License-Identifier: MIT
// The producer of the JavaScript benchmarks: `bench_c produce` in a child process, running a
// program loaded by this process through BPF_PROG_TEST_RUN. The program's fd is handed down
// as the child's fd 3.
//
// Why not a worker_thread calling the addon's testRun: loading the addon in a worker
// corrupts the main thread's heap (native/link.cc keeps the NativeLink constructor in a
// process-wide static that each environment's Init overwrites, from its own thread), and
// the process crashes within a few workers. See bench/README.md.
'use strict';
const { spawn } = require('node:child_process');
const c = require('./common');

/**
 * Starts producing at once. Resolves `done` with { runs, kernel_ns, start, end, chunks,
 * median_ns, cpu_s } (start/end: CLOCK_MONOTONIC seconds, comparable with common.now()).
 */
function startProducer({ fd, seconds, rate = 0, frame }) {
  const args = ['produce', '3', String(seconds), String(rate)];
  if (frame) args.push(Buffer.from(frame).toString('hex'));
  const child = spawn(c.cHelper(), args, { stdio: ['ignore', 'pipe', 'pipe', fd] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  const done = new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => {
      if (code === 0) resolve(c.lastJson(out));
      else reject(new Error(`producer failed (${code ?? signal}): ${err}`));
    });
  });
  return { child, done };
}

module.exports = { startProducer };
