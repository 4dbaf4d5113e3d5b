// SPDX-License-Identifier: MIT
// scripts/install.js decides between the package's prebuild and a build from source. Each case
// runs it in a package directory made here; scripts/build.js there records what it was asked
// to build (the real build is covered by `npm ci` and .ci/clean-root.sh).
import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT } from './helpers/bpf';

const ADDON = path.join(ROOT, 'build', 'Release', 'tcpscope.node');
const PREBUILD = `prebuilds/${process.platform}-${process.arch}`;

describe.skipIf(!fs.existsSync(ADDON))('install: prebuild or build from source', () => {
  let dir: string;
  const write = (file: string, text: string | Buffer): void => {
    fs.mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
    fs.writeFileSync(path.join(dir, file), text);
  };
  const install = (env: Record<string, string> = {}): { status: number | null; stderr: string; built: string | undefined } => {
    const r = spawnSync(process.execPath, [path.join(dir, 'scripts', 'install.js')], { cwd: dir, encoding: 'utf8', env: { ...process.env, TCPSCOPE_BUILD_FROM_SOURCE: '', ...env }, timeout: 30_000 });
    const log = path.join(dir, 'built.txt');
    return { status: r.status, stderr: r.stderr, built: fs.existsSync(log) ? fs.readFileSync(log, 'utf8') : undefined };
  };

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tcpscope-install-'));
    write('package.json', '{ "name": "tcpscope" }\n');
    write('scripts/install.js', fs.readFileSync(path.join(ROOT, 'scripts', 'install.js')));
    write('scripts/build.js', "require('fs').writeFileSync(require('path').join(__dirname, '..', 'built.txt'), JSON.stringify(process.argv.slice(2)));\n");
    write('bpf/packets.bpf.c', '');
    write('bpf/conns.bpf.c', '');
    // A loadable addon for this Node stands in for the prebuilt one.
    write(`${PREBUILD}/tcpscope.node`, fs.readFileSync(ADDON));
    write(`${PREBUILD}/bpf/packets.bpf.o`, '');
    write(`${PREBUILD}/bpf/conns.bpf.o`, '');
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('uses a prebuild that loads, and builds nothing', () => {
    const r = install();
    expect(r).toEqual({ status: 0, stderr: '', built: undefined });
  });

  it('builds the addon and the built-in objects when the prebuilt addon does not load here', () => {
    write(`${PREBUILD}/tcpscope.node`, 'not an ELF file');
    const r = install();
    expect(r.stderr).toMatch(/^tcpscope: building from source: the prebuilt addon does not load here \(.*\)\n$/);
    expect(r.built).toBe('["addon","bpf"]');
    expect(r.status).toBe(0);
  });

  it('builds when the prebuild lacks an object or there is no prebuild for this platform', () => {
    fs.rmSync(path.join(dir, PREBUILD, 'bpf', 'conns.bpf.o'));
    expect(install().stderr).toBe('tcpscope: building from source: the prebuild lacks conns.bpf.o\n');
    fs.rmSync(path.join(dir, 'prebuilds'), { recursive: true });
    const r = install();
    expect(r.stderr).toBe(`tcpscope: building from source: no prebuild for ${process.platform}-${process.arch}\n`);
    expect(r.built).toBe('["addon","bpf"]');
  });

  it('builds when asked to, and builds everything in a checkout', () => {
    expect(install({ TCPSCOPE_BUILD_FROM_SOURCE: '1' }).built).toBe('["addon","bpf"]');
    fs.rmSync(path.join(dir, 'built.txt'));
    write('tsconfig.json', '{}');
    const r = install();
    expect(r).toEqual({ status: 0, stderr: '', built: '[]' });
  });
});
