// SPDX-License-Identifier: MIT
// Fuzzes the pure-TypeScript ELF and BTF readers, the type checks, codecs and gen-types
// with mutated .BTF sections and objects: every input is either used or refused with an
// ElfError/BtfError, in bounded time; no RangeError, stack overflow or runaway expansion.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Btf } from '../../lib/bpf/btf/parse';
import { BtfBuilder } from '../../lib/bpf/btf/build';
import { decoderFor, encoderFor } from '../../lib/bpf/btf/codec';
import { genTypes } from '../../lib/bpf/btf/gen-types';
import { ElfError, readElfSection, readElfSections, readElfSymbols } from '../../lib/bpf/btf/elf';
import { checkBpfObject } from '../../lib/bpf/btf/object-check';
import { BtfError } from '../../lib/bpf/btf/types';
import { ROOT, SEED, fixtures, fuzz, iterations, report } from './harness';
const { mutate, inputRng } = require('./mutate.cjs') as {
  mutate: (input: Uint8Array, seed: number, index: number, kind: 'elf' | 'btf') => Uint8Array;
  inputRng: (seed: number, index: number) => () => number;
};

const objects = fs
  .readdirSync(path.join(ROOT, 'build', 'bpf'))
  .filter((f) => f.endsWith('.bpf.o'))
  .map((f) => fs.readFileSync(path.join(ROOT, 'build', 'bpf', f)));
const blobs = objects.map((o) => readElfSection(o, '.BTF')).filter((b): b is Uint8Array => b !== undefined);

const typed = (e: unknown): boolean => e instanceof BtfError || e instanceof ElfError;

/** Everything a user can do with untrusted BTF, on a few of its types. */
function exerciseBtf(raw: Uint8Array, index: number): void {
  const btf = Btf.parse(raw);
  const r = inputRng(SEED ^ 0x5bd1e995, index);
  const ids = [btf.typeCount - 1, ...Array.from({ length: 12 }, () => 1 + Math.floor(r() * (btf.typeCount - 1)))];
  for (const id of ids) {
    if (id < 1) continue;
    try {
      btf.typeName(id);
      const kind = btf.kindOf(id);
      if (kind === 'func' || kind === 'func_proto' || kind === 'fwd' || kind === 'decl_tag' || kind === 'void') continue;
      btf.sizeof(id);
      const dec = decoderFor(btf, id);
      encoderFor(btf, id);
      if (dec.size <= 1 << 16) dec.decode(new DataView(new ArrayBuffer(dec.size)), 0);
    } catch (e) {
      if (!typed(e)) throw e;
    }
  }
  if (index % 8 === 0) genTypes(btf);
  btf.validate();
}

function exerciseObject(elf: Uint8Array): void {
  const sections = readElfSections(elf);
  readElfSymbols(elf, sections);
  try {
    Btf.fromElf(elf);
  } catch (e) {
    if (!typed(e)) throw e;
  }
  checkBpfObject(elf);
}

describe('fuzz: BTF and ELF readers', () => {
  it('refuses mutated BTF blobs with a BtfError, in bounded time', () => {
    const count = iterations('btf', 1500);
    const r = fuzz({
      target: 'btf',
      ext: 'btf',
      count,
      make: (i) => mutate(blobs[i % blobs.length]!, SEED, i, 'btf'),
      bytes: (b) => b,
      run: (b, i) => exerciseBtf(b, i),
      expected: typed,
    });
    report('btf', r, count);
    expect(r.failures).toEqual([]);
    // The mutations must reach past the header checks, or this fuzzes nothing.
    expect(r.rejected).toBeGreaterThan(count / 10);
    expect(r.accepted).toBeGreaterThan(count / 20);
  });

  it('refuses mutated objects in the ELF reader and object checks with an ElfError/BtfError', () => {
    const count = iterations('elf', 1500);
    const r = fuzz({
      target: 'elf',
      ext: 'o',
      count,
      make: (i) => mutate(objects[i % objects.length]!, SEED + 1, i, 'elf'),
      bytes: (b) => b,
      run: exerciseObject,
      expected: typed,
    });
    report('elf', r, count);
    expect(r.failures).toEqual([]);
    expect(r.accepted).toBeGreaterThan(0);
  });

  it('replays the kept BTF and ELF inputs', () => {
    for (const file of fixtures('btf')) {
      try {
        exerciseBtf(fs.readFileSync(file), 0);
      } catch (e) {
        expect(typed(e), `${file}: ${String(e)}`).toBe(true);
      }
    }
    for (const file of [...fixtures('elf'), ...fixtures('object')]) {
      try {
        exerciseObject(fs.readFileSync(file));
      } catch (e) {
        expect(typed(e), `${file}: ${String(e)}`).toBe(true);
      }
    }
  });
});

describe('BTF type checks', () => {
  const checked = (build: (b: BtfBuilder) => number) => {
    const b = new BtfBuilder();
    const id = build(b);
    return { btf: Btf.parse(b.build()), id };
  };

  it('an array whose element is itself is a BtfError everywhere, quickly', () => {
    const { btf, id } = checked((b) => {
      const int = b.int('int', 4, { signed: true });
      b.array(int, 1); // ids 2 (the index type) and 3
      return b.array(4, 4); // id 4: its own element
    });
    const t0 = performance.now();
    expect(() => btf.sizeof(id)).toThrow(BtfError);
    expect(() => btf.typeName(id)).toThrow(/contains itself/);
    expect(() => decoderFor(btf, id)).toThrow(BtfError);
    expect(() => encoderFor(btf, id)).toThrow(BtfError);
    expect(() => genTypes(btf)).not.toThrow(RangeError);
    expect(() => btf.validate()).toThrow(BtfError);
    expect(performance.now() - t0).toBeLessThan(1000);
  });

  it('a struct containing itself by value, and a typedef loop, are refused; through a pointer is fine', () => {
    const selfStruct = checked((b) => {
      const int = b.int('int', 4);
      return b.struct('node', 8, [{ name: 'v', type: int, bitOffset: 0 }, { name: 'next', type: 2, bitOffset: 32 }]);
    });
    expect(() => decoderFor(selfStruct.btf, 'node')).toThrow(/contains itself/);
    const loop = checked((b) => {
      b.typedef('a', 2);
      return b.typedef('b', 1);
    });
    expect(() => loop.btf.sizeof('a')).toThrow(BtfError);
    const list = checked((b) => {
      const int = b.int('int', 4);
      const ptr = b.ptr(3);
      return b.struct('node', 16, [{ name: 'v', type: int, bitOffset: 0 }, { name: 'next', type: ptr, bitOffset: 64 }]);
    });
    expect(decoderFor(list.btf, 'node').size).toBe(16);
    expect(genTypes(list.btf, ['node'])).toContain('next: bigint');
  });

  it('pointer-only cycles get a bounded name', () => {
    const { btf } = checked((b) => b.ptr(1)); // a pointer to itself
    expect(btf.typeName(1)).toMatch(/\.\.\. \*/);
    expect(btf.sizeof(1)).toBe(8);
  });

  it('out-of-range ids, absurd sizes and runaway expansion are BtfErrors', () => {
    const badVar = checked((b) => b.var('x', 999));
    expect(() => badVar.btf.validate()).toThrow(/beyond the last type/);
    const huge = checked((b) => {
      const int = b.int('int', 4);
      const inner = b.array(int, 0x40000000);
      return b.array(inner, 16);
    });
    expect(() => huge.btf.sizeof(huge.id)).toThrow(/exceed 4 GiB/);
    const wide = checked((b) => {
      const int = b.int('int', 4);
      const m = (t: number, size: number) => Array.from({ length: 64 }, (_, i) => ({ name: `m${i}`, type: t, bitOffset: i * size * 8 }));
      const s1 = b.struct('s1', 256, m(int, 4));
      const s2 = b.struct('s2', 256 * 64, m(s1, 256));
      return b.struct('s3', 256 * 64 * 64, m(s2, 256 * 64));
    });
    expect(() => decoderFor(wide.btf, 's3')).toThrow(/expands to more than/);
    expect(decoderFor(wide.btf, 's2').size).toBe(256 * 64);
  });

  it('unreadable and non-BTF files are BtfErrors', () => {
    expect(() => Btf.fromFile('/tmp')).toThrow(/cannot read BTF from \/tmp: it is a directory/);
    expect(() => Btf.fromFile('/nonexistent.btf')).toThrow(BtfError);
    expect(() => Btf.fromFile('/etc/hostname')).toThrow(BtfError);
  });

  it('the kernel BTF and every built object pass the checks', () => {
    Btf.kernel().validate();
    for (const o of objects) expect(checkBpfObject(o)).toBeDefined();
  });
});
