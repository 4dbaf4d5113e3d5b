#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// Builds everything `npm install` must produce: the BPF objects (clang, CO-RE against the
// running kernel's BTF), the N-API addon (node-gyp) and the TypeScript output (tsc).
// Each missing prerequisite fails with the packages that provide it.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const outDir = path.join(root, 'build', 'bpf');
const steps = new Set(process.argv.slice(2).length ? process.argv.slice(2) : ['bpf', 'addon', 'ts']);

const PACKAGES = {
  clang: { debian: 'clang llvm', fedora: 'clang llvm' },
  bpftool: { debian: 'bpftool (Ubuntu: linux-tools-common linux-tools-$(uname -r))', fedora: 'bpftool' },
  libbpf: { debian: 'libbpf-dev', fedora: 'libbpf-devel' },
  libelf: { debian: 'libelf-dev', fedora: 'elfutils-libelf-devel' },
  zlib: { debian: 'zlib1g-dev', fedora: 'zlib-devel' },
  'pkg-config': { debian: 'pkg-config', fedora: 'pkgconf-pkg-config' },
};

function missing(what, detail) {
  const p = PACKAGES[what];
  const hint = p ? `\n  Debian/Ubuntu: apt-get install ${p.debian}\n  Fedora:        dnf install ${p.fedora}` : '';
  console.error(`tcpscope build: ${detail}${hint}\n  (scripts/setup-debian.sh installs every prerequisite on Debian/Ubuntu)`);
  process.exit(1);
}

function which(cmd) {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: root, ...opts });
  if (r.error) throw r.error;
  if (r.status !== 0) {
    console.error(`tcpscope build: ${cmd} ${args.join(' ')} failed (exit ${r.status})`);
    process.exit(r.status ?? 1);
  }
}

const toolchain = require('./bpf-toolchain');

function findClang() {
  return toolchain.findClang() ?? missing('clang', 'clang is needed to compile the BPF programs (bpf/*.bpf.c)');
}

function findBpftool() {
  return toolchain.findBpftool() ?? missing('bpftool', 'bpftool is needed to generate vmlinux.h from the kernel BTF');
}

function vmlinuxHeader() {
  const header = path.join(outDir, 'vmlinux.h');
  if (process.env.TCPSCOPE_VMLINUX_H) return process.env.TCPSCOPE_VMLINUX_H;
  if (fs.existsSync(header)) return header;
  const btf = process.env.TCPSCOPE_BTF ?? '/sys/kernel/btf/vmlinux';
  if (!fs.existsSync(btf)) {
    console.error(`tcpscope build: ${btf} is missing: this kernel was built without CONFIG_DEBUG_INFO_BTF.\n` +
      '  Point TCPSCOPE_BTF at a BTF file for it, or TCPSCOPE_VMLINUX_H at a vmlinux.h made elsewhere.');
    process.exit(1);
  }
  return toolchain.generateVmlinux(findBpftool(), btf, header);
}

function bpfSources() {
  return toolchain.bpfSources(root);
}

function newestHeader() {
  let newest = 0;
  const include = path.join(root, 'bpf', 'include');
  for (const f of fs.existsSync(include) ? fs.readdirSync(include) : []) {
    newest = Math.max(newest, fs.statSync(path.join(include, f)).mtimeMs);
  }
  return newest;
}

function buildBpf() {
  fs.mkdirSync(outDir, { recursive: true });
  const clang = findClang();
  if (!toolchain.libbpfHeaders()) {
    missing('libbpf', 'libbpf headers (bpf/bpf_helpers.h) are missing');
  }
  const header = vmlinuxHeader();
  const headersTime = Math.max(newestHeader(), fs.statSync(header).mtimeMs);
  const arch = toolchain.hostArch();
  const seen = new Map();
  for (const src of bpfSources()) {
    const name = path.basename(src).replace(/\.bpf\.c$/, '.bpf.o');
    if (seen.has(name)) {
      console.error(`tcpscope build: ${src} and ${seen.get(name)} would both build ${name}; rename one`);
      process.exit(1);
    }
    seen.set(name, src);
    const obj = path.join(outDir, name);
    if (fs.existsSync(obj)) {
      const built = fs.statSync(obj).mtimeMs;
      if (built > fs.statSync(src).mtimeMs && built > headersTime) continue;
    }
    run(clang, toolchain.clangArgs({ arch, includes: [path.dirname(header), path.join(root, 'bpf', 'include'), path.dirname(src)], src, out: obj }));
  }
}

function buildAddon() {
  const pc = which('pkg-config');
  if (!pc) missing('pkg-config', 'pkg-config is needed to find libbpf');
  for (const [lib, what] of [['libbpf', 'libbpf'], ['libelf', 'libelf'], ['zlib', 'zlib']]) {
    if (spawnSync('pkg-config', ['--exists', lib]).status !== 0) missing(what, `${lib} development files are missing (pkg-config ${lib})`);
  }
  const gyp = process.env.npm_config_node_gyp ??
    (() => { try { return require.resolve('node-gyp/bin/node-gyp.js'); } catch { return null; } })() ??
    path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  // build/tcpscope-sanitize marks an addon built with ASan+UBSan (build:asan): switching
  // either way reconfigures, without wiping build/.
  const marker = path.join(root, 'build', 'tcpscope-sanitize');
  const sanitize = steps.has('addon-asan');
  // binding.gyp newer than the Makefile (a source file added or removed): reconfigure too,
  // or make would build the old file list.
  const makefile = path.join(root, 'build', 'Makefile');
  const stale = fs.existsSync(makefile) && fs.statSync(path.join(root, 'binding.gyp')).mtimeMs > fs.statSync(makefile).mtimeMs;
  if (fs.existsSync(makefile) && (sanitize || fs.existsSync(marker) || stale)) {
    const configure = [gyp, 'configure'];
    const headers = path.join(path.dirname(process.execPath), '..');
    if (!process.env.npm_config_nodedir && fs.existsSync(path.join(headers, 'include', 'node', 'node_api.h'))) configure.push(`--nodedir=${headers}`);
    run(process.execPath, [...configure, '--', `-Dtcpscope_sanitize=${sanitize ? 1 : 0}`]);
    if (sanitize) fs.writeFileSync(marker, 'address,undefined\n');
    else fs.rmSync(marker, { force: true });
  }
  const args = [gyp, fs.existsSync(path.join(root, 'build', 'Makefile')) ? 'build' : 'rebuild'];
  // Build against the headers of the running Node when they are installed beside it, so
  // nothing is downloaded.
  const localHeaders = path.join(path.dirname(process.execPath), '..');
  if (!process.env.npm_config_nodedir && fs.existsSync(path.join(localHeaders, 'include', 'node', 'node_api.h'))) {
    args.push(`--nodedir=${localHeaders}`);
  }
  if (args[1] === 'rebuild') {
    // node-gyp rebuild wipes build/, which also holds the BPF objects: keep them aside.
    const keep = fs.existsSync(outDir) ? fs.mkdtempSync(path.join(require('node:os').tmpdir(), 'tcpscope-bpf-')) : null;
    if (keep) fs.cpSync(outDir, keep, { recursive: true });
    run(process.execPath, args);
    if (keep) { fs.cpSync(keep, outDir, { recursive: true }); fs.rmSync(keep, { recursive: true, force: true }); }
  } else {
    run(process.execPath, args);
  }
}

function buildTs() {
  // An installed package holds the compiled dist/ and no TypeScript sources.
  if (!fs.existsSync(path.join(root, 'tsconfig.json'))) {
    if (fs.existsSync(path.join(root, 'dist', 'lib', 'index.js'))) return;
    console.error('tcpscope build: neither dist/ nor the TypeScript sources are here; reinstall the package');
    process.exit(1);
  }
  let tsc;
  try { tsc = require.resolve('typescript/bin/tsc', { paths: [root] }); } catch { tsc = null; }
  if (!tsc) {
    if (fs.existsSync(path.join(root, 'dist', 'lib', 'index.js'))) return; // installed from a packed tarball
    console.error('tcpscope build: typescript is not installed; run `npm install` in the package directory');
    process.exit(1);
  }
  run(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.json')]);
  const cli = path.join(root, 'dist', 'lib', 'cli', 'main.js');
  if (fs.existsSync(cli)) fs.chmodSync(cli, 0o755);
}

if (steps.has('addon') || steps.has('addon-asan')) buildAddon();
if (steps.has('bpf')) buildBpf();
if (steps.has('ts')) buildTs();
