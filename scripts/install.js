#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// `npm install` step. In a checkout (tsconfig.json present) it builds everything from source,
// tests and examples included, as it always has. In an installed package it compiles nothing
// when the package has a prebuild for this platform (prebuilds/linux-<arch>: the addon and the
// built-in CO-RE objects) that loads here; otherwise, or with TCPSCOPE_BUILD_FROM_SOURCE=1, it
// builds the addon and the built-in objects from source (scripts/build.js says what is missing).
// Installs with --ignore-scripts skip this and use the prebuild directly.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const root = path.resolve(__dirname, '..');
const build = (steps) => {
  const r = spawnSync(process.execPath, [path.join(__dirname, 'build.js'), ...steps], { stdio: 'inherit', cwd: root });
  process.exit(r.status ?? 1);
};

if (fs.existsSync(path.join(root, 'tsconfig.json'))) build([]);

const dir = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
const why = prebuildProblem();
if (!why) process.exit(0);
console.error(`tcpscope: building from source: ${why}`);
build(['addon', 'bpf']);

/** Why the prebuild cannot be used here, or undefined when it can. */
function prebuildProblem() {
  if (process.env.TCPSCOPE_BUILD_FROM_SOURCE === '1') return 'TCPSCOPE_BUILD_FROM_SOURCE=1';
  const addon = path.join(dir, 'tcpscope.node');
  if (!fs.existsSync(addon)) return `no prebuild for ${process.platform}-${process.arch}`;
  const objects = fs.existsSync(path.join(dir, 'bpf')) ? fs.readdirSync(path.join(dir, 'bpf')) : [];
  const missing = fs.readdirSync(path.join(root, 'bpf')).filter((f) => f.endsWith('.bpf.c'))
    .map((f) => f.replace(/\.c$/, '.o')).filter((o) => !objects.includes(o));
  if (missing.length) return `the prebuild lacks ${missing.join(', ')}`;
  try {
    // Proves the glibc (2.35 or newer) and Node-API version fit.
    require(addon);
  } catch (e) {
    return `the prebuilt addon does not load here (${String(e.message).split('\n')[0]})`;
  }
  return undefined;
}
