// SPDX-License-Identifier: MIT
// The CLI run as a user runs it: a child process whose output is kept, and its readiness
// line awaited as an event.
import { spawn, ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { ROOT } from './bpf';

export const CLI = path.join(ROOT, 'dist', 'lib', 'cli', 'main.js');

export interface CliRun { child: ChildProcess; stdout: () => string; stderr: () => string; exit: Promise<number | null> }

/** Keeps what `child` prints; `exit` resolves with its exit code. */
export function track(child: ChildProcess): CliRun {
  let out = '', err = '';
  child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  const exit = once(child, 'exit').then(([code]) => code as number | null);
  return { child, stdout: () => out, stderr: () => err, exit };
}

/** Runs `tcpscope ARGS...` from the compiled dist. */
export function runCli(args: string[]): CliRun {
  return track(spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] }));
}

/** The readiness line every streaming command prints on stderr once attached. */
export const READY = /^(listening on|tracing) .*$/m;

/** Resolves when the command has printed its readiness line (with the time it was seen); rejects if it exits first. */
export function ready(r: CliRun, ms = 15000): Promise<number> {
  return new Promise((resolve, reject) => {
    const check = (): void => {
      if (READY.test(r.stderr())) { cleanup(); resolve(Date.now()); }
    };
    const timer = setTimeout(() => { cleanup(); reject(new Error(`no readiness line: ${r.stdout()} ${r.stderr()}`)); }, ms);
    const onExit = (): void => { cleanup(); reject(new Error(`exited before ready: ${r.stdout()} ${r.stderr()}`)); };
    const cleanup = (): void => { clearTimeout(timer); r.child.stderr!.off('data', check); r.child.off('exit', onExit); };
    r.child.stderr!.on('data', check);
    r.child.on('exit', onExit);
    check();
  });
}
