// SPDX-License-Identifier: MIT
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Btf,
  BtfBuilder,
  BtfError,
  decoderFor,
  encoderFor,
  genTypes,
  readElfSection,
  readElfSections,
  readElfSymbols,
  type BtfType,
  type DecodedRecord,
  type EncodableValue,
  type Shape,
} from '../lib/bpf/btf';
import { connEventBtf } from '../bench/btf-decode';

const ROOT = path.resolve(__dirname, '..');
const FIXTURE = path.join(__dirname, 'fixtures', 'btf_fixture.bpf.c');
const KERNEL_BTF = '/sys/kernel/btf/vmlinux';

let tmp: string;
let objPath: string;
let obj: Buffer;

function multiarchInclude(): string[] {
  const triple = { x64: 'x86_64-linux-gnu', arm64: 'aarch64-linux-gnu' }[process.arch as string];
  const dir = triple ? `/usr/include/${triple}` : '';
  // <linux/types.h> includes <asm/types.h>, which Debian keeps under the multiarch dir.
  return dir && fs.existsSync(dir) ? ['-I', dir] : [];
}

// ---- bpftool as the reference -------------------------------------------------

interface JsonType {
  id: number;
  kind: string;
  name: string;
  [k: string]: unknown;
}

function bpftoolTypes(file: string): JsonType[] {
  const text = execFileSync('bpftool', ['-j', 'btf', 'dump', 'file', file], { maxBuffer: 1 << 30 }).toString();
  // Enum values can exceed 2^53; keep them exact as strings.
  const safe = text.replace(/"val":\s*(-?\d{16,})/g, '"val": "$1"');
  return (JSON.parse(safe) as { types: JsonType[] }).types;
}

const anon = (n: string): string => (n === '(anon)' ? '' : n);

/** Compare one of our types with bpftool's JSON for it, field by field; returns mismatches. */
function diffType(t: BtfType, j: JsonType): string[] {
  const errs: string[] = [];
  const eq = (what: string, ours: unknown, theirs: unknown): void => {
    if (ours !== theirs) errs.push(`[${j.id}] ${j.kind} ${j.name} ${what}: ours=${String(ours)} bpftool=${String(theirs)}`);
  };
  eq('kind', t.kind, j.kind.toLowerCase());
  eq('name', t.name, anon(j.name));
  switch (t.kind) {
    case 'int':
      eq('size', t.size, j.size);
      eq('bits', t.bits, j.nr_bits);
      eq('bitOffset', t.bitOffset, j.bits_offset);
      eq('encoding', t.bool ? 'BOOL' : t.char ? 'CHAR' : t.signed ? 'SIGNED' : '(none)', j.encoding);
      break;
    case 'ptr':
    case 'typedef':
    case 'volatile':
    case 'const':
    case 'restrict':
    case 'type_tag':
      eq('type', t.type, j.type_id);
      break;
    case 'array':
      eq('type', t.type, j.type_id);
      eq('indexType', t.indexType, j.index_type_id);
      eq('nelems', t.nelems, j.nr_elems);
      break;
    case 'struct':
    case 'union': {
      eq('size', t.size, j.size);
      const ms = j.members as { name: string; type_id: number; bits_offset: number; bitfield_size?: number }[];
      eq('vlen', t.members.length, ms.length);
      t.members.forEach((m, i) => {
        const jm = ms[i]!;
        eq(`member ${i} name`, m.name, anon(jm.name));
        eq(`member ${m.name} type`, m.type, jm.type_id);
        eq(`member ${m.name} bitOffset`, m.bitOffset, jm.bits_offset);
        eq(`member ${m.name} bitfieldSize`, m.bitfieldSize, jm.bitfield_size ?? 0);
      });
      break;
    }
    case 'enum':
    case 'enum64': {
      eq('size', t.size, j.size);
      eq('signed', t.signed, j.encoding === 'SIGNED');
      const vs = j.values as { name: string; val: number | string }[];
      eq('vlen', t.values.length, vs.length);
      t.values.forEach((v, i) => {
        eq(`value ${i} name`, v.name, vs[i]!.name);
        let want = BigInt(vs[i]!.val);
        // bpftool prints a 32-bit enum's raw value sign-extended to 64 bits.
        if (t.kind === 'enum') want = t.signed ? BigInt.asIntN(32, want) : BigInt.asUintN(32, want);
        eq(`value ${v.name}`, BigInt(v.value), want);
      });
      break;
    }
    case 'fwd':
      eq('fwdKind', t.fwdKind, j.fwd_kind);
      break;
    case 'func':
      eq('type', t.type, j.type_id);
      eq('linkage', t.linkage, j.linkage);
      break;
    case 'func_proto': {
      eq('returnType', t.returnType, j.ret_type_id);
      const ps = j.params as { name: string; type_id: number }[];
      const all = t.variadic ? [...t.params, { name: '', type: 0 }] : t.params;
      eq('vlen', all.length, ps.length);
      all.forEach((p, i) => {
        eq(`param ${i} name`, p.name, anon(ps[i]!.name));
        eq(`param ${i} type`, p.type, ps[i]!.type_id);
      });
      break;
    }
    case 'var':
      eq('type', t.type, j.type_id);
      eq('linkage', t.linkage, j.linkage);
      break;
    case 'datasec': {
      eq('size', t.size, j.size);
      const vs = j.vars as { type_id: number; offset: number; size: number }[];
      eq('vlen', t.vars.length, vs.length);
      t.vars.forEach((v, i) => {
        eq(`var ${i} type`, v.type, vs[i]!.type_id);
        eq(`var ${i} offset`, v.offset, vs[i]!.offset);
        eq(`var ${i} size`, v.size, vs[i]!.size);
      });
      break;
    }
    case 'float':
      eq('size', t.size, j.size);
      break;
    case 'decl_tag':
      eq('type', t.type, j.type_id);
      eq('componentIdx', t.componentIdx, j.component_idx);
      break;
    case 'void':
      errs.push(`[${j.id}] unexpected void`);
  }
  return errs;
}

function diffAll(btf: Btf, types: JsonType[]): string[] {
  const errs: string[] = [];
  if (btf.typeCount - 1 !== types.length) errs.push(`type count ours=${btf.typeCount - 1} bpftool=${types.length}`);
  for (const j of types) {
    errs.push(...diffType(btf.type(j.id), j));
    if (errs.length > 20) break;
  }
  return errs;
}

function tsc(files: string[], cwd: string): void {
  const bin = path.join(ROOT, 'node_modules', '.bin', 'tsc');
  const args = ['--noEmit', '--strict', '--isolatedModules', '--target', 'es2022', '--module', 'commonjs', '--moduleResolution', 'node'];
  args.push('--types', 'node', '--typeRoots', path.join(ROOT, 'node_modules', '@types'), '--skipLibCheck', ...files);
  try {
    execFileSync(bin, args, { cwd, stdio: 'pipe' });
  } catch (e) {
    const err = e as { stdout?: Buffer; stderr?: Buffer };
    throw new Error(`tsc failed:\n${String(err.stdout ?? '')}${String(err.stderr ?? '')}`);
  }
}

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tcpscope-btf-'));
  objPath = path.join(tmp, 'btf_fixture.bpf.o');
  execFileSync('clang', ['-target', 'bpf', '-g', '-O2', ...multiarchInclude(), '-c', FIXTURE, '-o', objPath], { stdio: 'pipe' });
  obj = fs.readFileSync(objPath);
});

afterAll(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

// ---- ELF ----------------------------------------------------------------------

describe('elf', () => {
  it('lists the same sections as readelf and extracts .BTF byte-exact', () => {
    const out = execFileSync('readelf', ['-S', '--wide', objPath]).toString();
    const theirs = [...out.matchAll(/^\s*\[\s*(\d+)\]\s+(\S+)?\s+\S+\s+[0-9a-f]{16}\s+([0-9a-f]+)\s+([0-9a-f]+)/gm)].map((m) => ({
      index: Number(m[1]),
      name: m[1] === '0' ? '' : m[2]!,
      offset: parseInt(m[3]!, 16),
      size: parseInt(m[4]!, 16),
    }));
    const ours = readElfSections(obj).map((s) => ({ index: s.index, name: s.name, offset: s.offset, size: s.size }));
    expect(ours).toEqual(theirs);

    const dumped = path.join(tmp, 'btf.bin');
    execFileSync('llvm-objcopy', ['--dump-section', `.BTF=${dumped}`, objPath, path.join(tmp, 'scratch.o')]);
    expect(Buffer.from(readElfSection(obj, '.BTF')!)).toEqual(fs.readFileSync(dumped));
    expect(readElfSection(obj, '.nope')).toBeUndefined();
  });

  it('reads symbols like readelf', () => {
    const syms = readElfSymbols(obj);
    const tp = syms.find((s) => s.name === 'target_port')!;
    const out = execFileSync('readelf', ['-s', '--wide', objPath]).toString();
    const line = out.split('\n').find((l) => / target_port$/.test(l))!;
    const [, value, size, type, bind, , ndx] = line.trim().split(/\s+/);
    expect(tp.value).toBe(parseInt(value!, 16));
    expect(tp.size).toBe(Number(size));
    expect(type).toBe('OBJECT');
    expect(tp.type).toBe(1);
    expect(bind).toBe('GLOBAL');
    expect(tp.bind).toBe(1);
    expect(tp.shndx).toBe(Number(ndx));
  });

  it('rejects non-ELF input', () => {
    expect(() => readElfSections(new Uint8Array(64))).toThrow(/not an ELF/);
  });
});

// ---- parsing ----------------------------------------------------------------------

describe('Btf.parse on the clang fixture', () => {
  it('matches bpftool for every type, covering every kind clang 14 emits', () => {
    const btf = Btf.parse(readElfSection(obj, '.BTF')!);
    const types = bpftoolTypes(objPath);
    expect(diffAll(btf, types)).toEqual([]);
    const kinds = new Set([...btf.types()].map((t) => t.kind));
    // clang 14 cannot emit ENUM64 (it writes 64-bit enums as 8-byte ENUMs); the
    // kernel and builder tests cover it.
    for (const k of ['int', 'ptr', 'array', 'struct', 'union', 'enum', 'fwd', 'typedef', 'volatile', 'const', 'restrict', 'func', 'func_proto', 'var', 'datasec', 'float', 'decl_tag', 'type_tag'] as const) {
      expect(kinds, k).toContain(k);
    }
  });

  it('struct ev layout matches bpftool', () => {
    const btf = Btf.fromFile(objPath);
    const j = bpftoolTypes(objPath).find((t) => t.kind === 'STRUCT' && t.name === 'ev')!;
    const ev = btf.find('ev', 'struct')!;
    expect(btf.sizeof('ev')).toBe(j.size);
    expect(btf.sizeof('struct ev')).toBe(208);
    expect(ev.members.map((m) => [m.name, m.bitOffset, m.bitfieldSize])).toEqual(
      (j.members as { name: string; bits_offset: number; bitfield_size?: number }[]).map((m) => [anon(m.name), m.bits_offset, m.bitfield_size ?? 0]),
    );
    expect(btf.sizeof('tcp_tuple')).toBe(8);
    expect(btf.sizeof('point_t')).toBe(8);
    expect(btf.typeName(ev.members.find((m) => m.name === 'names')!.type)).toBe('char[2][8]');
    expect(btf.typeName(ev.members.find((m) => m.name === 'saddr')!.type)).toBe('__u8[16]');
  });

  it('find, resolve, lookup and typeName', () => {
    const btf = Btf.fromFile(objPath);
    expect(btf.resolve('__u32')).toMatchObject({ kind: 'int', name: 'unsigned int', size: 4, signed: false });
    expect(btf.resolve('point_t')).toMatchObject({ kind: 'struct', name: '' });
    expect(btf.find('opaque')).toMatchObject({ kind: 'fwd', fwdKind: 'struct' });
    expect(btf.find('uopaque')).toMatchObject({ kind: 'fwd', fwdKind: 'union' });
    expect(btf.find('sum_into')).toMatchObject({ kind: 'func', linkage: 'static' });
    expect(btf.find('no_such_type')).toBeUndefined();
    expect(() => btf.lookup('struct no_such_type')).toThrow(/"struct no_such_type" not found/);
    const proto = btf.type(btf.find('sum_into', 'func')!.type);
    expect(btf.typeName(proto.id)).toBe('int (restrict int *, int, int)');
    const tags = btf.findAll('tag_member', 'decl_tag');
    expect(tags).toHaveLength(1);
    expect(tags[0]).toMatchObject({ componentIdx: 0, type: btf.find('tagged', 'struct')!.id });
    // the resolved target of a const volatile rodata variable
    const tp = btf.datasec('.rodata').vars.find((v) => v.name === 'target_port')!;
    expect(btf.typeName(tp.type)).toBe('const volatile __u16');
    expect(btf.resolve(tp.type)).toMatchObject({ kind: 'int', size: 2 });
    expect(() => btf.sizeof('opaque')).toThrow(/has no size/);
    expect(() => btf.type(10_000)).toThrow(/invalid BTF type id/);
  });

  it('8-byte enums from clang 14 are kept (its BTF truncates their values)', () => {
    const btf = Btf.fromFile(objPath);
    const big = btf.find('big_flags')!;
    expect(big).toMatchObject({ kind: 'enum', size: 8 });
    expect(btf.enumByName('big_flags').get('BIG_ZERO')).toBe(0n);
    expect(btf.enumValues('ev_kind')).toEqual(
      new Map([
        [1n, 'EV_CONNECT'],
        [2n, 'EV_ACCEPT'],
        [3n, 'EV_CLOSE'],
        [4294967291n, 'EV_NEGATIVE'], // clang 14 emits no signedness flag, so -5 reads back as u32
      ]),
    );
  });

  it('datasecs: zero in the raw .o, fixed up by fromElf exactly like libbpf', () => {
    // clang leaves DATASEC sizes and variable offsets at 0 and libbpf fills them
    // in at open/link time; Btf.parse reports the raw values.
    const raw = Btf.parse(readElfSection(obj, '.BTF')!);
    const rawRo = raw.datasec('.rodata');
    expect(rawRo.size).toBe(0);
    expect(rawRo.vars.map((v) => [v.name, v.offset, v.size])).toEqual([
      ['target_pid', 0, 4],
      ['target_port', 0, 2],
      ['verbose', 0, 1],
    ]);
    expect(() => raw.datasec('.nope')).toThrow(/DATASEC ".nope" not found \(have: .bss, .maps, .rodata, license\)/);

    // libbpf's static linker applies the same fixup; compare with its output.
    const linked = path.join(tmp, 'linked.o');
    execFileSync('bpftool', ['gen', 'object', linked, objPath]);
    const ref = bpftoolTypes(linked);
    const byId = new Map(ref.map((t) => [t.id, t]));
    const fixed = Btf.fromElf(obj);
    for (const sec of fixed.datasecs()) {
      const j = ref.find((t) => t.kind === 'DATASEC' && t.name === sec.name)!;
      expect(sec.size, sec.name).toBe(j.size);
      const want = (j.vars as { type_id: number; offset: number; size: number }[]).map((v) => [byId.get(v.type_id)!.name, v.offset, v.size]);
      expect(sec.vars.map((v) => [v.name, v.offset, v.size]), sec.name).toEqual(want);
    }
    expect(fixed.datasec('.bss').vars.find((v) => v.name === 'ev_template')).toMatchObject({ offset: 8, size: 208 });
    // parsing libbpf's already-fixed BTF needs no patches and agrees with bpftool
    expect(diffAll(Btf.fromFile(linked), ref)).toEqual([]);
  });

  it('rejects malformed BTF', () => {
    expect(() => Btf.parse(new Uint8Array(10))).toThrow(BtfError);
    const good = readElfSection(obj, '.BTF')!;
    const bad = Uint8Array.from(good);
    bad[0] = 0x12;
    expect(() => Btf.parse(bad)).toThrow(/bad BTF magic/);
    const trunc = Uint8Array.from(good.subarray(0, good.length - 100));
    expect(() => Btf.parse(trunc)).toThrow(/out of bounds/);
    const badKind = Uint8Array.from(good);
    badKind[24 + 7] = 0x1f; // info byte 3 of type 1: kind 31
    expect(() => Btf.parse(badKind)).toThrow(/unknown BTF kind 31 at type id 1/);
  });
});

describe('kernel BTF', () => {
  it('parses vmlinux fast and matches bpftool for every type', () => {
    const raw = fs.readFileSync(KERNEL_BTF);
    const times: number[] = [];
    let btf!: Btf;
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      btf = Btf.parse(raw);
      times.push(performance.now() - t0);
    }
    const t0 = performance.now();
    let n = 0;
    for (const t of btf.types()) n += t.id > 0 ? 1 : 0;
    const all = performance.now() - t0;
    console.log(
      `vmlinux BTF: ${raw.length} bytes, ${btf.typeCount - 1} types; parse ${times.map((t) => t.toFixed(1)).join('/')} ms; ` +
        `materializing every type ${all.toFixed(0)} ms`,
    );
    expect(n).toBe(btf.typeCount - 1);
    expect(diffAll(btf, bpftoolTypes(KERNEL_BTF))).toEqual([]);
  });

  it('enum lookups', () => {
    const k = Btf.kernel();
    expect(Btf.kernel()).toBe(k);
    const drop = k.enumValues('skb_drop_reason');
    const byName = k.enumByName('skb_drop_reason');
    const noSocket = byName.get('SKB_DROP_REASON_NO_SOCKET');
    expect(noSocket).toBeTypeOf('bigint');
    expect(drop.get(noSocket!)).toBe('SKB_DROP_REASON_NO_SOCKET');
    const j = bpftoolTypes(KERNEL_BTF).find((t) => t.kind === 'ENUM' && t.name === 'skb_drop_reason')!;
    const jv = (j.values as { name: string; val: number }[]).find((v) => v.name === 'SKB_DROP_REASON_NO_SOCKET')!;
    expect(noSocket).toBe(BigInt(jv.val));

    const rst = k.find('sk_rst_reason');
    expect(rst?.kind).toBe('enum');
    expect(k.enumByName('sk_rst_reason').has('SK_RST_REASON_NOT_SPECIFIED')).toBe(true);
    expect(k.enumByName('sk_rst_reason').get('SK_RST_REASON_NOT_SPECIFIED')).toBe(0n);
    expect(() => k.enumValues('no_such_enum_xyz')).toThrow(/not found/);
    expect(() => k.enumValues('struct sock')).toThrow(/is not an enum/);
  });

  it('enum64 values are exact bigints', () => {
    const k = Btf.kernel();
    const j = bpftoolTypes(KERNEL_BTF).filter((t) => t.kind === 'ENUM64');
    expect(j.length).toBeGreaterThan(0);
    for (const e of j) {
      const t = k.type(e.id);
      expect(t.kind).toBe('enum64');
      const vals = k.enumValues(e.id);
      for (const v of e.values as { name: string; val: number | string }[]) expect(vals.get(BigInt(v.val)), v.name).toBeDefined();
    }
  });

  it('find prefers definitions; sizeof and resolve agree with bpftool', () => {
    const k = Btf.kernel();
    const types = bpftoolTypes(KERNEL_BTF);
    for (const name of ['sock', 'tcp_sock', 'sk_buff', 'sock_common', 'inet_sock']) {
      const j = types.find((t) => t.kind === 'STRUCT' && t.name === name)!;
      expect(k.find(name)!.kind, name).toBe('struct');
      expect(k.sizeof(name), name).toBe(j.size);
      expect(k.sizeof(`struct ${name}`), name).toBe(j.size);
    }
    expect(k.resolve('u32')).toMatchObject({ kind: 'int', size: 4, signed: false });
    expect(k.sizeof('u64')).toBe(8);
    expect(k.sizeof(k.find('sk_buff', 'struct')!.members[0]!.type)).toBeGreaterThan(0);
  });

  it('reports a missing kernel BTF file clearly', () => {
    expect(() => Btf.kernel(path.join(tmp, 'vmlinux-missing'))).toThrow(/vmlinux-missing does not exist: kernel built without CONFIG_DEBUG_INFO_BTF/);
  });
});

// ---- codecs ----------------------------------------------------------------------

interface EvMember {
  name: string;
  bits_offset: number;
  bitfield_size?: number;
}

describe('codecs on struct ev', () => {
  let btf: Btf;
  let off: Map<string, EvMember>;
  beforeAll(() => {
    btf = Btf.fromFile(objPath);
    const j = bpftoolTypes(objPath).find((t) => t.kind === 'STRUCT' && t.name === 'ev')!;
    off = new Map((j.members as EvMember[]).map((m) => [m.name, m]));
  });
  const at = (name: string): number => off.get(name)!.bits_offset / 8;

  it('decodes bytes laid out by hand at bpftool offsets', () => {
    const buf = new ArrayBuffer(208 + 16);
    const base = 16; // not at the start of the buffer, to catch offset mix-ups
    const dv = new DataView(buf, base);
    dv.setBigUint64(at('ts_ns'), 0x1122334455667788n, true);
    dv.setUint32(at('pid'), 4_000_000_000, true);
    dv.setUint16(at('sport'), 443, true);
    dv.setUint16(at('dport'), 65535, true);
    for (let i = 0; i < 16; i++) dv.setUint8(at('saddr') + i, 0xf0 + i);
    [127, 0, 0, 1].forEach((b, i) => dv.setUint8(at('daddr') + i, b));
    Buffer.from('curl\0junk').copy(new Uint8Array(buf, base + at('comm')));
    dv.setUint8(at('is_ipv6'), 1);
    dv.setUint32(at('kind'), 2, true);
    dv.setUint16(at('tuple'), 1, true);
    dv.setUint16(at('tuple') + 2, 2, true);
    dv.setUint32(at('tuple') + 4, 0xdeadbeef, true);
    // bitfields: state:4 = 9, syn:1 = 1, delta:11 (signed) = -3, flags_rest:16 = 0xbeef
    const bf = off.get('state')!.bits_offset;
    expect([off.get('syn')!.bits_offset, off.get('delta')!.bits_offset, off.get('flags_rest')!.bits_offset]).toEqual([bf + 4, bf + 5, bf + 16]);
    const word = (9 | (1 << 4) | ((-3 & 0x7ff) << 5) | (0xbeef << 16)) >>> 0;
    dv.setUint32(bf / 8, word, true);
    [10, 20, 30, 0xffffffff].forEach((v, i) => dv.setUint32(at('samples') + 4 * i, v, true));
    dv.setUint32(at('addr'), 0x04030201, true);
    dv.setBigUint64(at('(anon)'), 0x0000000200000001n, true);
    dv.setBigInt64(at('rtt_delta'), -42n, true);
    dv.setInt8(at('small'), -128);
    dv.setInt16(at('medium'), -2, true);
    dv.setBigUint64(at('big'), 0xffffffffffffffffn, true);
    dv.setBigUint64(at('ptr'), 0xffff888012345678n, true);
    dv.setUint16(at('tuples') + 8, 7, true);
    Buffer.from('ab\0\0\0\0\0\0abcdefgh').copy(new Uint8Array(buf, base + at('names')));
    dv.setFloat64(at('ratio'), 0.1, true);
    dv.setFloat32(at('ratio_f'), 1.5, true);

    const ev = decoderFor<DecodedRecord>(btf, 'ev').decode(dv, 0);
    expect(ev).toEqual({
      ts_ns: 0x1122334455667788n,
      pid: 4_000_000_000,
      sport: 443,
      dport: 65535,
      saddr: Uint8Array.from({ length: 16 }, (_, i) => 0xf0 + i),
      daddr: Uint8Array.from([127, 0, 0, 1, ...new Array<number>(12).fill(0)]),
      comm: 'curl',
      is_ipv6: true,
      kind: 2,
      tuple: { sport: 1, dport: 2, netns: 0xdeadbeef },
      state: 9,
      syn: 1,
      delta: -3,
      flags_rest: 0xbeef,
      samples: [10, 20, 30, 0xffffffff],
      addr: { v4: 0x04030201, v6: Uint8Array.from([1, 2, 3, 4, ...new Array<number>(12).fill(0)]) },
      raw: 0x0000000200000001n,
      lo: 1,
      hi: 2,
      rtt_delta: -42n,
      small: -128,
      medium: -2,
      big: 0xffffffffffffffffn,
      ptr: 0xffff888012345678n,
      tuples: [
        { sport: 0, dport: 0, netns: 0 },
        { sport: 7, dport: 0, netns: 0 },
      ],
      names: ['ab', 'abcdefgh'],
      ratio: 0.1,
      ratio_f: 1.5,
    });
    // The same bytes through one DataView over the whole buffer, at an offset.
    expect(decoderFor(btf, 'ev').decode(new DataView(buf), base)).toEqual(ev);
    // Uint8Array results are copies, not views of the sample buffer.
    (ev.saddr as Uint8Array)[0] = 0;
    expect(dv.getUint8(at('saddr'))).toBe(0xf0);
  });

  it('round-trips encode → decode', () => {
    const enc = encoderFor(btf, 'struct ev');
    const dec = decoderFor(btf, 'struct ev');
    const value = {
      ts_ns: 18446744073709551615n,
      pid: 1234,
      sport: 0,
      dport: 65535,
      saddr: Uint8Array.from({ length: 16 }, (_, i) => i * 3),
      daddr: new Uint8Array(16),
      comm: 'héllo wörld', // multi-byte UTF-8, 13 bytes
      is_ipv6: false,
      kind: 4294967291,
      tuple: { sport: 80, dport: 8080, netns: 4026531840 },
      state: 15,
      syn: 0,
      delta: -1024,
      flags_rest: 1,
      samples: [0, 1, 2, 4294967295],
      addr: { v4: 0x0100007f, v6: Uint8Array.from([0x7f, 0, 0, 1, ...new Array<number>(12).fill(0)]) },
      raw: 0x8000000000000001n,
      lo: 1,
      hi: 0x80000000,
      rtt_delta: -9223372036854775808n,
      small: 127,
      medium: -32768,
      big: 1n,
      ptr: 0n,
      tuples: [
        { sport: 1, dport: 2, netns: 3 },
        { sport: 4, dport: 5, netns: 6 },
      ],
      names: ['12345678', ''],
      ratio: -Infinity,
      ratio_f: 3.25,
    };
    const bytes = enc.encodeToBytes(value);
    expect(bytes.length).toBe(208);
    expect(dec.decode(new DataView(bytes.buffer))).toEqual(value);
    // partially specified input: the rest is zero, enumerator names accepted
    const partial = dec.decode(new DataView(enc.encodeToBytes({ pid: 7, kind: 'EV_CLOSE', tuples: [{ dport: 9 }] }).buffer)) as DecodedRecord;
    expect(partial).toMatchObject({ pid: 7, kind: 3, ts_ns: 0n, comm: '', tuples: [{ sport: 0, dport: 9, netns: 0 }, { sport: 0, dport: 0, netns: 0 }] });
    // encoding at an offset leaves the surrounding bytes alone
    const big = new Uint8Array(300).fill(0xaa);
    enc.encode({ pid: 1 }, new DataView(big.buffer, 10), 20);
    expect(big[29]).toBe(0xaa);
    expect(big[30 + 208]).toBe(0xaa);
    expect(big[30]).toBe(0);
    expect(new DataView(big.buffer).getUint32(30 + 8, true)).toBe(1);
  });

  it('encoder errors name the field path, the C type and the value', () => {
    const enc = encoderFor(btf, 'ev');
    const ro = encoderFor(btf, '.rodata');
    const view = new DataView(new ArrayBuffer(256));
    const err = (f: () => void): string => {
      try {
        f();
      } catch (e) {
        expect(e).toBeInstanceOf(TypeError);
        return (e as Error).message;
      }
      throw new Error('did not throw');
    };
    expect(err(() => ro.encode({ target_port: 70000 }, view))).toBe('target_port: expected integer 0..65535 (__u16), got 70000');
    expect(err(() => ro.encode({ target_pid: -1 }, view))).toBe('target_pid: expected integer 0..4294967295 (__u32), got -1');
    expect(err(() => ro.encode({ verbose: 'yes' }, view))).toBe('verbose: expected boolean (_Bool), got "yes"');
    expect(err(() => ro.encode({ target_pid: 1, debug: true }, view))).toBe(
      '.rodata: unknown field "debug" for .rodata (fields: target_pid, target_port, verbose)',
    );
    expect(err(() => enc.encode({ tuple: { sport: 1.5 } }, view))).toBe('tuple.sport: expected integer 0..65535 (__u16), got 1.5');
    expect(err(() => enc.encode({ tuples: [{}, { netns: 2 ** 32 }] }, view))).toBe('tuples[1].netns: expected integer 0..4294967295 (__u32), got 4294967296');
    expect(err(() => enc.encode({ comm: 'a-very-long-process-name' }, view))).toBe(
      'comm: expected string or Uint8Array of at most 16 bytes (char[16]), got "a-very-long-process-name" (24 bytes)',
    );
    expect(err(() => enc.encode({ comm: 5 }, view))).toBe('comm: expected string or Uint8Array of at most 16 bytes (char[16]), got 5');
    expect(err(() => enc.encode({ saddr: [1, 2, 256] }, view))).toBe('saddr[2]: expected integer 0..255 (__u8[16]), got 256');
    expect(err(() => enc.encode({ samples: [1, 2, 3, 4, 5] }, view))).toBe('samples: expected array of at most 4 elements (__u32[4]), got array(5)');
    expect(err(() => enc.encode({ samples: [1, 'x'] }, view))).toBe('samples[1]: expected integer 0..4294967295 (__u32), got "x"');
    expect(err(() => enc.encode({ ts_ns: 2 ** 60 }, view))).toBe(
      'ts_ns: expected integer 0..18446744073709551615 (__u64), got 1152921504606847000 (not a safe integer: pass a bigint)',
    );
    expect(err(() => enc.encode({ rtt_delta: 1n << 63n }, view))).toBe(
      'rtt_delta: expected integer -9223372036854775808..9223372036854775807 (__s64), got 9223372036854775808n',
    );
    expect(err(() => enc.encode({ state: 16 }, view))).toBe('state: expected integer 0..15 (__u32:4), got 16');
    expect(err(() => enc.encode({ delta: 1024 }, view))).toBe('delta: expected integer -1024..1023 (__s32:11), got 1024');
    expect(err(() => enc.encode({ kind: 'EV_BOGUS' }, view))).toBe(
      'kind: expected integer -2147483648..4294967295 or one of EV_CONNECT, EV_ACCEPT, EV_CLOSE, EV_NEGATIVE (enum ev_kind), got "EV_BOGUS"',
    );
    expect(err(() => enc.encode({ addr: 5 }, view))).toBe('addr: expected object (union (anon)), got 5');
    expect(err(() => enc.encode({ ratio: 1n }, view))).toBe('ratio: expected number (double), got 1n');
    expect(err(() => enc.encode(null as unknown as EncodableValue, view))).toBe('ev: expected object (struct ev), got null');
    // a single global, as the runtime encodes it: by its VAR's (qualified) type
    const tp = btf.datasec('.rodata').vars.find((v) => v.name === 'target_port')!;
    expect(err(() => encoderFor(btf, tp.type).encode(70000, view))).toBe('__u16: expected integer 0..65535 (__u16), got 70000');
    expect(err(() => encoderFor(btf, tp.type, { label: 'target_port' }).encode(70000, view))).toBe(
      'target_port: expected integer 0..65535 (__u16), got 70000',
    );
    // a failed encode is not a partial write of garbage past the struct
    expect(() => enc.encode({}, new DataView(new ArrayBuffer(100)))).toThrow(RangeError);
  });

  it('decoder bounds and string options', () => {
    const dec = decoderFor(btf, 'ev');
    expect(() => dec.decode(new DataView(new ArrayBuffer(207)))).toThrow(/decode struct ev: needs 208 bytes at offset 0, but the view has 207 bytes/);
    expect(() => dec.decode(new DataView(new ArrayBuffer(300)), 100)).toThrow(RangeError);
    expect(() => dec.decode(new DataView(new ArrayBuffer(300)), -1)).toThrow(RangeError);
    const bytes = encoderFor(btf, 'ev').encodeToBytes({ comm: Buffer.from([0x63, 0xe9, 0x00, 0x41]) });
    expect((dec.decode(new DataView(bytes.buffer)) as DecodedRecord).comm).toBe('c\ufffd');
    expect((decoderFor(btf, 'ev', { strings: 'latin1' }).decode(new DataView(bytes.buffer)) as DecodedRecord).comm).toBe('cé');
    const full = encoderFor(btf, 'ev').encodeToBytes({ comm: '0123456789abcdef' });
    expect((dec.decode(new DataView(full.buffer)) as DecodedRecord).comm).toBe('0123456789abcdef');
    expect(decoderFor(btf, 'ev')).toBe(dec); // cached per Btf
  });

  it('decodes scalars, typedefs and datasecs directly', () => {
    const b = new DataView(new ArrayBuffer(8));
    b.setUint16(0, 0xbeef, true);
    expect(decoderFor(btf, '__u16').decode(b)).toBe(0xbeef);
    expect(decoderFor(btf, 'point_t').decode(b)).toEqual({ x: 0xbeef, y: 0 });
    const ro = encoderFor(btf, '.rodata').encodeToBytes({ target_pid: 99, target_port: 8080, verbose: true });
    expect(Array.from(ro)).toEqual([99, 0, 0, 0, 0x90, 0x1f, 1]);
    expect(decoderFor(btf, '.rodata').decode(new DataView(ro.buffer))).toEqual({ target_pid: 99, target_port: 8080, verbose: true });
  });

  // Its speed is a benchmark's (node dist/bench/btf-decode.js), not a test's: here,
  // that the struct it times decodes to the values written.
  it('the decode benchmark\'s struct conn_event decodes field by field', () => {
    const dec = decoderFor(connEventBtf(), 'conn_event');
    expect(dec.size).toBe(72);
    const bytes = new Uint8Array(72);
    const v = new DataView(bytes.buffer);
    v.setBigUint64(0, 123456789n, true);
    v.setUint32(8, 4242, true);
    v.setUint16(12, 8080, true);
    v.setUint16(14, 443, true);
    bytes.set([127, 0, 0, 1], 16);
    bytes.set(Buffer.from('nginx'), 48);
    bytes[64] = 2;
    bytes[65] = 1;
    v.setUint16(66, 0x12, true);
    v.setUint32(68, 250, true);
    const e = dec.decode(v) as DecodedRecord;
    expect(e).toMatchObject({ pid: 4242, sport: 8080, dport: 443, comm: 'nginx', family: 2, state: 1, flags: 0x12, rtt_us: 250 });
    expect(BigInt(e['ts_ns'] as bigint | number)).toBe(123456789n);
    expect(Array.from((e['saddr'] as Uint8Array).subarray(0, 4))).toEqual([127, 0, 0, 1]);
  });
});

describe('codecs on synthetic BTF (kinds and layouts clang 14 does not emit)', () => {
  function build(): Btf {
    const b = new BtfBuilder();
    const u8 = b.typedef('__u8', b.int('unsigned char', 1));
    const s8 = b.typedef('__s8', b.int('signed char', 1, { signed: true }));
    const sch = b.int('signed char', 1, { signed: true });
    const u32 = b.int('unsigned int', 4);
    const u64 = b.int('unsigned long long', 8);
    const s64 = b.int('long long', 8, { signed: true });
    const i128 = b.int('__int128', 16, { signed: true });
    const e64 = b.enum64('wide', 8, [['W_MIN', -(1n << 63n)], ['W_ONE', 1n]], true);
    const e8 = b.enum('tiny', 1, [['T_A', 1], ['T_B', 200]]);
    const small = b.struct('small', 8, [
      { name: 'a', type: u32, bitOffset: 0 },
      { name: 'b', type: u32, bitOffset: 32 },
    ]);
    // 64-bit-typed bitfields straddling a 32-bit boundary, and a legacy (no kind_flag) int bitfield
    const legacy = b.int('unsigned int', 4, { bits: 3 });
    b.struct('wide_bits', 16, [
      { name: 'lo', type: u64, bitOffset: 0, bitfieldSize: 20 },
      { name: 'mid', type: s64, bitOffset: 20, bitfieldSize: 40 },
      { name: 'top', type: u32, bitOffset: 60, bitfieldSize: 4 },
      { name: 'wide32', type: u32, bitOffset: 66, bitfieldSize: 32 },
    ]);
    b.struct('legacy_bits', 4, [{ name: 'x', type: legacy, bitOffset: 3 }]);
    b.struct('arrays', 8 + 400 + 320 + 64 + 4 + 4 + 16 + 8 + 1, [
      { name: 'n', type: u64, bitOffset: 0 },
      { name: 'many', type: b.array(u32, 100), bitOffset: 64 },
      { name: 'recs', type: b.array(small, 40), bitOffset: 64 + 3200 },
      { name: 'blob', type: b.array(u8, 64), bitOffset: 64 + 3200 + 2560 },
      { name: 'deltas', type: b.array(s8, 4), bitOffset: 64 + 3200 + 2560 + 512 },
      { name: 'sname', type: b.array(sch, 4), bitOffset: 64 + 3200 + 2560 + 512 + 32 },
      { name: 'huge', type: i128, bitOffset: 64 + 3200 + 2560 + 512 + 64 },
      { name: 'w', type: e64, bitOffset: 64 + 3200 + 2560 + 512 + 64 + 128 },
      { name: 't', type: e8, bitOffset: 64 + 3200 + 2560 + 512 + 64 + 128 + 64 },
      { name: 'flex', type: b.array(u32, 0), bitOffset: 64 + 3200 + 2560 + 512 + 64 + 128 + 72 },
    ]);
    const proto = b.funcProto(u32, [{ name: 'fmt', type: b.ptr(sch) }], true);
    b.func('printk_like', proto, 'extern');
    b.fwd('later', true);
    return Btf.parse(b.build());
  }

  it('parses builder output, including enum64 and variadic prototypes', () => {
    const btf = build();
    expect(btf.find('wide')).toMatchObject({ kind: 'enum64', signed: true });
    expect(btf.enumValues('wide')).toEqual(new Map([[-(1n << 63n), 'W_MIN'], [1n, 'W_ONE']]));
    const fn = btf.find('printk_like', 'func')!;
    expect(fn.linkage).toBe('extern');
    expect(btf.type(fn.type)).toMatchObject({ kind: 'func_proto', variadic: true, params: [{ name: 'fmt' }] });
    expect(btf.find('later')).toMatchObject({ kind: 'fwd', fwdKind: 'union' });
  });

  it('bitfields wider than 32 bits and 64-bit-typed bitfields', () => {
    const btf = build();
    const enc = encoderFor(btf, 'wide_bits');
    const dec = decoderFor(btf, 'wide_bits');
    const v = { lo: 0xfffffn, mid: -(1n << 39n), top: 0xa, wide32: 0xdeadbeef };
    const bytes = enc.encodeToBytes(v);
    expect(dec.decode(new DataView(bytes.buffer))).toEqual(v);
    // check the raw bit layout independently
    const word = new DataView(bytes.buffer).getBigUint64(0, true);
    expect(word & 0xfffffn).toBe(0xfffffn);
    expect(BigInt.asIntN(40, (word >> 20n) & ((1n << 40n) - 1n))).toBe(-(1n << 39n));
    expect(Number(word >> 60n)).toBe(0xa);
    expect((new DataView(bytes.buffer).getBigUint64(8, true) >> 2n) & 0xffffffffn).toBe(0xdeadbeefn);
    const legacy = new DataView(new ArrayBuffer(4));
    legacy.setUint8(0, 0b00101000); // x: 3 bits at bit 3 = 0b101
    expect(decoderFor(btf, 'legacy_bits').decode(legacy)).toEqual({ x: 5 });
  });

  it('large arrays use loops; byte, s8, signed char, int128, enum64 and flexible arrays', () => {
    const btf = build();
    const enc = encoderFor(btf, 'arrays');
    const dec = decoderFor(btf, 'arrays');
    expect(dec.source).toMatch(/for \(let i = 0/);
    const v = {
      n: 5n,
      many: Array.from({ length: 100 }, (_, i) => i * 1000),
      recs: Array.from({ length: 40 }, (_, i) => ({ a: i, b: 2 * i })),
      blob: Uint8Array.from({ length: 64 }, (_, i) => 255 - i),
      deltas: [-1, 2, -128, 127],
      sname: 'abc',
      huge: -(1n << 100n),
      w: -(1n << 63n),
      t: 200,
      flex: [],
    };
    const bytes = enc.encodeToBytes(v);
    expect(bytes.length).toBe(btf.sizeof('arrays'));
    expect(dec.decode(new DataView(bytes.buffer))).toEqual(v);
    expect(() => enc.encode({ w: 'W_NOPE' }, new DataView(bytes.buffer))).toThrow(/^w: expected bigint .* or one of W_MIN, W_ONE \(enum wide\), got "W_NOPE"$/);
  });

  it('split BTF resolves base ids and strings', () => {
    const base = build();
    const b = new BtfBuilder(base);
    const u32 = base.find('unsigned int', 'int')!.id;
    const id = b.struct('mod_ev', 8, [
      { name: 'a', type: u32, bitOffset: 0 },
      { name: 'n', type: base.find('small', 'struct')!.id, bitOffset: 0 },
    ]);
    const split = Btf.parse(b.build(), base);
    expect(id).toBe(base.typeCount);
    expect(split.startId).toBe(base.typeCount);
    expect(split.find('mod_ev')!.id).toBe(id);
    expect(split.find('small')!.kind).toBe('struct');
    expect(split.type(id)).toMatchObject({ members: [{ name: 'a' }, { name: 'n' }] });
    expect(decoderFor(split, 'mod_ev').decode(new DataView(new Uint8Array([1, 0, 0, 0, 2, 0, 0, 0]).buffer))).toEqual({
      a: 1,
      n: { a: 1, b: 2 },
    });
  });
});

// Bits of a value that a decode → encode round trip must preserve: everything
// except padding and lossy leaves (bools, strings, floats).
function losslessBits(shape: Shape, base = 0, out = new Set<number>()): Set<number> {
  switch (shape.k) {
    case 'record':
      for (const f of shape.fields) {
        if (!f.bit) losslessBits(f.shape, base + f.offset * 8, out);
        else if (f.shape.k !== 'bool') for (let b = 0; b < f.bit.bits; b++) out.add(base + f.offset * 8 + f.bit.shift + b);
      }
      return out;
    case 'array':
      for (let i = 0; i < shape.len; i++) losslessBits(shape.elem, base + i * shape.stride * 8, out);
      return out;
    case 'bool':
    case 'string':
    case 'float':
      return out;
    default: {
      const n = shape.k === 'bytes' ? shape.len : shape.size;
      for (let b = 0; b < n * 8; b++) out.add(base + b);
      return out;
    }
  }
}

function reencodeKeepsBits(btf: Btf, id: number): string | undefined {
  const dec = decoderFor(btf, id, { strings: 'latin1' });
  const enc = encoderFor(btf, id, { strings: 'latin1' });
  const buf = Uint8Array.from({ length: dec.size }, (_, i) => (i * 131 + id * 7) & 0xff);
  const out = enc.encodeToBytes(dec.decode(new DataView(buf.buffer)));
  for (const bit of losslessBits(dec.shape)) {
    const i = bit >> 3;
    if (((buf[i]! >> (bit & 7)) & 1) !== ((out[i]! >> (bit & 7)) & 1)) return `${btf.typeName(id)}: bit ${bit} changed`;
  }
  return undefined;
}

describe('re-encoding decoded values reproduces their bytes', () => {
  it('fixture struct ev, including overlapping union members', () => {
    const btf = Btf.fromFile(objPath);
    expect(reencodeKeepsBits(btf, btf.find('ev', 'struct')!.id)).toBeUndefined();
  });

  it('a sample of kernel structs and unions', () => {
    const k = Btf.kernel();
    const ids: number[] = [];
    for (const name of ['sock', 'tcp_sock', 'sk_buff', 'sock_common', 'inet_connection_sock', 'kvm_mmu_page', 'aio_kiocb']) {
      const t = k.find(name, 'struct');
      if (t) ids.push(t.id);
    }
    let n = 0;
    for (let id = 1; id < k.typeCount; id++) {
      const kind = k.kindOf(id);
      if ((kind === 'struct' || kind === 'union') && n++ % 25 === 0 && k.sizeof(id) > 0) ids.push(id);
    }
    const failures = ids.map((id) => reencodeKeepsBits(k, id)).filter((e) => e !== undefined);
    expect(failures).toEqual([]);
    expect(ids.length).toBeGreaterThan(400);
  }, 120_000);

  it('latin1 strings reject code units above 0xff', () => {
    const btf = Btf.fromFile(objPath);
    const enc = encoderFor(btf, 'ev', { strings: 'latin1' });
    expect(Array.from(enc.encodeToBytes({ comm: 'cé' }).subarray(48, 51))).toEqual([0x63, 0xe9, 0]);
    expect(() => enc.encodeToBytes({ comm: 'c€' })).toThrow('comm: expected latin1 string of at most 16 characters (char[16]), got "c€"');
  });
});

// ---- gen-types ------------------------------------------------------------------

/** A TS expression that evaluates to `v`, so tsc can check a decoded value against a generated interface. */
function literal(v: unknown, indent = ''): string {
  if (typeof v === 'bigint') return `${v}n`;
  if (typeof v === 'number') return Number.isFinite(v) ? String(v) : v > 0 ? 'Infinity' : v < 0 ? '-Infinity' : 'NaN';
  if (typeof v === 'string' || typeof v === 'boolean') return JSON.stringify(v);
  if (v instanceof Uint8Array) return `new Uint8Array([${Array.from(v).join(', ')}])`;
  if (Array.isArray(v)) return `[${v.map((e) => literal(e, indent)).join(', ')}]`;
  const obj = v as Record<string, unknown>;
  return `{\n${Object.keys(obj)
    .map((k) => `${indent}  ${k}: ${literal(obj[k], `${indent}  `)},`)
    .join('\n')}\n${indent}}`;
}

describe('genTypes', () => {
  it('emits declarations that compile and exactly describe decoded values', () => {
    const btf = Btf.fromFile(objPath);
    const src = genTypes(btf, undefined, { all: true });
    expect(src).toMatch(/export interface Ev \{/);
    expect(src).toMatch(/^ {2}ts_ns: bigint;$/m);
    expect(src).toMatch(/^ {2}comm: string;$/m);
    expect(src).toMatch(/^ {2}saddr: Uint8Array;$/m);
    expect(src).toMatch(/^ {2}kind: EvKind;$/m);
    expect(src).toMatch(/^ {2}tuple: TcpTuple;$/m);
    expect(src).toMatch(/^ {2}tuples: TcpTuple\[\];$/m);
    expect(src).toMatch(/^ {2}names: string\[\];$/m);
    expect(src).toMatch(/^ {2}is_ipv6: boolean;$/m);
    expect(src).toMatch(/^ {2}lo: number;$/m); // anonymous union members are flattened
    // No TS enum (erasableSyntaxOnly): a const object and the union of its values.
    expect(src).toMatch(/export const EvKind = \{\n {2}EV_CONNECT: 1,/);
    expect(src).toMatch(/export type EvKind = \(typeof EvKind\)\[keyof typeof EvKind\];/);
    expect(src).not.toMatch(/\benum\b[^\n]*\{/);
    expect(src).toMatch(/export interface PointT \{/); // typedef'd anonymous struct
    expect(src).toMatch(/export interface Rodata \{/);
    expect(src).toMatch(/export const BigFlagsNames/);

    const dir = path.join(tmp, 'gen');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'fixture.ts'), src);
    const ev = encoderFor(btf, 'ev').encodeToBytes({
      pid: 1,
      comm: 'x',
      kind: 'EV_CLOSE',
      names: ['a', 'b'],
      ratio: 0.5,
      big: 1n,
      delta: -2,
    });
    const decoded = decoderFor(btf, 'ev').decode(new DataView(ev.buffer));
    const rodata = decoderFor(btf, '.rodata').decode(new DataView(new ArrayBuffer(7)));
    const lib = path.join(ROOT, 'lib', 'bpf', 'btf').replace(/\\/g, '/');
    fs.writeFileSync(
      path.join(dir, 'use.ts'),
      [
        `import { Btf, decoderFor } from ${JSON.stringify(lib)};`,
        `import { EvKind, EvKindNames, BigFlags, BigFlagsNames } from './fixture';`,
        `import type { Ev, Rodata, PointT } from './fixture';`,
        // Object literals get excess-property checks: an extra, missing or
        // mistyped field in either direction fails compilation.
        `export const decodedEv: Ev = ${literal(decoded)};`,
        `export const decodedRodata: Rodata = ${literal(rodata)};`,
        `export const p: PointT = { x: 1, y: 2 };`,
        `declare const btf: Btf;`,
        `const e = decoderFor<Ev>(btf, 'ev').decode(new DataView(new ArrayBuffer(208)));`,
        `export const closed: boolean = e.kind === EvKind.EV_CLOSE;`,
        `export const name: string | undefined = EvKindNames.get(e.kind);`,
        `export const wide: bigint = e.big + BigFlags.BIG_HIGH;`,
        `export const label: string | undefined = BigFlagsNames.get(e.big);`,
        `// @ts-expect-error pid is a number, not a bigint`,
        `export const wrong: bigint = e.pid;`,
      ].join('\n'),
    );
    tsc(['use.ts'], dir);
  }, 60_000);

  it('named subsets pull in what they reference; kernel types compile', () => {
    const fixture = genTypes(Btf.fromFile(objPath), ['ev']);
    expect(fixture).toMatch(/export interface TcpTuple/);
    expect(fixture).toMatch(/export const EvKind = /);
    expect(fixture).not.toMatch(/rodata/);
    expect(() => genTypes(Btf.fromFile(objPath), ['sum_into'])).toThrow(/not a data type/);

    const k = Btf.kernel();
    const src = genTypes(k, ['sk_rst_reason', 'sock_common', 'skb_drop_reason', 'struct in6_addr']);
    expect(src).toMatch(/export const SkRstReason = \{/);
    expect(src).toMatch(/export interface SockCommon \{/);
    expect(src).toMatch(/export interface In6Addr \{/);
    const dir = path.join(tmp, 'gen-kernel');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'kernel.ts'), src);
    tsc(['kernel.ts'], dir);
  }, 60_000);
});
