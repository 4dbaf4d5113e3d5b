// SPDX-License-Identifier: MIT
// Fuzzes BpfObject.open (the checks, then libbpf's open) with mutated objects in child
// processes, so a SIGSEGV inside libbpf is seen as a crash instead of killing the suite.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { BpfObject } from '../../lib/bpf/object';
import { BpfError } from '../../lib/bpf/errors';
import { ROOT, SEED, FIXTURES, fixtures, iterations } from './harness';
const { runOpenFuzz, replayOpen } = require('./run-open.cjs') as {
  runOpenFuzz: (o: { seed: number; count: number; corpus: string[]; fixturesDir?: string; hangMs?: number; env?: Record<string, string> }) => Promise<{
    inputs: number;
    opened: number;
    failed: number;
    crashes: { index: number; what: string; file?: string }[];
    untyped: { index: number; name: string; message: string }[];
    duplicated: { index: number; message: string }[];
    kinds: Record<string, number>;
  }>;
  replayOpen: (files: string[], o?: { env?: Record<string, string> }) => Promise<{ failures: { file: string; what: string }[]; summary?: { untyped: unknown[] } }>;
};

const { mutate } = require('./mutate.cjs') as { mutate: (b: Uint8Array, seed: number, index: number, kind: 'elf') => Uint8Array };

const corpus = fs
  .readdirSync(path.join(ROOT, 'build', 'bpf'))
  .filter((f) => f.endsWith('.bpf.o'))
  .map((f) => path.join(ROOT, 'build', 'bpf', f));

describe('fuzz: BpfObject.open', () => {
  it('mutated objects open or fail with a typed error; none crashes or hangs node', async () => {
    const count = iterations('object', 3000);
    const r = await runOpenFuzz({
      seed: SEED,
      count,
      corpus,
      ...(process.env.FUZZ_KEEP === '1' ? { fixturesDir: path.join(FIXTURES, 'object') } : {}),
      hangMs: 20_000,
    });
    const line = `object: ${r.inputs} inputs, ${r.opened} opened, ${r.failed} refused with a typed error, ${r.crashes.length} crashes/hangs, ${r.untyped.length} untyped errors, ${r.duplicated.length} duplicated prefixes (seed ${SEED}) ${JSON.stringify(r.kinds)}`;
    if (process.env.FUZZ_REPORT) fs.appendFileSync(process.env.FUZZ_REPORT, line + '\n');
    expect(r.crashes).toEqual([]);
    expect(r.untyped).toEqual([]);
    expect(r.duplicated).toEqual([]);
    expect(r.inputs).toBe(count);
    // Some inputs must get through the checks to libbpf, or libbpf is not being fuzzed.
    expect(r.opened).toBeGreaterThan(count / 20);
  }, 7_200_000);

  it('mutated objects that open also load (CO-RE relocation, verifier) without crashing', async () => {
    const count = iterations('objectload', 60);
    const r = await runOpenFuzz({
      seed: SEED + 100,
      count,
      corpus,
      ...(process.env.FUZZ_KEEP === '1' ? { fixturesDir: path.join(FIXTURES, 'object-load') } : {}),
      hangMs: 60_000,
      env: { FUZZ_LOAD: '1' },
    });
    const line = `object load: ${r.inputs} inputs, ${r.opened} loaded, ${r.failed} refused with a typed error, ${r.crashes.length} crashes/hangs, ${r.untyped.length} untyped errors (seed ${SEED + 100}) ${JSON.stringify(r.kinds)}`;
    if (process.env.FUZZ_REPORT) fs.appendFileSync(process.env.FUZZ_REPORT, line + '\n');
    expect(r.crashes).toEqual([]);
    expect(r.untyped).toEqual([]);
    expect(r.opened).toBeGreaterThan(0);
  }, 7_200_000);

  it('replays every kept input (each crashed libbpf 1.1 before the checks)', async () => {
    const files = fixtures('object');
    expect(files.length).toBeGreaterThan(0);
    const r = await replayOpen(files);
    expect(r.failures).toEqual([]);
    expect(r.summary?.untyped).toEqual([]);
    const loaded = await replayOpen(fixtures('object-load'), { env: { FUZZ_LOAD: '1' } });
    expect(loaded.failures).toEqual([]);
  });

  it('checks a custom kernel BTF before libbpf parses it', () => {
    const bad = path.join(os.tmpdir(), `tcps-btf-${process.pid}.btf`);
    const raw = Buffer.from(fs.readFileSync('/sys/kernel/btf/vmlinux').subarray(0, 4096));
    fs.writeFileSync(bad, raw); // cut mid-type
    try {
      expect(() => BpfObject.open(path.join(ROOT, 'build', 'bpf', 'syncount.bpf.o'), { btfCustomPath: bad })).toThrow(/open BPF object .*syncount.*BTF/);
    } finally {
      fs.rmSync(bad, { force: true });
    }
  });

  it('says what libbpf said, once', () => {
    // A valid object with its BTF dropped from the section table: libbpf refuses it itself.
    const image = fs.readFileSync(path.join(ROOT, 'build', 'bpf', 'syncount.bpf.o'));
    const bad = Buffer.from(image);
    // e_machine x86-64: refused by the checks, before libbpf, with a typed error.
    bad.writeUInt16LE(62, 0x12);
    expect(() => BpfObject.open(bad)).toThrow(/not a BPF object \(e_machine 62/);
    let message = '';
    for (let i = 0; i < 400 && !message; i++) {
      const input = mutate(image, 99, i, 'elf');
      try {
        BpfObject.open(input).close();
      } catch (e) {
        if (e instanceof BpfError) message = e.message;
      }
    }
    expect(message).toMatch(/^open BPF object: /);
    expect(message).not.toMatch(/open BPF object: open BPF object/);
    expect(message).not.toMatch(/Unknown error 40\d\d/);
    expect(message).not.toMatch(/libbpf: libbpf:/);
  });
});
