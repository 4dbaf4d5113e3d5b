#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// The API report: every name the package's entry points (lib/index.ts as `tcpscope`,
// lib/bpf/index.ts as `tcpscope/bpf`) export, with its declared shape, in api/*.api.md.
// Public changes are then deliberate: they show in the diff of the report.
//   node scripts/api-report.js           write the reports (npm run api:update)
//   node scripts/api-report.js --check   fail when a report is stale, or when an entry
//                                        point exports a name marked @internal
// The TypeScript checker the project already has, rather than api-extractor: one script,
// no new dependency tree, and the report lists members of every exported type.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const ts = require('typescript');

const root = path.resolve(__dirname, '..');
// --entry FILE --report FILE: one other entry point (the tests give fixtures).
const arg = (flag) => { const i = process.argv.indexOf(flag); return i > 0 ? path.resolve(process.argv[i + 1]) : undefined; };
const fixture = arg('--entry');
const ENTRIES = fixture ? [{ name: path.basename(fixture), file: fixture, report: arg('--report') }] : [
  { name: 'tcpscope', file: 'lib/index.ts', report: 'api/tcpscope.api.md' },
  { name: 'tcpscope/bpf', file: 'lib/bpf/index.ts', report: 'api/tcpscope-bpf.api.md' },
];

const config = ts.getParsedCommandLineOfConfigFile(path.join(root, 'tsconfig.json'), {}, {
  ...ts.sys, onUnRecoverableConfigFileDiagnostic: (d) => { throw new Error(ts.flattenDiagnosticMessageText(d.messageText, '\n')); },
});
const program = ts.createProgram(ENTRIES.map((e) => path.resolve(root, e.file)), { ...config.options, noEmit: true });
const checker = program.getTypeChecker();
const FLAGS = ts.TypeFormatFlags.NoTruncation | ts.TypeFormatFlags.UseSingleQuotesForStringLiteralType | ts.TypeFormatFlags.WriteArrayAsGenericType;

function isInternal(symbol) {
  return symbol.getJsDocTags(checker).some((t) => t.name === 'internal');
}

function typeText(type, at) {
  return checker.typeToString(type, at, FLAGS);
}

function signatures(type, at, prefix) {
  return type.getCallSignatures().map((s) => `${prefix}${checker.signatureToString(s, at, FLAGS)}`);
}

const libDir = (fixture ? path.dirname(fixture) : path.join(root, 'lib')) + path.sep;
/** Declared in the project (not inherited from TypeScript's or Node's declarations, which change with their versions). */
function ours(symbol) {
  const decls = symbol.declarations ?? [];
  return decls.length > 0 && decls.every((d) => d.getSourceFile().fileName.startsWith(libDir));
}

/** Well-known symbols read as [Symbol.x] (the checker names them __@x@<id>, with an id that changes). */
function memberName(p) {
  const n = p.getName();
  const m = /^__@(\w+)@\d+$/.exec(n);
  return m ? `[Symbol.${m[1]}]` : n;
}

function isPrivate(decl) {
  const mods = ts.canHaveModifiers(decl) ? ts.getModifiers(decl) ?? [] : [];
  return mods.some((m) => m.kind === ts.SyntaxKind.PrivateKeyword || m.kind === ts.SyntaxKind.ProtectedKeyword) ||
    (decl.name && ts.isPrivateIdentifier(decl.name));
}

/** Members of an interface or class instance type, one line each. */
function members(type, at, indent) {
  const out = [];
  for (const p of checker.getPropertiesOfType(type)) {
    const decl = p.valueDeclaration ?? p.declarations?.[0];
    if (decl && isPrivate(decl)) continue;
    if (!ours(p)) continue;
    const name = memberName(p);
    if (isInternal(p)) { out.push(`${indent}${name}: /* @internal */`); continue; }
    const pt = checker.getTypeOfSymbolAtLocation(p, decl ?? at);
    const opt = p.flags & ts.SymbolFlags.Optional ? '?' : '';
    const ro = decl && ts.getCombinedModifierFlags(decl) & ts.ModifierFlags.Readonly ? 'readonly ' : '';
    if (p.flags & ts.SymbolFlags.Method) {
      for (const s of signatures(pt, at, `${indent}${name}${opt}`)) out.push(s);
    } else if (p.flags & ts.SymbolFlags.GetAccessor && !(p.flags & ts.SymbolFlags.SetAccessor)) {
      out.push(`${indent}get ${name}(): ${typeText(pt, at)}`);
    } else {
      out.push(`${indent}${ro}${name}${opt}: ${typeText(pt, at)}`);
    }
  }
  for (const info of checker.getIndexInfosOfType(type)) out.push(`${indent}[key: ${typeText(info.keyType, at)}]: ${typeText(info.type, at)}`);
  for (const s of type.getCallSignatures()) out.push(`${indent}${checker.signatureToString(s, at, FLAGS)}`);
  return out;
}

function describe(name, symbol, at, indent = '') {
  const s = symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol;
  const decl = s.valueDeclaration ?? s.declarations?.[0] ?? at;
  const lines = [];
  const f = s.flags;
  if (f & ts.SymbolFlags.Class) {
    const inst = checker.getDeclaredTypeOfSymbol(s);
    const ctor = checker.getTypeOfSymbolAtLocation(s, decl);
    const baseTypes = checker.getBaseTypes(inst);
    for (const b of baseTypes) {
      for (const arg of checker.getTypeArguments(b)) {
        const named = arg.aliasSymbol ?? arg.getSymbol();
        if (named && ours(named) && !exported.has(named)) {
          problems.push(`class ${name} extends ${typeText(b, decl)}: ${typeText(arg, decl)} is not exported; export it or type the base with exported types`);
        }
      }
    }
    const bases = baseTypes.map((b) => typeText(b, decl));
    lines.push(`${indent}class ${name}${bases.length ? ` extends ${bases.join(', ')}` : ''} {`);
    for (const c of ctor.getConstructSignatures()) {
      const cdecl = c.getDeclaration();
      if (cdecl && (isPrivate(cdecl) || ts.getJSDocTags(cdecl).some((t) => t.tagName.text === 'internal'))) continue;
      lines.push(`${indent}  constructor${checker.signatureToString(c, decl, FLAGS).replace(/:\s*[^:]+$/, '')}`);
    }
    for (const p of checker.getPropertiesOfType(ctor)) {
      if (p.getName() === 'prototype' || !ours(p)) continue;
      const pd = p.valueDeclaration ?? p.declarations?.[0];
      if (pd && isPrivate(pd)) continue;
      const pt = checker.getTypeOfSymbolAtLocation(p, pd ?? decl);
      if (p.flags & ts.SymbolFlags.Method) for (const sig of signatures(pt, decl, `${indent}  static ${p.getName()}`)) lines.push(sig);
      else lines.push(`${indent}  static ${p.getName()}: ${typeText(pt, decl)}`);
    }
    lines.push(...members(inst, decl, `${indent}  `), `${indent}}`);
  } else if (f & ts.SymbolFlags.Enum) {
    lines.push(`${indent}enum ${name} {`);
    for (const m of checker.getExportsOfModule(s)) lines.push(`${indent}  ${m.getName()} = ${checker.getConstantValue(m.valueDeclaration)},`);
    lines.push(`${indent}}`);
  } else if (f & ts.SymbolFlags.Function) {
    const t = checker.getTypeOfSymbolAtLocation(s, decl);
    for (const sig of signatures(t, decl, `${indent}function ${name}`)) lines.push(sig);
  } else if (f & ts.SymbolFlags.Interface) {
    const t = checker.getDeclaredTypeOfSymbol(s);
    const params = t.typeParameters?.length ? `<${t.typeParameters.map((p) => typeText(p, decl)).join(', ')}>` : '';
    lines.push(`${indent}interface ${name}${params} {`, ...members(t, decl, `${indent}  `), `${indent}}`);
  } else if (f & ts.SymbolFlags.TypeAlias) {
    const d = s.declarations.find(ts.isTypeAliasDeclaration);
    const params = d.typeParameters ? `<${d.typeParameters.map((p) => p.getText()).join(', ')}>` : '';
    lines.push(`${indent}type ${name}${params} = ${d.type.getText().replace(/\s+/g, ' ')}`);
  } else if (f & ts.SymbolFlags.Variable) {
    const t = checker.getTypeOfSymbolAtLocation(s, decl);
    lines.push(`${indent}const ${name}: ${typeText(t, decl)}`);
  } else if (f & (ts.SymbolFlags.ValueModule | ts.SymbolFlags.NamespaceModule)) {
    lines.push(`${indent}namespace ${name} {`);
    for (const m of [...checker.getExportsOfModule(s)].sort((a, b) => a.getName().localeCompare(b.getName()))) {
      lines.push(...describe(m.getName(), m, decl, `${indent}  `));
    }
    lines.push(`${indent}}`);
  } else {
    lines.push(`${indent}${name}: (unknown kind ${f})`);
  }
  return lines;
}

const problems = [];
const check = process.argv.includes('--check');
const exportsOfEntry = new Map(ENTRIES.map((entry) => {
  const moduleSymbol = checker.getSymbolAtLocation(program.getSourceFile(path.resolve(root, entry.file)));
  return [entry, [...checker.getExportsOfModule(moduleSymbol)].sort((a, b) => a.getName().localeCompare(b.getName()))];
}));
/** What the entry points export (the declarations, not the re-exporting aliases). */
const exported = new Set([...exportsOfEntry.values()].flat().map((sym) => (sym.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(sym) : sym)));
for (const entry of ENTRIES) {
  const sf = program.getSourceFile(path.resolve(root, entry.file));
  const exportsOf = exportsOfEntry.get(entry);
  if (/^\s*export\s+\*\s+from/m.test(sf.text)) problems.push(`${path.relative(root, path.resolve(root, entry.file))}: 'export * from' re-exports whatever a module adds; list the public names`);
  const body = [];
  for (const sym of exportsOf) {
    const target = sym.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(sym) : sym;
    if (isInternal(target)) problems.push(`${path.basename(entry.file)} exports ${sym.getName()}, which is marked @internal`);
    body.push(...describe(sym.getName(), sym, sf), '');
  }
  const text = [
    `# API report: ${entry.name}`,
    '',
    `Generated by scripts/api-report.js from ${path.relative(root, path.resolve(root, entry.file))} (\`npm run api:update\`); CI fails when it is stale.`,
    `${exportsOf.length} exported names.`,
    '',
    '```ts',
    ...body.slice(0, -1),
    '```',
    '',
  ].join('\n')
    // Types TypeScript names by import("/abs/path/..."): relative to the repository, so the
    // report is the same in every clone.
    .split(`import("${root}/`).join('import("./');
  const out = path.resolve(root, entry.report);
  if (check) {
    const old = fs.existsSync(out) ? fs.readFileSync(out, 'utf8') : '';
    if (old !== text) problems.push(`${path.basename(entry.report)} is stale: the public API of ${entry.name} changed; run npm run api:update and commit the report`);
  } else {
    fs.mkdirSync(path.dirname(out), { recursive: true });
    fs.writeFileSync(out, text);
    console.log(`${path.relative(root, out)}: ${exportsOf.length} names`);
  }
}
if (problems.length) {
  for (const p of problems) console.error(p);
  process.exit(1);
}
if (check) console.log('api-report: reports up to date');
