#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// The dependency rule of lib/: no import cycles between files, and no import from a lower
// layer into a higher one (the layers are below). Every relative import counts, `import type`
// included: a type-only cycle is still two modules that cannot be understood apart.
// A small script rather than dependency-cruiser: the rule needs only the TypeScript scanner
// the project already has, and no new dependency tree in CI.
// Usage: node scripts/check-deps.js [--graph] [--lib DIR]   (exit 1 and one line per violation)
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const ts = require('typescript');

const root = path.resolve(__dirname, '..');
const libArg = process.argv.indexOf('--lib');
// --lib DIR checks another tree (the tests give it fixtures).
const lib = libArg > 0 ? path.resolve(process.argv[libArg + 1]) : path.join(root, 'lib');
const base = path.dirname(lib);

// Directories of lib/, lowest first. A directory may import from directories of lower layers
// only; directories in the same layer do not import each other. lib/*.ts (the public
// indexes) sit above every layer.
const LAYERS = [
  ['util', 'pcapng', 'owner', 'generated'],
  ['bpf'],
  ['kernel', 'net'],
  ['filter'],
  ['probes'],
  ['classify', 'guard', 'timeline', 'top', 'demo', 'capture'],
  ['alerts'],
  ['detect'],
  ['export'],
  ['serve'],
  ['cli'],
];
const layerOf = new Map();
LAYERS.forEach((dirs, i) => dirs.forEach((d) => layerOf.set(d, i)));
const TOP = LAYERS.length;

function walk(dir, out = []) {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p, out);
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

function resolve(from, spec) {
  const p = path.resolve(path.dirname(from), spec);
  for (const c of [p, `${p}.ts`, path.join(p, 'index.ts')]) {
    if (c.endsWith('.ts') && fs.existsSync(c) && fs.statSync(c).isFile()) return c;
  }
  if (p.endsWith('.js') && fs.existsSync(p.replace(/\.js$/, '.ts'))) return p.replace(/\.js$/, '.ts');
  return undefined;
}

/** Top directory of lib/ a file belongs to ('' for lib/*.ts). */
function area(file) {
  const rel = path.relative(lib, file).split(path.sep);
  return rel.length > 1 ? rel[0] : '';
}

const files = walk(lib).sort();
const graph = new Map();
const problems = [];
for (const f of files) {
  const info = ts.preProcessFile(fs.readFileSync(f, 'utf8'), true, true);
  const deps = new Set();
  for (const { fileName } of info.importedFiles) {
    if (!fileName.startsWith('.')) continue;
    const target = resolve(f, fileName);
    if (!target) { problems.push(`${path.relative(base, f)}: cannot resolve '${fileName}'`); continue; }
    if (!target.startsWith(lib + path.sep)) { problems.push(`${path.relative(base, f)}: imports '${fileName}' from outside lib/`); continue; }
    deps.add(target);
  }
  graph.set(f, [...deps].sort());
}

// Layers.
for (const [f, deps] of graph) {
  const a = area(f);
  const la = a === '' ? TOP : layerOf.get(a);
  if (la === undefined) { problems.push(`${path.relative(base, f)}: lib/${a}/ has no layer in scripts/check-deps.js (add it to LAYERS)`); continue; }
  for (const d of deps) {
    const b = area(d);
    if (b === a) continue;
    const lb = b === '' ? TOP : layerOf.get(b);
    if (lb === undefined) continue; // reported for its own files
    if (lb >= la) {
      problems.push(`${path.relative(base, f)} imports ${path.relative(base, d)}: lib/${b || '*.ts'} is ${lb === la ? 'in the same layer as' : 'above'} lib/${a || '*.ts'} (layers in scripts/check-deps.js)`);
    }
  }
}

// Cycles: strongly connected components (Tarjan, iterative).
const index = new Map();
const low = new Map();
const onStack = new Set();
const stack = [];
let counter = 0;
const sccs = [];
for (const start of files) {
  if (index.has(start)) continue;
  const work = [[start, 0]];
  index.set(start, counter); low.set(start, counter); counter++;
  stack.push(start); onStack.add(start);
  while (work.length) {
    const frame = work[work.length - 1];
    const [v, i] = frame;
    const deps = graph.get(v) ?? [];
    if (i < deps.length) {
      frame[1]++;
      const w = deps[i];
      if (!index.has(w)) {
        index.set(w, counter); low.set(w, counter); counter++;
        stack.push(w); onStack.add(w);
        work.push([w, 0]);
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v), index.get(w)));
      }
    } else {
      work.pop();
      if (work.length) { const u = work[work.length - 1][0]; low.set(u, Math.min(low.get(u), low.get(v))); }
      if (low.get(v) === index.get(v)) {
        const comp = [];
        let w;
        do { w = stack.pop(); onStack.delete(w); comp.push(w); } while (w !== v);
        if (comp.length > 1) sccs.push(comp.sort());
      }
    }
  }
}
for (const comp of sccs) {
  // One concrete cycle through the component, for the message.
  const inComp = new Set(comp);
  const first = comp[0];
  const prev = new Map([[first, null]]);
  const queue = [first];
  let closing;
  while (queue.length && !closing) {
    const v = queue.shift();
    for (const w of graph.get(v)) {
      if (!inComp.has(w)) continue;
      if (w === first) { closing = v; break; }
      if (!prev.has(w)) { prev.set(w, v); queue.push(w); }
    }
  }
  const cycle = [];
  for (let v = closing; v; v = prev.get(v)) cycle.unshift(path.relative(base, v));
  problems.push(`import cycle: ${cycle.join(' -> ')} -> ${path.relative(base, first)}${comp.length > cycle.length ? ` (${comp.length} files in the cycle's component)` : ''}`);
}

if (process.argv.includes('--graph')) {
  for (const [f, deps] of graph) console.log(`${path.relative(base, f)}: ${deps.map((d) => path.relative(base, d)).join(' ')}`);
}
if (problems.length) {
  for (const p of problems) console.error(p);
  console.error(`check-deps: ${problems.length} violation(s) of the dependency rule of lib/`);
  process.exit(1);
}
console.log(`check-deps: ${files.length} files of lib/, no cycles, no upward imports`);
