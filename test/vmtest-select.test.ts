// SPDX-License-Identifier: MIT
// Which kernels and files `npm run test:vmtest` (vmtest/matrix.mjs) picks, read from --list
// (nothing boots): both architectures run the whole suite; FILE arguments without --arch run
// on arm64 only when the suite lists them; --arch picks the legs; bad input is one line.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '..');
const matrix = (...args: string[]): { status: number | null; stdout: string; stderr: string } => {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'vmtest', 'matrix.mjs'), '--list', ...args], { cwd: ROOT, encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
};
const kernelsOf = (out: string): string[] => /^kernels: (.*)$/m.exec(out)?.[1]?.split(/ (?=arm64 )|(?<!arm64) /) ?? [];
const filesFor = (out: string, arch: string): string[] => {
  const block = new RegExp(`^test files for ${arch} .*\\n((?:  .*\\n?)*)`, 'm').exec(out)?.[1] ?? '';
  return block.split('\n').map((l) => l.trim()).filter(Boolean);
};
const suite = fs.readFileSync(path.join(ROOT, 'vmtest', 'suite.txt'), 'utf8').split('\n').map((l) => l.replace(/#.*/, '').trim()).filter(Boolean);

describe('vmtest/matrix.mjs kernel and file selection', () => {
  it('runs every file of suite.txt on both architectures', () => {
    const r = matrix();
    expect(r.status).toBe(0);
    expect(kernelsOf(r.stdout)).toEqual(expect.arrayContaining(['6.12', 'arm64 6.1', 'arm64 6.12']));
    expect(filesFor(r.stdout, 'x86_64')).toEqual(suite);
    expect(filesFor(r.stdout, 'arm64')).toEqual(suite);
  });

  it('a FILE the suite lists runs on both architectures of --kernel', () => {
    const r = matrix('--kernel', '6.12', 'test/runtime.test.ts');
    expect(kernelsOf(r.stdout)).toEqual(['6.12', 'arm64 6.12']);
    expect(filesFor(r.stdout, 'arm64')).toEqual(['test/runtime.test.ts']);
  });

  it('a FILE the suite does not list does not start the arm64 leg, unless --arch asks for it', () => {
    const r = matrix('--kernel', '6.12', 'test/btf.test.ts');
    expect(r.status).toBe(0);
    expect(kernelsOf(r.stdout)).toEqual(['6.12']);
    expect(r.stderr).toMatch(/not starting arm64 6\.12: its suite lists none of the files/);
    const a = matrix('--kernel', '6.12', '--arch', 'arm64', 'test/btf.test.ts');
    expect(kernelsOf(a.stdout)).toEqual(['arm64 6.12']);
    expect(filesFor(a.stdout, 'arm64')).toEqual(['test/btf.test.ts']);
  });

  it('refuses an unknown architecture or kernel in one line', () => {
    for (const args of [['--arch', 'sparc'], ['--kernel', '9.99']]) {
      const r = matrix(...args);
      expect(r.status).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/^vmtest: error: (unknown architecture 'sparc'|kernel '9\.99' is not listed)/);
    }
  });
});
