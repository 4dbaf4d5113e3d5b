#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// vmtest/arm64/objects.js VMLINUX_H OUTDIR: compiles the package's BPF programs (the same
// sources and flags as scripts/build.js, scripts/bpf-toolchain.js) for arm64 against an arm64
// vmlinux.h into OUTDIR, which the arm64 guests see as build/bpf. Objects newer than their
// source, the headers and vmlinux.h are kept.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..', '..');
const toolchain = require(path.join(root, 'scripts', 'bpf-toolchain.js'));
const [header, outDir] = process.argv.slice(2);
if (!header || !outDir) {
  console.error('usage: vmtest/arm64/objects.js VMLINUX_H OUTDIR');
  process.exit(2);
}
const clang = toolchain.findClang();
if (!clang) {
  console.error('vmtest: clang not found (apt-get install clang llvm)');
  process.exit(1);
}
const arch = toolchain.archByName('arm64');
fs.mkdirSync(outDir, { recursive: true });
const include = path.join(root, 'bpf', 'include');
const newest = Math.max(fs.statSync(header).mtimeMs, ...fs.readdirSync(include).map((f) => fs.statSync(path.join(include, f)).mtimeMs));
let built = 0;
for (const src of toolchain.bpfSources(root)) {
  const out = path.join(outDir, path.basename(src).replace(/\.bpf\.c$/, '.bpf.o'));
  if (fs.existsSync(out)) {
    const t = fs.statSync(out).mtimeMs;
    if (t > fs.statSync(src).mtimeMs && t > newest) continue;
  }
  const r = spawnSync(clang, toolchain.clangArgs({ arch, includes: [path.dirname(header), include, path.dirname(src)], src, out }), { stdio: 'inherit' });
  if (r.status !== 0) {
    console.error(`vmtest: compiling ${path.relative(root, src)} for arm64 failed`);
    process.exit(1);
  }
  built++;
}
if (built) console.error(`vmtest: ${built} BPF object(s) compiled for arm64 in ${outDir}`);
