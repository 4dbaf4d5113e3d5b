// SPDX-License-Identifier: MIT
// `tcpscope vmtest --kernel 6.1,6.12 -- CMD`: runs a user's command (their test suite) in
// their project under other kernels, each in a QEMU VM, through the same machinery that tests
// this package (vmtest/matrix.mjs, vmtest/run, vmtest/fetch, vmtest/guest), and prints a
// table of results.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { packageRoot } from '../../bpf/paths';
import type { Command } from '../command';
import { UsageError } from '../command';

const ARCHES: Record<string, string> = { x86_64: 'x86_64', x64: 'x86_64', amd64: 'x86_64', arm64: 'arm64', aarch64: 'arm64' };

/** Kernels list of an architecture, shipped in vmtest/. */
function kernelsFile(arch: string): string {
  return path.join(packageRoot(), 'vmtest', arch === 'x86_64' ? 'kernels.txt' : `kernels-${arch}.txt`);
}

export const vmtestCommand: Command = {
  name: 'vmtest',
  summary: "run your project's tests (or any command) under other kernels in QEMU VMs and print a results table",
  usage: '--kernel 6.1,6.12,7.x [--arch x86_64|arm64] [--jobs N] [--timeout SEC] [--project DIR] [--out DIR] [--verbose] [--list] -- COMMAND [ARGS...]',
  options: {
    kernel: { type: 'string', short: 'k', multiple: true, arg: 'VERSION[,VERSION]', help: 'run under these kernels of the package\'s list (comma-separated; 7.x: the newest of the 7 series); default: every listed kernel' },
    arch: { type: 'string', arg: 'ARCH', choices: ['x86_64', 'arm64'], help: "guest architecture (x86_64 or arm64); default: this machine's" },
    jobs: { type: 'string', short: 'j', arg: 'N', help: 'VMs at a time, one vCPU each (default $VMTEST_JOBS or 2)' },
    timeout: { type: 'string', arg: 'SEC', help: 'time limit per VM in seconds, boot included (default $VMTEST_TIMEOUT or 1200)' },
    project: { type: 'string', arg: 'DIR', help: 'the project directory the command runs in, shared into the VM (default: the current directory)' },
    out: { type: 'string', arg: 'DIR', help: 'write the results and per-kernel logs here (default: a runs/ directory in the vmtest cache, ~/.cache/tcpscope/vmtest)' },
    verbose: { type: 'boolean', default: false, help: "print every VM's output, not only the failing ones" },
    list: { type: 'boolean', default: false, help: 'print the kernels and the command that would run, and run nothing' },
  },
  positionalsHelp: 'after --, the command to run in the project under each kernel (a vitest run is reported per test file)',
  examples: [
    ['tcpscope vmtest --kernel 6.1,6.12,7.x -- npx vitest run', "your test suite under 6.1, 6.12 and the newest 7.x kernel, with a table of results"],
    ['tcpscope vmtest --arch arm64 --kernel 6.12 --jobs 1 -- npm test', 'npm test in an arm64 VM (emulated on an x86_64 host), one VM at a time'],
    ['tcpscope vmtest --kernel 6.1 --list -- npx vitest run', 'show which kernels and command would run, without booting anything'],
  ],
  allowPositionals: true,
  async run(ctx) {
    const v = ctx.values;
    const command = ctx.positionals;
    if (command.length === 0) {
      throw new UsageError('vmtest needs the command to run after --, e.g. tcpscope vmtest --kernel 6.1,6.12 -- npx vitest run');
    }
    const archName = (v['arch'] as string | undefined) ?? (process.arch === 'arm64' ? 'arm64' : 'x86_64');
    const arch = ARCHES[archName.toLowerCase()];
    if (!arch) throw new UsageError(`unknown architecture '${archName}': use x86_64 or arm64`);
    const kernels = kernelsFile(arch);
    if (!fs.existsSync(kernels)) throw new UsageError(`this package has no ${arch} kernels (${path.relative(packageRoot(), kernels)} is missing)`);
    const project = path.resolve((v['project'] as string | undefined) ?? process.cwd());
    if (!fs.existsSync(project) || !fs.statSync(project).isDirectory()) throw new UsageError(`--project ${project}: no such directory`);
    for (const [flag, re, what] of [['jobs', /^[1-9]\d*$/, 'a number of VMs'], ['timeout', /^[1-9]\d*$/, 'seconds']] as const) {
      const x = v[flag];
      if (typeof x === 'string' && !re.test(x)) throw new UsageError(`--${flag} takes ${what}, got '${x}'`);
    }
    if (process.platform !== 'linux') throw new UsageError('vmtest runs on Linux hosts only (QEMU with the host root shared over 9p)');

    const args = [path.join(packageRoot(), 'vmtest', 'matrix.mjs'), '--project', project, '--arch', arch];
    for (const k of (v['kernel'] as string[] | undefined) ?? []) args.push('--kernel', k);
    if (typeof v['jobs'] === 'string') args.push('--jobs', v['jobs']);
    if (typeof v['timeout'] === 'string') args.push('--timeout', v['timeout']);
    if (typeof v['out'] === 'string') args.push('--out', path.resolve(v['out']));
    if (v['verbose']) args.push('--verbose');
    if (v['list']) args.push('--list');
    args.push('--run', '--', ...command);
    // Kernels, their packages and run logs are cached per user, not inside node_modules
    // (a reinstall would drop hundreds of MB of downloads).
    const cache = process.env['VMTEST_CACHE'] ?? path.join(process.env['XDG_CACHE_HOME'] || path.join(os.homedir(), '.cache'), 'tcpscope', 'vmtest');
    const env: NodeJS.ProcessEnv = { ...process.env, VMTEST_CACHE: cache };
    delete env['VMTEST_KERNELS_FILE'];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'inherit', 'inherit'], env });
    const onAbort = (): void => { child.kill('SIGINT'); };
    ctx.signal.addEventListener('abort', onAbort, { once: true });
    try {
      return await new Promise<number>((resolve, reject) => {
        child.on('error', reject);
        child.on('close', (code, signal) => resolve(code ?? (signal ? 130 : 1)));
      });
    } finally {
      ctx.signal.removeEventListener('abort', onAbort);
    }
  },
};
