// SPDX-License-Identifier: MIT
// The npm package: what the tarball holds (and not), license identifiers in every source
// file, and the built-in probes loading with only CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN, as in
// the container image. The install itself (no compiler, Node 20/22/24) is .ci/clean-root.sh.
import { describe, it, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT, bpfAvailable } from './helpers/bpf';

describe('npm tarball contents', () => {
  // --ignore-scripts: the file list of this tree, without prepack rebuilding the prebuilds.
  const r = spawnSync('npm', ['pack', '--dry-run', '--ignore-scripts', '--json'], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
  const files = r.status === 0 ? (JSON.parse(r.stdout) as Array<{ files: Array<{ path: string }> }>)[0]!.files.map((f) => f.path) : [];

  it('lists the files', () => {
    expect(r.stderr).not.toMatch(/ERR!/);
    expect(files.length).toBeGreaterThan(50);
  });

  it('holds what runs and what a build from source needs, with the licenses', () => {
    for (const f of ['package.json', 'README.md', 'LICENSE', 'LICENSES/GPL-2.0.txt', 'LICENSES/THIRD-PARTY.md', 'CHANGELOG.md',
      'dist/lib/index.js', 'dist/lib/index.d.ts', 'dist/lib/cli/main.js', 'scripts/install.js', 'scripts/build.js', 'scripts/bpf-toolchain.js', 'vmtest/matrix.mjs', 'vmtest/run',
      'binding.gyp', 'native/addon.cc', 'bpf/packets.bpf.c', 'bpf/include/tcpscope.h']) {
      expect(files, f).toContain(f);
    }
    const builtIn = fs.readdirSync(path.join(ROOT, 'bpf')).filter((f) => f.endsWith('.bpf.c'));
    for (const arch of ['x64', 'arm64']) {
      if (!fs.existsSync(path.join(ROOT, 'prebuilds', `linux-${arch}`))) continue; // made by prepack
      expect(files).toContain(`prebuilds/linux-${arch}/tcpscope.node`);
      for (const src of builtIn) expect(files).toContain(`prebuilds/linux-${arch}/bpf/${src.replace(/\.c$/, '.o')}`);
    }
  });

  it('leaves out tests, benchmarks, CI, examples, source maps and the vmlinux headers (vmtest ships: `tcpscope vmtest` runs it)', () => {
    const unwanted = files.filter((f) => /^(test|bench|\.ci|examples|deploy|lib)\//.test(f) || /^vmtest\/.*\.md$/.test(f) || /^dist\/(test|bench|examples)\//.test(f) ||
      /\.(js|ts)\.map$/.test(f) || f.includes('vmlinux') || /\btest\/bpf\b|bench[_-]|rt_[a-z]+\.bpf/.test(f));
    expect(unwanted).toEqual([]);
  });
});

describe.each([['x64', 'Advanced Micro Devices X86-64', 'ld-linux-x86-64.so.2'], ['arm64', 'AArch64', 'ld-linux-aarch64.so.1']])('prebuilt addon for linux-%s', (arch, machine, loader) => {
  const file = path.join(ROOT, 'prebuilds', `linux-${arch}`, 'tcpscope.node');
  const readelf = (...args: string[]): string => spawnSync('readelf', ['-W', ...args, file], { encoding: 'utf8' }).stdout;
  it.skipIf(!fs.existsSync(file))('needs only glibc 2.35+, has no text relocations and exports only the Node-API entry points', () => {
    expect(readelf('-h')).toContain(`Machine:                           ${machine}`);
    const dynamic = readelf('-d');
    expect([...dynamic.matchAll(/\(NEEDED\)\s+Shared library: \[(.+)\]/g)].map((m) => m[1]).sort()).toEqual([loader, 'libc.so.6']);
    expect(dynamic).not.toMatch(/TEXTREL/);
    const versions = [...new Set(readelf('-V').match(/GLIBC_2\.\d+/g) ?? [])].map((v) => Number(v.split('.')[1]));
    expect(Math.max(...versions)).toBeLessThanOrEqual(35);
    const exported = readelf('--dyn-syms').split('\n').map((l) => l.trim().split(/\s+/)).filter((f) => f[4] === 'GLOBAL' && f[6] !== 'UND').map((f) => f[7]);
    expect(exported.sort()).toEqual(['napi_register_module_v1', 'node_api_module_get_api_version_v1']);
  });
});

describe('license identifiers', () => {
  it('every tracked source file has an SPDX-License-Identifier', () => {
    const tracked = spawnSync('git', ['ls-files'], { cwd: ROOT, encoding: 'utf8' });
    if (tracked.status !== 0) return; // not a git checkout (an unpacked tarball)
    const script = (f: string): boolean => f !== '' && !/\.[a-z]+$/.test(path.basename(f)) && fs.statSync(path.join(ROOT, f), { throwIfNoEntry: false })?.isFile() === true && fs.readFileSync(path.join(ROOT, f), 'utf8').startsWith('#!');
    const sources = tracked.stdout.split('\n').filter((f) => (/\.(ts|js|mjs|cjs|c|h|cc|sh)$/.test(f) || script(f)) && !f.startsWith('bpf/vmlinux/'));
    const without = sources.filter((f) => fs.existsSync(path.join(ROOT, f)) && !/SPDX-License-Identifier: \S/.test(fs.readFileSync(path.join(ROOT, f), 'utf8').slice(0, 2000)));
    expect(without).toEqual([]);
    const bpfPrograms = sources.filter((f) => f.endsWith('.bpf.c'));
    for (const f of bpfPrograms) expect(fs.readFileSync(path.join(ROOT, f), 'utf8'), f).toMatch(/SPDX-License-Identifier: GPL-2\.0/);
  });
});

const enabled = bpfAvailable('built-in probes with only CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN') && spawnSync('setpriv', ['--version']).status === 0;

describe.skipIf(!enabled)('built-in probes with only CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN', () => {
  it('every built-in object loads (no CAP_SYS_ADMIN to list module BTF)', () => {
    const names = fs.readdirSync(path.join(ROOT, 'bpf')).filter((f) => f.endsWith('.bpf.c')).map((f) => f.replace(/\.bpf\.c$/, ''));
    const script = `
      const { BpfObject, builtObjectPath } = require(${JSON.stringify(path.join(ROOT, 'dist', 'lib', 'bpf'))});
      const caps = /CapEff:\\s*(\\S+)/.exec(require('fs').readFileSync('/proc/self/status', 'utf8'))[1];
      const loaded = [];
      for (const name of ${JSON.stringify(names)}) { const o = BpfObject.load(builtObjectPath(name)); loaded.push(name); o.close(); }
      console.log(caps, loaded.join(','));`;
    const r = spawnSync('setpriv', ['--bounding-set', '-all,+bpf,+perfmon,+net_admin', '--inh-caps', '-all', process.execPath, '-e', script],
      { encoding: 'utf8', timeout: 60_000 });
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe(`000000c000001000 ${names.join(',')}`);
    expect(r.status).toBe(0);
  }, 70_000);

  // The prebuilt objects for both architectures (made by `npm pack`): BPF bytecode does not
  // depend on the CPU, and CO-RE relocates the arm64 header's layouts against this kernel, so
  // both load here, which proves them well-formed, relocatable and accepted by the verifier.
  it.each(['x64', 'arm64'])('the prebuilt %s objects load here', (arch) => {
    const dir = path.join(ROOT, 'prebuilds', `linux-${arch}`, 'bpf');
    if (!fs.existsSync(dir)) return; // no prebuilds in this tree: .ci/package.sh packs and runs them
    const files = fs.readdirSync(dir).filter((f) => f.endsWith('.bpf.o')).map((f) => path.join(dir, f));
    const script = `
      const { BpfObject } = require(${JSON.stringify(path.join(ROOT, 'dist', 'lib', 'bpf'))});
      for (const f of ${JSON.stringify(files)}) { const o = BpfObject.load(f); console.log(require("path").basename(f), o.programInfos().length); o.close(); }`;
    const r = spawnSync('setpriv', ['--bounding-set', '-all,+bpf,+perfmon,+net_admin', '--inh-caps', '-all', process.execPath, '-e', script],
      { encoding: 'utf8', timeout: 60_000 });
    expect(r.stderr).toBe('');
    expect(r.stdout.trim().split('\n').map((l) => l.split(' ')[0])).toEqual(files.map((f) => path.basename(f)));
    expect(r.status).toBe(0);
  }, 70_000);
});
