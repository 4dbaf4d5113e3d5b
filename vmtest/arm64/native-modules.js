#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// vmtest/arm64/native-modules.js CACHEDIR DIR...: the arm64 builds of the platform-specific
// npm packages installed in each DIR/node_modules for linux-x64 (a bundler's native binding
// such as @rolldown/binding-linux-x64-gnu, lightningcss-linux-x64-gnu, @esbuild/linux-x64),
// same versions, installed with npm into CACHEDIR. Prints "SRC=DST" bind pairs that put
// them beside the x64 ones in the guest, where the arm64 node looks for them.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const [cacheArg, ...dirs] = process.argv.slice(2);
const cacheDir = path.resolve(cacheArg);
const wanted = new Map(); // arm64 name@version -> [destination dirs]
for (const dir of dirs.map((d) => path.resolve(d))) {
  const nm = path.join(dir, 'node_modules');
  if (!fs.existsSync(nm)) continue;
  const names = [];
  for (const e of fs.readdirSync(nm)) {
    if (e.startsWith('@')) for (const s of fs.readdirSync(path.join(nm, e))) names.push(`${e}/${s}`);
    else names.push(e);
  }
  for (const name of names) {
    if (!/(^|[-/])linux-x64(-gnu)?$/.test(name)) continue;
    let version;
    try {
      version = JSON.parse(fs.readFileSync(path.join(nm, name, 'package.json'), 'utf8')).version;
    } catch {
      continue;
    }
    const arm = name.replace(/linux-x64/, 'linux-arm64');
    const key = `${arm}@${version}`;
    wanted.set(key, [...(wanted.get(key) ?? []), path.join(nm, arm)]);
  }
}
if (wanted.size === 0) process.exit(0);
// One npm prefix per package version: two projects may pin different versions.
const binds = [];
for (const [spec, dests] of [...wanted].sort()) {
  const name = spec.slice(0, spec.lastIndexOf('@'));
  const prefix = path.join(cacheDir, 'native-modules', spec.replace(/[^\w.@-]/g, '_'));
  if (!fs.existsSync(path.join(prefix, '.complete'))) {
    fs.mkdirSync(prefix, { recursive: true });
    const r = spawnSync('npm', ['install', '--prefix', prefix, '--no-save', '--no-package-lock', '--no-audit', '--no-fund', '--force', '--os=linux', '--cpu=arm64', spec], { stdio: ['ignore', 'ignore', 'ignore'] });
    if (r.status !== 0) {
      console.error(`vmtest: npm install ${spec} (for the arm64 guests) failed`);
      process.exit(1);
    }
    fs.writeFileSync(path.join(prefix, '.complete'), '');
    console.error(`vmtest: ${spec} for the arm64 guests`);
  }
  for (const dest of dests) binds.push(`${path.join(prefix, 'node_modules', name)}=${dest}`);
}
console.log(binds.join(' '));
