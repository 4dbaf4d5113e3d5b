// SPDX-License-Identifier: MIT
// The skeleton's names and types are checked at compile time, under the strict settings of
// tsconfig.json (strict, exactOptionalPropertyTypes, erasableSyntaxOnly, isolatedModules).
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const project = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const tsc = path.join(project, 'node_modules', 'typescript', 'bin', 'tsc');

function typecheck(config: string): { status: number | null; output: string } {
  const r = spawnSync(process.execPath, [tsc, '-p', config, '--noEmit', '--pretty', 'false'], { cwd: project, encoding: 'utf8' });
  return { status: r.status, output: r.stdout + r.stderr };
}

describe('types', () => {
  it('the project type-checks', () => {
    const r = typecheck('tsconfig.json');
    expect(r.output).toBe('');
    expect(r.status).toBe(0);
  }, 120_000);

  it('a misspelt map name is a compile error', () => {
    const r = typecheck('test/typecheck/tsconfig.json');
    expect(r.status).toBe(2);
    expect(r.output).toMatch(/misspelt-map\.ts\(6,\d+\): error TS2551: Property 'hits_by_prot' does not exist on type .*Did you mean 'hits_by_port'\?/);
    expect(r.output.trim().split('\n')).toHaveLength(1);
  }, 120_000);
});
