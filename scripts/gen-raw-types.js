#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// The TypeScript shapes of the records the built-in BPF programs share with lib/ (ring
// records, map values), generated with gen-types from the BTF of the built objects into
// lib/generated/<object>.ts: one definition of each struct, the C one, as libbpf-tools
// shares one header between the two halves of a tool.
//   node scripts/gen-raw-types.js           write lib/generated/*.ts (npm run gen:raw-types)
//   node scripts/gen-raw-types.js --check   fail when a committed file differs from what
//                                           the build's objects give (a struct changed in bpf/)
// Needs the build: build/bpf/*.bpf.o and dist/ (npm run build).
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
// Object (build/bpf/<name>.bpf.o) → the structs lib/ decodes from it.
const OBJECTS = {
  conns: ['conn_event'],
  tcpevents: ['tcp_event', 'rtt_hist_key', 'rtt_hist'],
  guard: ['guard_rule', 'guard_stats', 'guard_config'],
  classify: ['flow_record'],
  packets: ['packet_event'],
};

function load(rel) {
  const file = path.join(root, 'dist', rel);
  if (!fs.existsSync(file)) throw new Error(`${path.relative(root, file)} is missing: run npm run build first`);
  return require(file);
}

const { Btf } = load('lib/bpf/btf/parse.js');
const { genTypes } = load('lib/bpf/btf/gen-types.js');
const check = process.argv.includes('--check');
const outArg = process.argv.indexOf('--out');
// --out DIR writes or checks another directory (the tests use it).
const outDir = outArg > 0 ? path.resolve(process.argv[outArg + 1]) : path.join(root, 'lib', 'generated');
const problems = [];
for (const [object, structs] of Object.entries(OBJECTS)) {
  const objFile = path.join(root, 'build', 'bpf', `${object}.bpf.o`);
  if (!fs.existsSync(objFile)) { problems.push(`${path.relative(root, objFile)} is missing: run npm run build first`); continue; }
  const btf = Btf.fromElf(fs.readFileSync(objFile));
  const text = [
    '// SPDX-License-Identifier: MIT',
    `// From bpf/${object}.bpf.c by scripts/gen-raw-types.js (npm run gen:raw-types); CI fails when stale.`,
    genTypes(btf, structs),
  ].join('\n');
  const out = path.join(outDir, `${object}.ts`);
  if (check) {
    const old = fs.existsSync(out) ? fs.readFileSync(out, 'utf8') : '';
    if (old !== text) problems.push(`${path.relative(root, out)} is stale: a struct of bpf/${object}.bpf.c changed; run npm run gen:raw-types and commit it`);
  } else {
    fs.mkdirSync(outDir, { recursive: true });
    fs.writeFileSync(out, text);
    console.log(`${path.relative(root, out)}: ${structs.join(', ')}`);
  }
}
if (problems.length) {
  for (const p of problems) console.error(p);
  process.exit(1);
}
if (check) console.log(`gen-raw-types: lib/generated/ matches the build (${Object.keys(OBJECTS).length} objects)`);
