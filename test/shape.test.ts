// SPDX-License-Identifier: MIT
// The shape checks of .ci/shape.sh fail on what they exist to catch.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const root = path.resolve(__dirname, '..');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `tcpscope-shape-${process.pid}-`));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function run(script: string, args: string[]): { code: number; out: string } {
  try {
    const out = execFileSync(process.execPath, [path.join(root, 'scripts', script), ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    return { code: 0, out };
  } catch (e) {
    const err = e as { status: number; stdout: string; stderr: string };
    return { code: err.status, out: err.stdout + err.stderr };
  }
}

function tree(name: string, files: Record<string, string>): string {
  const dir = path.join(tmp, name, 'lib');
  for (const [rel, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), text);
  }
  return dir;
}

describe('scripts/check-deps.js', () => {
  it('passes on lib/', () => {
    const r = run('check-deps.js', []);
    expect(r.out).toMatch(/no cycles, no upward imports/);
    expect(r.code).toBe(0);
  });

  it('names a cycle, type-only imports included', () => {
    const lib = tree('cycle', {
      'bpf/a.ts': "import { b } from './b';\nexport const a = b;\n",
      'bpf/b.ts': "import type { C } from './c';\nexport const b = 1 as C;\n",
      'bpf/c.ts': "import { a } from './a';\nexport type C = typeof a;\n",
    });
    const r = run('check-deps.js', ['--lib', lib]);
    expect(r.code).toBe(1);
    expect(r.out).toContain('import cycle: lib/bpf/a.ts -> lib/bpf/b.ts -> lib/bpf/c.ts -> lib/bpf/a.ts');
  });

  it('names an upward import, a same-layer import and a directory without a layer', () => {
    const lib = tree('upward', {
      'serve/config.ts': "import { parse } from '../cli/command';\nexport const x = parse;\n",
      'cli/command.ts': 'export const parse = 1;\n',
      'guard/g.ts': "import { t } from '../top/t';\nexport const g = t;\n",
      'top/t.ts': 'export const t = 1;\n',
      'newdir/n.ts': 'export const n = 1;\n',
    });
    const r = run('check-deps.js', ['--lib', lib]);
    expect(r.code).toBe(1);
    expect(r.out).toContain('lib/serve/config.ts imports lib/cli/command.ts: lib/cli is above lib/serve');
    expect(r.out).toContain('lib/guard/g.ts imports lib/top/t.ts: lib/top is in the same layer as lib/guard');
    expect(r.out).toContain('lib/newdir/ has no layer');
  });
});

describe('scripts/gen-raw-types.js', () => {
  it('lib/generated matches the build, and a changed struct is reported stale', () => {
    expect(run('gen-raw-types.js', ['--check']).code).toBe(0);
    const out = path.join(tmp, 'generated');
    fs.cpSync(path.join(root, 'lib', 'generated'), out, { recursive: true });
    expect(run('gen-raw-types.js', ['--check', '--out', out]).code).toBe(0);
    const file = path.join(out, 'conns.ts');
    fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace('  pid: number;', '  pid: bigint;'));
    const r = run('gen-raw-types.js', ['--check', '--out', out]);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/conns\.ts is stale: a struct of bpf\/conns\.bpf\.c changed; run npm run gen:raw-types/);
  });
});

describe('scripts/api-report.js', () => {
  it('reports a changed public type as stale, an @internal export and export *', () => {
    const dir = path.join(tmp, 'api');
    fs.mkdirSync(dir, { recursive: true });
    const entry = path.join(dir, 'index.ts');
    const report = path.join(dir, 'index.api.md');
    fs.writeFileSync(path.join(dir, 'impl.ts'), 'export interface Options { port: number }\nexport function open(o: Options): number { return o.port; }\n');
    fs.writeFileSync(entry, "export { open } from './impl';\nexport type { Options } from './impl';\n");
    expect(run('api-report.js', ['--entry', entry, '--report', report]).code).toBe(0);
    expect(fs.readFileSync(report, 'utf8')).toContain('interface Options {\n  port: number\n}');
    expect(run('api-report.js', ['--check', '--entry', entry, '--report', report]).code).toBe(0);

    fs.writeFileSync(path.join(dir, 'impl.ts'), 'export interface Options { port: number; host?: string }\nexport function open(o: Options): number { return o.port; }\n/** @internal */\nexport function seed(): void {}\n');
    let r = run('api-report.js', ['--check', '--entry', entry, '--report', report]);
    expect(r.code).toBe(1);
    expect(r.out).toContain('index.api.md is stale: the public API of index.ts changed; run npm run api:update');

    fs.writeFileSync(entry, "export * from './impl';\n");
    r = run('api-report.js', ['--check', '--entry', entry, '--report', report]);
    expect(r.code).toBe(1);
    expect(r.out).toContain("'export * from' re-exports whatever a module adds");
    expect(r.out).toContain('index.ts exports seed, which is marked @internal');
  }, 60_000);

  it('fails a public class whose base names a type no entry point exports', () => {
    const dir = path.join(tmp, 'api-base');
    fs.mkdirSync(dir, { recursive: true });
    const entry = path.join(dir, 'index.ts');
    const report = path.join(dir, 'index.api.md');
    fs.writeFileSync(path.join(dir, 'impl.ts'), [
      'export class Stream<Raw, Event> { read(_r: Raw): Event[] { return []; } }',
      'interface RawRecord { len: number }',
      'export interface Item { n: number }',
      'export class ItemStream extends Stream<RawRecord, Item> {}',
      'export class OpenStream extends Stream<unknown, Item> {}',
      '',
    ].join('\n'));
    fs.writeFileSync(entry, "export { Stream, ItemStream, OpenStream } from './impl';\nexport type { Item } from './impl';\n");
    const r = run('api-report.js', ['--entry', entry, '--report', report]);
    expect(r.code).toBe(1);
    expect(r.out).toContain('class ItemStream extends Stream<RawRecord, Item>: RawRecord is not exported; export it or type the base with exported types');
    expect(r.out).not.toContain('OpenStream');
  }, 60_000);
});

describe('package entry points', () => {
  // `tcpscope/bpf` resolves through "exports" under node16/nodenext/bundler and through
  // "typesVersions" under the older node10 resolution many projects still use.
  const project = path.join(tmp, 'consumer');
  fs.mkdirSync(path.join(project, 'node_modules'), { recursive: true });
  fs.symlinkSync(root, path.join(project, 'node_modules', 'tcpscope'));
  fs.writeFileSync(path.join(project, 'index.ts'), [
    "import { packets } from 'tcpscope';",
    "import { BpfObject } from 'tcpscope/bpf';",
    'export const uses: [typeof packets, typeof BpfObject] = [packets, BpfObject];',
    '',
  ].join('\n'));
  const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');

  it.each([
    ['node10', 'commonjs'],
    ['node16', 'node16'],
    ['bundler', 'esnext'],
  ])('type-check under moduleResolution %s', (resolution, module) => {
    const r = (() => {
      try {
        execFileSync(process.execPath, [tsc, '--noEmit', '--strict', '--skipLibCheck', '--target', 'es2022', '--module', module, '--moduleResolution', resolution, 'index.ts'], { cwd: project, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
        return '';
      } catch (e) {
        return (e as { stdout: string }).stdout;
      }
    })();
    expect(r).toBe('');
  }, 60_000);
});
