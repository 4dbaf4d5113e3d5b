// SPDX-License-Identifier: MIT
/**
 * Minimal BTF writer. Used to synthesize BTF in tests and benchmarks (every
 * kind, including ones clang 14 cannot emit such as ENUM64), and usable to
 * describe map keys/values built from JS.
 */
import { BTF_KIND_NUMBERS, BtfError, type BtfKind, type BtfLinkage } from './types';

/** @example b.struct('pair', 8, [{ name: 'a', type: u32, bitOffset: 0 }, { name: 'b', type: u32, bitOffset: 32 }]) */
export interface BuildMember {
  name: string;
  type: number;
  /** Offset in bits from the start of the struct/union. */
  bitOffset: number;
  /** Bitfield width; omit or 0 for ordinary members. */
  bitfieldSize?: number;
}

const LINKAGE: Readonly<Record<BtfLinkage, number>> = { static: 0, global: 1, extern: 2 };

/**
 * Builds a little-endian BTF blob type by type; each add* method returns the new type id.
 *
 * @example
 * const b = new BtfBuilder();
 * const u32 = b.int('unsigned int', 4);
 * b.struct('pair', 8, [{ name: 'a', type: u32, bitOffset: 0 }, { name: 'b', type: u32, bitOffset: 32 }]);
 * const btf = Btf.parse(b.build());
 */
export class BtfBuilder {
  private readonly words: number[] = [];
  private readonly strs: Buffer[] = [];
  private readonly strIndex = new Map<string, number>([['', 0]]);
  private strLen = 0;
  private readonly strBase: number;
  private nextId: number;
  private arrayIndexType = 0;

  /**
   * @param base for split BTF (like kernel module BTF): new ids continue after
   * the base's types and new strings after its string section.
   */
  constructor(base?: { readonly typeCount: number; readonly stringsLength: number }) {
    this.nextId = base ? base.typeCount : 1;
    this.strBase = base ? base.stringsLength : 0;
    // Base BTF starts its string section with the empty string; split BTF
    // reuses the base's, as libbpf does.
    if (!base) {
      this.strs.push(Buffer.alloc(1));
      this.strLen = 1;
    }
  }

  /** Intern a string, returning its offset. */
  str(s: string): number {
    let off = this.strIndex.get(s);
    if (off === undefined) {
      const b = Buffer.from(`${s}\0`, 'utf8');
      off = this.strBase + this.strLen;
      this.strs.push(b);
      this.strLen += b.length;
      this.strIndex.set(s, off);
    }
    return off;
  }

  private head(name: string, kind: BtfKind, vlen: number, kflag: boolean, sizeOrType: number): number {
    if (vlen > 0xffff) throw new BtfError(`too many entries (${vlen}) for one BTF type`);
    this.words.push(this.str(name), ((kflag ? 1 : 0) << 31) | (BTF_KIND_NUMBERS[kind] << 24) | vlen, sizeOrType >>> 0);
    return this.nextId++;
  }

  int(name: string, size: number, opts: { signed?: boolean; char?: boolean; bool?: boolean; bits?: number } = {}): number {
    const id = this.head(name, 'int', 0, false, size);
    const enc = (opts.signed ? 1 : 0) | (opts.char ? 2 : 0) | (opts.bool ? 4 : 0);
    this.words.push(((enc << 24) | (opts.bits ?? size * 8)) >>> 0);
    return id;
  }

  float(name: string, size: number): number {
    return this.head(name, 'float', 0, false, size);
  }

  ptr(type: number): number {
    return this.head('', 'ptr', 0, false, type);
  }

  array(elem: number, nelems: number): number {
    if (this.arrayIndexType === 0) this.arrayIndexType = this.int('__ARRAY_SIZE_TYPE__', 4);
    const id = this.head('', 'array', 0, false, 0);
    this.words.push(elem, this.arrayIndexType, nelems);
    return id;
  }

  struct(name: string, size: number, members: readonly BuildMember[]): number {
    return this.composite('struct', name, size, members);
  }

  union(name: string, size: number, members: readonly BuildMember[]): number {
    return this.composite('union', name, size, members);
  }

  private composite(kind: 'struct' | 'union', name: string, size: number, members: readonly BuildMember[]): number {
    const kflag = members.some((m) => (m.bitfieldSize ?? 0) > 0);
    const id = this.head(name, kind, members.length, kflag, size);
    for (const m of members) {
      const off = kflag ? (((m.bitfieldSize ?? 0) << 24) | m.bitOffset) >>> 0 : m.bitOffset;
      this.words.push(this.str(m.name), m.type, off);
    }
    return id;
  }

  enum(name: string, size: number, values: readonly (readonly [string, number])[], signed = false): number {
    const id = this.head(name, 'enum', values.length, signed, size);
    for (const [n, v] of values) this.words.push(this.str(n), v >>> 0);
    return id;
  }

  enum64(name: string, size: number, values: readonly (readonly [string, bigint])[], signed = false): number {
    const id = this.head(name, 'enum64', values.length, signed, size);
    for (const [n, v] of values) {
      const u = BigInt.asUintN(64, v);
      this.words.push(this.str(n), Number(u & 0xffffffffn), Number(u >> 32n));
    }
    return id;
  }

  fwd(name: string, union = false): number {
    return this.head(name, 'fwd', 0, union, 0);
  }

  typedef(name: string, type: number): number {
    return this.head(name, 'typedef', 0, false, type);
  }

  volatile(type: number): number {
    return this.head('', 'volatile', 0, false, type);
  }

  const(type: number): number {
    return this.head('', 'const', 0, false, type);
  }

  restrict(type: number): number {
    return this.head('', 'restrict', 0, false, type);
  }

  typeTag(value: string, type: number): number {
    return this.head(value, 'type_tag', 0, false, type);
  }

  funcProto(returnType: number, params: readonly { name: string; type: number }[], variadic = false): number {
    const all = variadic ? [...params, { name: '', type: 0 }] : params;
    const id = this.head('', 'func_proto', all.length, false, returnType);
    for (const p of all) this.words.push(this.str(p.name), p.type);
    return id;
  }

  func(name: string, proto: number, linkage: BtfLinkage = 'global'): number {
    return this.head(name, 'func', LINKAGE[linkage], false, proto);
  }

  var(name: string, type: number, linkage: BtfLinkage = 'global'): number {
    const id = this.head(name, 'var', 0, false, type);
    this.words.push(LINKAGE[linkage]);
    return id;
  }

  datasec(name: string, size: number, vars: readonly { type: number; offset: number; size: number }[]): number {
    const id = this.head(name, 'datasec', vars.length, false, size);
    for (const v of vars) this.words.push(v.type, v.offset, v.size);
    return id;
  }

  declTag(value: string, type: number, componentIdx = -1): number {
    const id = this.head(value, 'decl_tag', 0, false, type);
    this.words.push(componentIdx >>> 0);
    return id;
  }

  /** Serialize: 24-byte header, type section, string section. */
  build(): Uint8Array {
    const typeLen = this.words.length * 4;
    const out = new Uint8Array(24 + typeLen + this.strLen);
    const dv = new DataView(out.buffer);
    dv.setUint16(0, 0xeb9f, true);
    dv.setUint8(2, 1);
    dv.setUint32(4, 24, true);
    dv.setUint32(8, 0, true);
    dv.setUint32(12, typeLen, true);
    dv.setUint32(16, typeLen, true);
    dv.setUint32(20, this.strLen, true);
    this.words.forEach((w, i) => dv.setUint32(24 + i * 4, w >>> 0, true));
    let p = 24 + typeLen;
    for (const s of this.strs) {
      out.set(s, p);
      p += s.length;
    }
    return out;
  }
}
