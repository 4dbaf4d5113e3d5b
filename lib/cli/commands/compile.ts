// SPDX-License-Identifier: MIT
// `tcpscope compile FILE.bpf.c`: builds a user's CO-RE object per architecture and its
// typed skeleton (FILE.skel.ts); --watch rebuilds when the source or its headers change.
import fs from 'node:fs';
import path from 'node:path';
import { CompileError, compile, localIncludes } from '../../bpf/compile';
import type { CompileOptions, CompileResult } from '../../bpf/compile';
import type { Command, CommandContext } from '../command';
import { UsageError } from '../command';

function options(ctx: CommandContext, source: string): CompileOptions {
  const v = ctx.values;
  const opts: CompileOptions = { source };
  if (typeof v['output'] === 'string') opts.outDir = v['output'];
  const arches = (v['arch'] as string[] | undefined)?.flatMap((a) => a.split(',')).filter(Boolean);
  if (arches?.length) opts.arches = arches;
  const vmlinux = v['vmlinux'] as string[] | undefined;
  if (vmlinux?.length) {
    // FILE for every architecture, or ARCH=FILE for one.
    const perArch = vmlinux.filter((x) => /^[\w-]+=/.test(x));
    const all = vmlinux.filter((x) => !/^[\w-]+=/.test(x));
    if (all.length > 1) throw new UsageError('--vmlinux FILE once; per architecture: --vmlinux x86_64=FILE --vmlinux arm64=FILE');
    opts.vmlinux = all.length ? all[0]! : Object.fromEntries(perArch.map((x) => [x.slice(0, x.indexOf('=')), x.slice(x.indexOf('=') + 1)]));
  }
  if (typeof v['import-from'] === 'string') opts.importFrom = v['import-from'];
  const includes = v['include'] as string[] | undefined;
  if (includes?.length) opts.includes = includes;
  const defines = v['define'] as string[] | undefined;
  if (defines?.length) opts.clangFlags = defines.map((d) => `-D${d}`);
  return opts;
}

function report(ctx: CommandContext, r: CompileResult): void {
  const rel = (p: string): string => path.relative(process.cwd(), p) || p;
  for (const [arch, obj] of r.objects) {
    const h = r.headers.get(arch)!;
    ctx.err.write(`compiled ${rel(obj)} (${arch}, vmlinux.h from the ${h.origin}${h.origin === 'package' || h.origin === 'option' ? `: ${rel(h.path)}` : ''})\n`);
  }
  ctx.err.write(`wrote ${rel(r.skeleton)}\n`);
}

/** One build: true when it worked; a compile error is printed, not thrown (watch mode goes on). */
function build(ctx: CommandContext, opts: CompileOptions): boolean {
  try {
    report(ctx, compile(opts));
    return true;
  } catch (e) {
    if (!(e instanceof CompileError)) throw e;
    if (e.diagnostics) ctx.err.write(e.diagnostics.endsWith('\n') ? e.diagnostics : `${e.diagnostics}\n`);
    ctx.err.write(`tcpscope compile: ${e.message}\n`);
    return false;
  }
}

async function watch(ctx: CommandContext, opts: CompileOptions): Promise<number> {
  const watchers = new Map<string, fs.FSWatcher>();
  let timer: NodeJS.Timeout | undefined;
  const rewatch = (): void => {
    // Editors replace files (rename), which ends a watch on the old inode: watch directories.
    const dirs = new Set([opts.source, ...localIncludes(opts.source)].map((f) => path.dirname(path.resolve(f))));
    const files = new Set([opts.source, ...localIncludes(opts.source)].map((f) => path.basename(f)));
    for (const [dir, w] of watchers) if (!dirs.has(dir)) { w.close(); watchers.delete(dir); }
    for (const dir of dirs) {
      if (watchers.has(dir)) continue;
      watchers.set(dir, fs.watch(dir, (_event, file) => {
        if (file && !files.has(String(file))) return;
        clearTimeout(timer);
        timer = setTimeout(() => {
          ctx.err.write(`change in ${file ?? dir}: rebuilding\n`);
          build(ctx, opts);
          rewatch();
        }, 100);
      }));
    }
  };
  build(ctx, opts);
  rewatch();
  ctx.err.write('watching for changes (Ctrl-C stops)\n');
  await new Promise<void>((resolve) => {
    if (ctx.signal.aborted) resolve();
    ctx.signal.addEventListener('abort', () => resolve(), { once: true });
  });
  clearTimeout(timer);
  for (const w of watchers.values()) w.close();
  return 0;
}

export const compileCommand: Command = {
  name: 'compile',
  summary: 'compile a CO-RE BPF program (clang, vmlinux.h, the package headers) and write its typed skeleton',
  usage: '<FILE.bpf.c> [-o DIR] [--arch x86_64,arm64] [--vmlinux [ARCH=]FILE]... [-I DIR]... [-D NAME=VALUE]... [--import-from MODULE] [--watch]',
  options: {
    output: { type: 'string', short: 'o', arg: 'DIR', help: "write the objects (NAME.ARCH.bpf.o) and NAME.skel.ts here (created if missing); default: the source's directory" },
    arch: { type: 'string', multiple: true, arg: 'ARCH[,ARCH]', choices: ['x86_64', 'arm64', 's390x', 'ppc64le', 'riscv64'], help: "build for these architectures, one object each (comma-separated; aliases such as amd64 and aarch64 work too); default: this machine's" },
    vmlinux: { type: 'string', multiple: true, arg: '[ARCH=]FILE', help: 'use this vmlinux.h: FILE for every architecture, or ARCH=FILE for one; default: $TCPSCOPE_VMLINUX_H, one generated from the running kernel\'s BTF, or the package\'s' },
    include: { type: 'string', short: 'I', multiple: true, arg: 'DIR', help: 'add DIR to the header search path (clang -I)' },
    define: { type: 'string', short: 'D', multiple: true, arg: 'NAME[=VALUE]', help: 'define a preprocessor macro (clang -DNAME=VALUE)' },
    'import-from': { type: 'string', arg: 'MODULE', help: "module the skeleton imports its runtime from (default 'tcpscope/bpf')" },
    watch: { type: 'boolean', short: 'w', default: false, help: 'build, then rebuild whenever the source or a header it includes changes, until Ctrl-C' },
  },
  positionalsHelp: 'the BPF C source (NAME.bpf.c), one at a time',
  examples: [
    ['tcpscope compile syncount.bpf.c', "syncount.<arch>.bpf.o and syncount.skel.ts next to the source, for this machine's architecture"],
    ['tcpscope compile src/port_watch.bpf.c -o build --arch x86_64,arm64', 'one object per architecture and one skeleton for both, in build/'],
    ['tcpscope compile probe.bpf.c -I include -D MAX_PORTS=64 --watch', 'rebuild on every change to probe.bpf.c or its local headers'],
  ],
  allowPositionals: true,
  async run(ctx) {
    const [source, ...extra] = ctx.positionals;
    if (!source) throw new UsageError('compile needs a BPF C source: tcpscope compile probe.bpf.c [-o DIR]');
    if (extra.length) throw new UsageError(`one source at a time (got ${ctx.positionals.join(' ')})`);
    const opts = options(ctx, source);
    if (ctx.values['watch']) return watch(ctx, opts);
    return build(ctx, opts) ? 0 : 1;
  },
};
