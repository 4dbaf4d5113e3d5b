// SPDX-License-Identifier: MIT
// The CLI as a user runs it: a separate process, exit codes, messages.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT, objectPath } from './helpers/bpf';

const CLI = path.join(ROOT, 'dist', 'lib', 'cli', 'main.js');

function tcpscope(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 30000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('tcpscope CLI', () => {
  it('lists its commands and exits 2 without one', () => {
    const r = tcpscope();
    expect(r.status).toBe(2);
    expect(r.stdout).toMatch(/usage: tcpscope COMMAND/);
    expect(r.stdout).toMatch(/gen-types/);
    expect(r.stdout).toMatch(/cleanup/);
  });

  it('names an unknown command and an unknown option', () => {
    expect(tcpscope('frobnicate')).toMatchObject({ status: 2, stderr: expect.stringMatching(/unknown command 'frobnicate'/) });
    const r = tcpscope('cleanup', '--bogus');
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/bogus/);
    expect(r.stderr).toMatch(/usage: tcpscope cleanup/);
  });

  it('gen-types writes declarations that match the object and compile', () => {
    const r = tcpscope('gen-types', objectPath('rt_attach'));
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/interface StateEvent\b/);
    // The program's own types only (maps, globals, ring records), not the kernel structs
    // it reads; --all emits every named type.
    expect(r.stdout).toMatch(/interface SynKey\b/);
    expect(r.stdout).not.toMatch(/interface (SkBuff|Sock|Tcphdr)\b/);
    expect(tcpscope('gen-types', objectPath('rt_attach'), '--all').stdout).toMatch(/interface SkBuff\b/);
    expect(r.stdout).toMatch(/ts_ns: bigint/);
    expect(r.stdout).toMatch(/comm: string/);
    expect(r.stdout).toMatch(/saddr: Uint8Array/);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tcpscope-gentypes-'));
    try {
      const file = path.join(dir, 'types.ts');
      expect(tcpscope('gen-types', objectPath('rt_attach'), '-t', 'state_event', '-o', file).status).toBe(0);
      const tsc = spawnSync(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '--noEmit', '--strict', '--erasableSyntaxOnly', '--isolatedModules', file], { encoding: 'utf8' });
      expect(tsc.stdout + tsc.stderr).toBe('');
      expect(tsc.status).toBe(0);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);

  it('vmtest: resolves kernels per architecture (7.x: the newest 7 series) and refuses bad arguments in one line', () => {
    const list = tcpscope('vmtest', '--kernel', '6.1,7.x', '--list', '--', 'npx', 'vitest', 'run');
    expect(list.status).toBe(0);
    expect(list.stdout).toMatch(/^kernels: 6\.1 7\.\d+$/m);
    expect(list.stdout).toMatch(/command \(in .*\): npx vitest run/);
    const arm = tcpscope('vmtest', '--arch', 'arm64', '--kernel', '6.1,6.12', '--list', '--', 'true');
    expect(arm.stdout).toMatch(/^kernels: arm64 6\.1 arm64 6\.12$/m);
    const cases: Array<[string[], RegExp]> = [
      [['vmtest', '--kernel', '6.1'], /^tcpscope vmtest: vmtest needs the command to run after --/],
      [['vmtest', '--arch', 'sparc', '--', 'true'], /^tcpscope vmtest: unknown architecture 'sparc': use x86_64 or arm64/],
      [['vmtest', '--jobs', 'many', '--', 'true'], /^tcpscope vmtest: --jobs takes a number of VMs, got 'many'/],
      [['vmtest', '--project', '/nonexistent', '--', 'true'], /^tcpscope vmtest: --project \/nonexistent: no such directory/],
      [['vmtest', '--kernel', '9.9', '--list', '--', 'true'], /^vmtest: error: kernel '9\.9' is not listed for x86_64/],
    ];
    for (const [args, message] of cases) {
      const r = tcpscope(...args);
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
      expect(r.stderr, args.join(' ')).toMatch(message);
    }
  });

  it('gen-types names a missing file', () => {
    const r = tcpscope('gen-types', '/nonexistent.bpf.o');
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/no such file: \/nonexistent\.bpf\.o/);
  });
});
