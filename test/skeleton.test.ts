// SPDX-License-Identifier: MIT
// `tcpscope compile` and typed skeletons: the command as a user runs it, the generated file
// under the strictest compiler settings (a misspelt name fails), and the skeleton driving a
// real object (maps, globals, ring and perf buffers) through BPF_PROG_TEST_RUN.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { tcpFrame } from '../lib/bpf';
import type { Skeleton, SkeletonOptions } from '../lib/bpf';
import { ROOT, bpfAvailable } from './helpers/bpf';

const CLI = path.join(ROOT, 'dist', 'lib', 'cli', 'main.js');
const FIXTURE = path.join(ROOT, 'test', 'fixtures', 'skeleton', 'skel_demo.bpf.c');
// The built declarations, as an installed package provides them.
const LIB_BPF = path.join(ROOT, 'dist', 'lib', 'bpf');
let dir: string;

function tcpscope(args: string[], env: NodeJS.ProcessEnv = process.env): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 60_000, env });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** tsc as a strict user project runs it: returns its output (empty when it compiled). */
function tsc(files: string[]): { status: number | null; output: string } {
  const flags = [
    '--noEmit', '--strict', '--exactOptionalPropertyTypes', '--erasableSyntaxOnly', '--isolatedModules', '--noUncheckedIndexedAccess',
    '--target', 'es2022', '--module', 'commonjs', '--moduleResolution', 'node', '--lib', 'es2022,esnext.disposable',
    '--types', 'node', '--typeRoots', path.join(ROOT, 'node_modules', '@types'), '--skipLibCheck',
  ];
  const r = spawnSync(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), ...flags, ...files], { cwd: dir, encoding: 'utf8' });
  return { status: r.status, output: r.stdout + r.stderr };
}

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), `tcpscope-skel-${process.pid}-`));
  const r = tcpscope(['compile', FIXTURE, '-o', dir, '--import-from', LIB_BPF]);
  if (r.status !== 0) throw new Error(`tcpscope compile failed: ${r.stderr}`);
}, 60_000);

afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('tcpscope compile', () => {
  it('writes the object per architecture and the skeleton next to it', () => {
    expect(fs.existsSync(path.join(dir, 'skel_demo.x86_64.bpf.o')) || fs.existsSync(path.join(dir, 'skel_demo.arm64.bpf.o'))).toBe(true);
    const skel = fs.readFileSync(path.join(dir, 'skel_demo.skel.ts'), 'utf8');
    // PascalCase types, enums as const objects, the program's own types only.
    expect(skel).toMatch(/^export interface PortKey \{/m);
    expect(skel).toMatch(/^export interface PortHit \{/m);
    expect(skel).toMatch(/^export const Verdict = \{\n {2}VERDICT_PASS: 0,/m);
    expect(skel).toMatch(/^export type Verdict = \(typeof Verdict\)\[keyof typeof Verdict\];/m);
    expect(skel).not.toMatch(/\benum\s+\w+\s*\{/);
    expect(skel).not.toMatch(/interface (SkBuff|Iphdr|Tcphdr|Ethhdr)\b/);
    expect(skel).toMatch(/hits_by_port: \{ key: PortKey; value: bigint \};/);
    expect(skel).toMatch(/tcp_frames: \{ key: number; value: bigint; perCpu: true \};/);
    expect(skel).toMatch(/verdict_slots: \{ key: number; value: Verdict \};/);
    expect(skel).toMatch(/ringBuffers: \{\n.*\n {4}hits: PortHit;/);
    expect(skel).toMatch(/perfBuffers: \{\n.*\n {4}hits_perf: PortHit;/);
    // tcpscope.h's ring bookkeeping stays out of the user's globals.
    expect(skel).not.toMatch(/hits_lost|hits_reader_idle|tcpscope_wakeup_bytes/);
  });

  it('builds one object per architecture and embeds each in the skeleton', () => {
    const multi = path.join(dir, 'multi');
    // The fixture uses no PT_REGS: any vmlinux.h compiles it for arm64.
    const header = path.join(ROOT, 'build', 'bpf', 'vmlinux.h');
    const r = tcpscope(['compile', FIXTURE, '-o', multi, '--arch', 'x86_64,arm64', '--vmlinux', `arm64=${header}`, '--import-from', LIB_BPF]);
    expect(r.stderr).toMatch(/compiled .*skel_demo\.arm64\.bpf\.o \(arm64, vmlinux\.h from the option/);
    expect(r.status).toBe(0);
    expect(fs.existsSync(path.join(multi, 'skel_demo.x86_64.bpf.o'))).toBe(true);
    expect(fs.existsSync(path.join(multi, 'skel_demo.arm64.bpf.o'))).toBe(true);
    const skel = fs.readFileSync(path.join(multi, 'skel_demo.skel.ts'), 'utf8');
    expect(skel).toMatch(/^ {2}x64: "f0VMR/m);
    expect(skel).toMatch(/^ {2}arm64: "f0VMR/m);
    // Without a vmlinux.h for another architecture: what to pass.
    const none = tcpscope(['compile', FIXTURE, '-o', multi, '--arch', 'arm64'], { ...process.env, TCPSCOPE_VMLINUX_H: '' });
    if (!fs.existsSync(path.join(ROOT, 'bpf', 'vmlinux', 'arm64', 'vmlinux.h'))) {
      expect(none.status).toBe(1);
      expect(none.stderr).toMatch(/^tcpscope compile: no vmlinux\.h for arm64: .*pass --vmlinux arm64=FILE/);
    }
  });

  it('names a missing file, an unknown architecture and a compile error in one line each', () => {
    const missing = tcpscope(['compile', '/nonexistent/x.bpf.c']);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toBe('tcpscope compile: no such file: /nonexistent/x.bpf.c\n');
    const arch = tcpscope(['compile', FIXTURE, '-o', dir, '--arch', 'sparc']);
    expect(arch.status).toBe(1);
    expect(arch.stderr).toMatch(/^tcpscope compile: unknown architecture 'sparc': use x86_64, arm64/);
    const bad = path.join(dir, 'bad.bpf.c');
    fs.writeFileSync(bad, '#include "vmlinux.h"\nint f(void) { return undeclared; }\n');
    const r = tcpscope(['compile', bad, '-o', dir]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/use of undeclared identifier 'undeclared'/);
    expect(r.stderr.trimEnd().split('\n').pop()).toMatch(/^tcpscope compile: clang failed for \w+ \(1 error in .*bad\.bpf\.c\)$/);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
  });

  it('--watch rebuilds when the source or a header it includes changes, and stops on SIGINT', async () => {
    const wdir = path.join(dir, 'watch');
    fs.mkdirSync(wdir);
    fs.writeFileSync(path.join(wdir, 'limits.h'), '#define LIMIT 1\n');
    const src = path.join(wdir, 'w.bpf.c');
    fs.writeFileSync(src, '#include "vmlinux.h"\n#include <bpf/bpf_helpers.h>\n#include "limits.h"\nconst volatile __u32 limit = LIMIT;\nSEC("tc") int w(struct __sk_buff *skb) { return limit; }\nchar LICENSE[] SEC("license") = "GPL";\n');
    const child = spawn(process.execPath, [CLI, 'compile', src, '--watch', '--import-from', LIB_BPF], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    const waitFor = (re: RegExp, from: number): Promise<void> => new Promise((resolve, reject) => {
      const check = (): void => { if (re.test(err.slice(from))) { child.stderr.off('data', onData); resolve(); } };
      const onData = (b: Buffer): void => { err += b.toString(); check(); };
      child.stderr.on('data', onData);
      child.once('exit', () => reject(new Error(`compile --watch exited; stderr: ${err}`)));
      check();
    });
    try {
      await waitFor(/watching for changes/, 0);
      const skel = path.join(wdir, 'w.skel.ts');
      const first = fs.readFileSync(skel, 'utf8');
      let mark = err.length;
      fs.writeFileSync(path.join(wdir, 'limits.h'), '#define LIMIT 2\n'); // a header change
      await waitFor(/change in limits\.h: rebuilding\n[^]*wrote .*w\.skel\.ts/, mark);
      const second = fs.readFileSync(skel, 'utf8');
      expect(second).not.toBe(first); // the object (and its .rodata) changed
      mark = err.length;
      fs.writeFileSync(src, fs.readFileSync(src, 'utf8').replace('return limit;', 'return undeclared;')); // a broken source
      await waitFor(/use of undeclared identifier 'undeclared'[^]*tcpscope compile: clang failed/, mark);
      expect(fs.readFileSync(skel, 'utf8')).toBe(second); // the last good build stays
    } finally {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGINT');
      await exited;
    }
    expect(child.exitCode).toBe(0);
  }, 120_000);

  it('says clang is missing in one line', () => {
    const r = tcpscope(['compile', FIXTURE, '-o', dir], { ...process.env, PATH: '/nonexistent', CLANG: '' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^tcpscope compile: clang not found: install it \(Debian\/Ubuntu: apt-get install clang llvm/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('the skeleton type-checks under strict, exactOptionalPropertyTypes, erasableSyntaxOnly and isolatedModules; wrong names fail', () => {
    fs.writeFileSync(path.join(dir, 'use.ts'), [
      "import { open, Verdict, VerdictNames } from './skel_demo.skel';",
      "import type { PortHit, SkelDemo } from './skel_demo.skel';",
      'export function use(): SkelDemo {',
      '  const skel = open({ rodata: { watched_port: 8080 }, maxEntries: { hits: 1 << 20 }, skipPrograms: [] });',
      '  skel.rodata.watched_port = 443;',
      '  skel.load();',
      '  const n: bigint | undefined = skel.maps.hits_by_port.get({ port: 443, proto: 6, pad: 0 });',
      '  const v: Verdict | undefined = skel.maps.verdict_slots.get(0);',
      '  const perCpu: bigint[] | undefined = skel.maps.tcp_frames.get(0);',
      '  const watched: boolean = v === Verdict.VERDICT_WATCHED;',
      '  const name: string | undefined = v === undefined ? undefined : VerdictNames.get(v);',
      '  const seen: bigint = skel.bss.frames_seen;',
      '  const last: number = skel.data.last_verdict;',
      '  skel.programs.watch_port.attachTc(\'lo\');',
      '  const ring = skel.ringBuffers.hits({ wakeupMs: 5 });',
      '  const perf = skel.perfBuffers.hits_perf({ pagesPerCpu: 8 });',
      '  void (async () => { for await (const hit of ring) { const h: PortHit = hit; void h.sport; } for await (const hit of perf) void hit.verdict; })();',
      '  void [n, watched, name, seen, last, perCpu];',
      '  // @ts-expect-error a per-CPU map gives one value per CPU, not one',
      '  const one: bigint | undefined = skel.maps.tcp_frames.get(0); void one;',
      '  // @ts-expect-error a map that does not exist',
      '  void skel.maps.hits_by_prot;',
      '  // @ts-expect-error a program that does not exist',
      '  void skel.programs.watch_prot;',
      '  // @ts-expect-error a ring that does not exist',
      '  void skel.ringBuffers.hitz;',
      '  // @ts-expect-error .rodata values are typed',
      '  skel.rodata.watched_port = "443";',
      '  // @ts-expect-error keys are typed',
      '  skel.maps.hits_by_port.get(443);',
      '  // @ts-expect-error rings yield their record type',
      '  void (async () => { for await (const hit of ring) { const s: string = hit.sport; void s; } })();',
      '  // @ts-expect-error unknown .rodata globals are refused',
      '  open({ rodata: { wathced_port: 1 } });',
      '  // @ts-expect-error exactOptionalPropertyTypes: undefined is not a value',
      '  open({ btfCustomPath: undefined });',
      '  return skel;',
      '}',
      '',
    ].join('\n'));
    const ok = tsc(['use.ts']);
    expect(ok.output).toBe('');
    expect(ok.status).toBe(0);

    fs.writeFileSync(path.join(dir, 'typo.ts'), [
      "import { load } from './skel_demo.skel';",
      'export const hits = load().maps.hits_by_prot;',
      '',
    ].join('\n'));
    const typo = tsc(['typo.ts']);
    expect(typo.status).not.toBe(0);
    expect(typo.output).toMatch(/typo\.ts\(2,\d+\): error TS2551: Property 'hits_by_prot' does not exist on type .*Did you mean 'hits_by_port'\?/);
  }, 120_000);
});

const enabled = bpfAvailable('skeleton');

describe.skipIf(!enabled)('typed skeleton at run time', () => {
  // The generated module, as far as this test uses it (it is written at run time; the
  // type-check test above checks its real types).
  interface PortHit { saddr: number; sport: number; dport: number; verdict: number; seq: bigint }
  type Spec = {
    maps: { hits_by_port: { key: { port: number; proto: number; pad: number }; value: bigint }; verdict_slots: { key: number; value: number }; tcp_frames: { key: number; value: bigint; perCpu: true } };
    programs: { watch_port: true };
    ringBuffers: { hits: PortHit };
    perfBuffers: { hits_perf: PortHit };
    rodata: { watched_port: number };
    bss: { frames_seen: bigint };
    data: { last_verdict: number };
  };
  interface SkelModule {
    open(options?: SkeletonOptions<Spec>): Skeleton<Spec>;
    Verdict: { VERDICT_PASS: 0; VERDICT_WATCHED: 1; VERDICT_OTHER_PORT: 7 };
  }
  const importSkel = (): Promise<SkelModule> => import(path.join(dir, 'skel_demo.skel.ts')) as Promise<SkelModule>;

  it('sets .rodata before load, reads maps, .bss, .data, the ring and the perf buffer typed', async () => {
    const { open, Verdict } = await importSkel();
    using skel = open({ rodata: { watched_port: 8080 } });
    expect(skel.rodata.watched_port).toBe(8080);
    skel.rodata.watched_port = 8081;
    skel.load();
    expect(() => { skel.rodata.watched_port = 1; }).toThrow(/read-only once loaded: set it before load/);
    const ring = skel.ringBuffers.hits({ wakeupMs: 5 });
    const perf = skel.perfBuffers.hits_perf({ pagesPerCpu: 8, wakeupMs: 5 });
    const prog = skel.programs.watch_port;
    prog.testRun({ data: tcpFrame({ src: '192.0.2.1', dst: '192.0.2.2', sport: 5555, dport: 8081, seq: 77, flags: { syn: true } }), repeat: 3 });
    prog.testRun({ data: tcpFrame({ src: '192.0.2.9', dst: '192.0.2.2', sport: 6666, dport: 22, seq: 5, flags: { syn: true } }) });
    expect(skel.maps.hits_by_port.get({ port: 8081, proto: 6, pad: 0 })).toBe(3n);
    expect(skel.maps.hits_by_port.get({ port: 22, proto: 6, pad: 0 })).toBe(1n);
    expect(skel.maps.verdict_slots.get(0)).toBe(Verdict.VERDICT_OTHER_PORT);
    const perCpu = skel.maps.tcp_frames.get(0)!;
    expect(perCpu.length).toBeGreaterThanOrEqual(1);
    expect(perCpu.reduce((a, b) => a + b, 0n)).toBe(4n);
    expect(skel.bss.frames_seen).toBe(4n);
    expect(skel.data.last_verdict).toBe(Verdict.VERDICT_OTHER_PORT);
    skel.bss.frames_seen = 100n;
    expect(skel.bss.frames_seen).toBe(100n);

    const fromRing: PortHit[] = [];
    for await (const hit of ring) {
      fromRing.push(hit);
      if (fromRing.length === 4) break;
    }
    expect(fromRing[0]).toEqual({ saddr: 0x010200c0, sport: 5555, dport: 8081, verdict: Verdict.VERDICT_WATCHED, seq: 77n });
    expect(fromRing[3]).toMatchObject({ sport: 6666, dport: 22, verdict: Verdict.VERDICT_OTHER_PORT });
    const fromPerf: PortHit[] = [];
    for await (const hit of perf) {
      fromPerf.push(hit);
      if (fromPerf.length === 4) break;
    }
    expect(fromPerf.map((h) => h.dport)).toEqual([8081, 8081, 8081, 22]);
    expect(fromPerf[0]!.seq).toBe(77n);
  });

  it('names the architectures it was built for when this one is missing', async () => {
    const { openSkeleton } = await import('../lib/bpf');
    expect(() => openSkeleton('skel_demo', { sparc: '' })).toThrow(`skel_demo: the skeleton holds the object built for sparc, not ${process.arch}: run tcpscope compile with --arch sparc,${process.arch === 'x64' ? 'x86_64' : process.arch}`);
  });
});
