// SPDX-License-Identifier: MIT
/**
 * Compiling a user's CO-RE BPF program the way the package compiles its own (the shared
 * scripts/bpf-toolchain.js): clang for the BPF target with the package's headers and a
 * vmlinux.h per architecture, then a typed skeleton next to the objects.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { genSkeleton } from './btf/gen-skeleton';
import { packageRoot } from './paths';

interface Arch {
  readonly name: string;
  readonly aliases: readonly string[];
  readonly define: string;
  readonly node: string;
}

interface Toolchain {
  ARCHES: readonly Arch[];
  archByName(name: string): Arch | undefined;
  hostArch(): Arch;
  findClang(): string | null;
  findBpftool(): string | null;
  findLlvmStrip(clang: string | null): string | null;
  libbpfHeaders(): string | null;
  shippedVmlinux(packageRoot: string, arch: Arch): string | null;
  generateVmlinux(bpftool: string, btf: string, dest: string): string;
  clangArgs(options: { arch: Arch; includes: string[]; src: string; out: string; extra?: string[] }): string[];
}

let toolchainModule: Toolchain | undefined;
function toolchain(): Toolchain {
  // Plain JavaScript, because scripts/build.js needs it before any TypeScript is built.
  toolchainModule ??= require(path.join(packageRoot(), 'scripts', 'bpf-toolchain.js')) as Toolchain;
  return toolchainModule;
}

/** A problem the user can fix (missing tool, bad argument, compile error): reported in one line. */
export class CompileError extends Error {
  override readonly name = 'CompileError';
  /** clang's diagnostics, when clang failed. */
  readonly diagnostics: string;
  constructor(message: string, diagnostics = '') {
    super(message);
    this.diagnostics = diagnostics;
  }
}

export interface CompileOptions {
  /** The BPF C source (`NAME.bpf.c`). */
  source: string;
  /** Output directory; default: the source's. */
  outDir?: string;
  /** Architectures (x86_64, arm64, any alias); default: this machine's. */
  arches?: readonly string[];
  /**
   * A vmlinux.h instead of the generated or shipped one: for every architecture, or per
   * architecture (`{ arm64: 'arm64/vmlinux.h' }`).
   */
  vmlinux?: string | Readonly<Record<string, string>>;
  /** Module the skeleton imports its runtime from; default 'tcpscope/bpf'. */
  importFrom?: string;
  /** Extra include directories. */
  includes?: readonly string[];
  /** Extra clang arguments (e.g. -DFOO=1). */
  clangFlags?: readonly string[];
}

export interface CompileResult {
  name: string;
  /** Architecture name → object path. */
  objects: Map<string, string>;
  skeleton: string;
  /** Architecture name → the vmlinux.h used and where it came from. */
  headers: Map<string, { path: string; origin: 'option' | 'environment' | 'running kernel' | 'package' }>;
}

/** `port_watch.bpf.c` → `port_watch`. */
export function objectName(source: string): string {
  return path.basename(source).replace(/\.bpf\.c$|\.c$/, '');
}

/** Resolves architecture names; throws naming the bad one. */
export function resolveArches(names: readonly string[] | undefined): Arch[] {
  const tc = toolchain();
  if (!names || names.length === 0) return [tc.hostArch()];
  const out: Arch[] = [];
  for (const n of names) {
    const a = tc.archByName(n);
    if (!a) throw new CompileError(`unknown architecture '${n}': use ${tc.ARCHES.map((x) => x.name).join(', ')}`);
    if (!out.includes(a)) out.push(a);
  }
  return out;
}

function cacheDir(): string {
  const base = process.env['XDG_CACHE_HOME'] || path.join(os.homedir(), '.cache');
  return path.join(base, 'tcpscope');
}

/**
 * The vmlinux.h for `arch`: --vmlinux, $TCPSCOPE_VMLINUX_H, one generated from the running
 * kernel's BTF with bpftool (host architecture; cached per kernel), or the package's own
 * bpf/vmlinux/<arch>/vmlinux.h.
 */
function vmlinuxFor(arch: Arch, option: CompileOptions['vmlinux']): { path: string; origin: 'option' | 'environment' | 'running kernel' | 'package' } {
  const tc = toolchain();
  const explicit = typeof option === 'string' ? option : option ? Object.entries(option).find(([a]) => tc.archByName(a) === arch)?.[1] : undefined;
  if (explicit) {
    if (!fs.existsSync(explicit)) throw new CompileError(`--vmlinux ${explicit}: no such file`);
    return { path: explicit, origin: 'option' };
  }
  // The environment's vmlinux.h (as scripts/build.js takes it) is the host architecture's.
  const env = arch === tc.hostArch() ? process.env['TCPSCOPE_VMLINUX_H'] : undefined;
  if (env) {
    if (!fs.existsSync(env)) throw new CompileError(`TCPSCOPE_VMLINUX_H=${env}: no such file`);
    return { path: env, origin: 'environment' };
  }
  const btf = process.env['TCPSCOPE_BTF'] ?? '/sys/kernel/btf/vmlinux';
  const bpftool = tc.findBpftool();
  if (arch === tc.hostArch() && bpftool && fs.existsSync(btf)) {
    const st = fs.statSync(btf);
    // Sources include it as "vmlinux.h": one directory per kernel.
    const dest = path.join(cacheDir(), 'vmlinux', `${os.release()}-${arch.name}-${st.size}`, 'vmlinux.h');
    if (!fs.existsSync(dest)) {
      try {
        tc.generateVmlinux(bpftool, btf, dest);
      } catch (e) {
        const shipped = tc.shippedVmlinux(packageRoot(), arch);
        if (shipped) return { path: shipped, origin: 'package' };
        throw new CompileError(`cannot generate vmlinux.h: ${(e as Error).message}`);
      }
    }
    return { path: dest, origin: 'running kernel' };
  }
  const shipped = tc.shippedVmlinux(packageRoot(), arch);
  if (shipped) return { path: shipped, origin: 'package' };
  if (arch !== tc.hostArch()) {
    throw new CompileError(`no vmlinux.h for ${arch.name}: this package ships none (bpf/vmlinux/${arch.name}/vmlinux.h); pass --vmlinux ${arch.name}=FILE (bpftool btf dump file <an ${arch.name} kernel's BTF> format c)`);
  }
  throw new CompileError(bpftool
    ? `${btf} is missing (a kernel without BTF) and the package ships no vmlinux.h for ${arch.name}: pass --vmlinux FILE`
    : `bpftool not found, needed to generate vmlinux.h from the running kernel (Debian: apt-get install bpftool; Ubuntu: linux-tools-common), or pass --vmlinux FILE`);
}

/** Compiles `source` for each architecture and writes the skeleton; throws CompileError. */
export function compile(options: CompileOptions): CompileResult {
  const tc = toolchain();
  const source = path.resolve(options.source);
  if (!fs.existsSync(source)) throw new CompileError(`no such file: ${options.source}`);
  if (!/\.c$/.test(source)) throw new CompileError(`${options.source} is not a C source (expected NAME.bpf.c)`);
  const clang = tc.findClang();
  if (!clang) throw new CompileError('clang not found: install it (Debian/Ubuntu: apt-get install clang llvm; Fedora: dnf install clang llvm) or set CLANG=/path/to/clang');
  const libbpf = tc.libbpfHeaders();
  if (!libbpf) throw new CompileError('libbpf headers (bpf/bpf_helpers.h) not found: install libbpf-dev (Fedora: libbpf-devel)');
  const arches = resolveArches(options.arches);
  const name = objectName(source);
  const outDir = path.resolve(options.outDir ?? path.dirname(source));
  fs.mkdirSync(outDir, { recursive: true });
  const strip = tc.findLlvmStrip(clang);
  const objects = new Map<string, string>();
  const embedded = new Map<string, Uint8Array>();
  const headers = new Map<string, { path: string; origin: 'option' | 'environment' | 'running kernel' | 'package' }>();
  for (const arch of arches) {
    const header = vmlinuxFor(arch, options.vmlinux);
    headers.set(arch.name, header);
    const out = path.join(outDir, `${name}.${arch.name}.bpf.o`);
    const tmp = `${out}.${process.pid}.tmp`;
    const includes = [path.dirname(header.path), path.join(packageRoot(), 'bpf', 'include'), path.dirname(source), ...(options.includes ?? [])];
    const r = spawnSync(clang, tc.clangArgs({ arch, includes, src: source, out: tmp, extra: [...(options.clangFlags ?? [])] }), { encoding: 'utf8' });
    if (r.error) throw new CompileError(`${clang}: ${r.error.message}`);
    if (r.status !== 0) {
      fs.rmSync(tmp, { force: true });
      const count = (r.stderr.match(/\berror:/g) ?? []).length;
      throw new CompileError(`clang failed for ${arch.name} (${count || 'an'} error${count === 1 ? '' : 's'} in ${path.relative(process.cwd(), source) || source})`, r.stderr);
    }
    fs.renameSync(tmp, out);
    objects.set(arch.name, out);
    // The skeleton embeds the object without DWARF (BTF and CO-RE relocations stay).
    let bytes: Uint8Array = fs.readFileSync(out);
    if (strip) {
      const stripped = `${out}.${process.pid}.stripped`;
      const s = spawnSync(strip, ['-g', out, '-o', stripped], { encoding: 'utf8' });
      if (s.status === 0) bytes = fs.readFileSync(stripped);
      fs.rmSync(stripped, { force: true });
    }
    embedded.set(arch.node, bytes);
  }
  const skeleton = path.join(outDir, `${name}.skel.ts`);
  const text = genSkeleton({ name, objects: embedded, importFrom: options.importFrom ?? 'tcpscope/bpf', source: path.basename(source) });
  const tmp = `${skeleton}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, skeleton);
  return { name, objects, skeleton, headers };
}

/** Local headers a source includes with "..." (for watch mode), resolved against its directory. */
export function localIncludes(source: string): string[] {
  const seen = new Set<string>();
  const visit = (file: string): void => {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch {
      return;
    }
    for (const m of text.matchAll(/^\s*#\s*include\s+"([^"]+)"/gm)) {
      const p = path.resolve(path.dirname(file), m[1]!);
      if (seen.has(p) || !fs.existsSync(p)) continue;
      seen.add(p);
      visit(p);
    }
  };
  visit(path.resolve(source));
  return [...seen];
}
