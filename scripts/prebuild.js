#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// Builds what the npm tarball ships so that installing it compiles nothing:
//   prebuilds/linux-<arch>/tcpscope.node  the N-API addon with libbpf, libelf and zlib linked
//                                         statically (and libstdc++/libgcc), so it needs only glibc
//   prebuilds/linux-<arch>/bpf/*.bpf.o    the built-in probes (bpf/*.bpf.c), CO-RE, compiled
//                                         against bpf/vmlinux/<arch>/vmlinux.h, DWARF stripped
//                                         (BTF and line info kept)
//
//   node scripts/prebuild.js [x64] [arm64] [addon] [bpf]     (default: both arches, both parts)
//
// x64 uses the host compiler; arm64 cross-builds with g++-aarch64-linux-gnu against
// libbpf-dev:arm64, libelf-dev:arm64 and zlib1g-dev:arm64 (`dpkg --add-architecture arm64`).
// Only N-API headers are needed (they are the same for every architecture and Node version).
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const args = process.argv.slice(2);
const arches = args.filter((a) => a === 'x64' || a === 'arm64');
const parts = args.filter((a) => a === 'addon' || a === 'bpf');
const unknown = args.filter((a) => !['x64', 'arm64', 'addon', 'bpf'].includes(a));
if (unknown.length) {
  console.error(`prebuild: unknown argument ${unknown[0]} (expected x64, arm64, addon, bpf)`);
  process.exit(2);
}

const TARGETS = {
  x64: { triple: 'x86_64-linux-gnu', cc: 'gcc', cxx: 'g++', bpfArch: 'x86', pkg: '' },
  arm64: { triple: 'aarch64-linux-gnu', cc: 'aarch64-linux-gnu-gcc', cxx: 'aarch64-linux-gnu-g++', bpfArch: 'arm64', pkg: ':arm64' },
};

function run(cmd, argv, opts = {}) {
  const r = spawnSync(cmd, argv, { stdio: 'inherit', cwd: root, ...opts });
  if (r.error) {
    console.error(`prebuild: cannot run ${cmd}: ${r.error.message}`);
    process.exit(1);
  }
  if (r.status !== 0) {
    console.error(`prebuild: ${cmd} ${argv.join(' ')} failed (exit ${r.status})`);
    process.exit(r.status ?? 1);
  }
  return r.stdout ? r.stdout.toString() : '';
}

function need(file, pkg) {
  if (!fs.existsSync(file)) {
    console.error(`prebuild: ${file} is missing: apt-get install ${pkg}`);
    process.exit(1);
  }
  return file;
}

function nodeApiHeaders() {
  for (const dir of [process.env.TCPSCOPE_NODE_API_HEADERS, path.join(path.dirname(process.execPath), '..', 'include', 'node'), '/usr/include/node']) {
    if (dir && fs.existsSync(path.join(dir, 'node_api.h'))) return dir;
  }
  try {
    return path.dirname(require.resolve('node-api-headers/include/node_api.h', { paths: [root] }));
  } catch {
    console.error('prebuild: node_api.h not found: set TCPSCOPE_NODE_API_HEADERS or `npm install --no-save node-api-headers`');
    return process.exit(1);
  }
}

function buildAddon(arch) {
  const t = TARGETS[arch];
  const libdir = `/usr/lib/${t.triple}`;
  const statics = ['libbpf.a', 'libelf.a', 'libz.a'].map((f, i) =>
    need(path.join(libdir, f), ['libbpf-dev', 'libelf-dev', 'zlib1g-dev'][i] + t.pkg));
  const outDir = path.join(root, 'prebuilds', `linux-${arch}`);
  fs.mkdirSync(outDir, { recursive: true });
  const sources = fs.readdirSync(path.join(root, 'native')).filter((f) => f.endsWith('.cc')).sort().map((f) => path.join('native', f));
  const addonApi = require('node-addon-api').include_dir;
  const out = path.join(outDir, 'tcpscope.node');
  // libelf's error-number object, rebuilt position-independent (see native/static/elf_error.c).
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tcpscope-prebuild-'));
  const shims = ['elf_error', 'stderr'].map((name) => {
    const o = path.join(tmp, `${name}.o`);
    run(t.cc, ['-std=gnu99', '-O2', '-fPIC', '-c', path.join('native', 'static', `${name}.c`), '-o', o]);
    return o;
  });
  const trace = run(t.cxx, [
    '-shared', '-fPIC', '-O2', '-std=c++17', '-fexceptions', '-fvisibility=hidden', '-Wall', '-Wno-missing-field-initializers',
    '-DNAPI_VERSION=8', '-DNODE_ADDON_API_DISABLE_DEPRECATED', '-DBUILDING_NODE_EXTENSION',
    '-I', nodeApiHeaders(), '-I', path.join(root, addonApi.replace(/^"|"$/g, '')),
    ...sources, ...shims,
    '-o', out, '-Wl,--trace',
    '-Wl,--as-needed', '-Wl,-z,relro,-z,now', '-Wl,--gc-sections', '-s',
    `-Wl,--version-script=${path.join(root, 'native', 'static', 'exports.map')}`, '-Wl,-z,text',
    ...statics,
    '-static-libstdc++', '-static-libgcc',
  ], { stdio: ['ignore', 'pipe', 'inherit'] });
  fs.rmSync(tmp, { recursive: true, force: true });
  if (/libelf\.a\)elf_error\.o/.test(trace)) {
    console.error('prebuild: the link took elf_error.o from libelf.a (local-exec TLS, wrong in a shared object)');
    process.exit(1);
  }
  return out;
}

function buildBpf(arch) {
  const t = TARGETS[arch];
  const clang = process.env.CLANG || 'clang';
  const strip = process.env.LLVM_STRIP || 'llvm-strip';
  const header = need(path.join(root, 'bpf', 'vmlinux', t.bpfArch, 'vmlinux.h'), '(see scripts/vmlinux-h.js)');
  const outDir = path.join(root, 'prebuilds', `linux-${arch}`, 'bpf');
  fs.rmSync(outDir, { recursive: true, force: true });
  fs.mkdirSync(outDir, { recursive: true });
  const built = [];
  for (const src of fs.readdirSync(path.join(root, 'bpf')).filter((f) => f.endsWith('.bpf.c')).sort()) {
    const obj = path.join(outDir, src.replace(/\.c$/, '.o'));
    run(clang, ['-target', 'bpf', `-D__TARGET_ARCH_${t.bpfArch}`, '-g', '-O2', '-Wall', '-Wno-unused-function',
      '-I', path.dirname(header), '-I', path.join(root, 'bpf', 'include'), '-I', path.join(root, 'bpf'),
      '-c', path.join('bpf', src), '-o', obj]);
    // DWARF is for debuggers; libbpf needs only .BTF and .BTF.ext (CO-RE relocations, line info).
    run(strip, ['--strip-debug', obj]);
    built.push(obj);
  }
  return built;
}

const t0 = Date.now();
if (!arches.length) {
  // Both architectures at once: each is one compiler process at a time.
  const children = ['x64', 'arm64'].map((arch) => require('node:child_process').spawn(process.execPath, [__filename, arch, ...parts], { stdio: 'inherit' }));
  Promise.all(children.map((c) => new Promise((resolve) => c.on('close', resolve)))).then((codes) => {
    const bad = codes.find((c) => c !== 0);
    if (bad !== undefined) process.exit(bad ?? 1);
    console.error(`prebuild: both architectures in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  });
  return;
}
for (const arch of arches) {
  if (!parts.length || parts.includes('addon')) {
    const f = buildAddon(arch);
    console.error(`prebuild: ${path.relative(root, f)} (${(fs.statSync(f).size / 1024).toFixed(0)} KiB)`);
  }
  if (!parts.length || parts.includes('bpf')) {
    const objs = buildBpf(arch);
    const kib = objs.reduce((s, f) => s + fs.statSync(f).size, 0) / 1024;
    console.error(`prebuild: ${objs.length} objects in ${path.relative(root, path.dirname(objs[0]))} (${kib.toFixed(0)} KiB)`);
  }
}
console.error(`prebuild: done in ${((Date.now() - t0) / 1000).toFixed(1)} s on ${os.cpus().length} CPUs`);
