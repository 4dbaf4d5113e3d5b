// SPDX-License-Identifier: MIT
/**
 * The JS shape of a BTF type: which JS value each piece of memory maps to.
 * Codecs and gen-types are both derived from this one plan, so the generated
 * TypeScript declarations cannot drift from what the decoders return.
 */
import type { Btf, BtfTypeRef } from './parse';
import { isQualifier, isRef, skipRefs } from './refs';
import { BtfError, type BtfType } from './types';

/**
 * How a type maps to JS values; shared by the codecs and gen-types.
 *
 * @example
 * const s = shapeOf(btf, 'ev');
 * if (s.k === 'record') s.fields.map((f) => `${f.name}@${f.offset}`);
 */
export type Shape =
  /** number; size 1, 2 or 4 */
  | { readonly k: 'int'; readonly size: 1 | 2 | 4; readonly signed: boolean; readonly ctype: string }
  /** bigint; 64- and 128-bit integers */
  | { readonly k: 'bigint'; readonly size: 8 | 16; readonly signed: boolean; readonly ctype: string }
  | { readonly k: 'bool'; readonly size: 1 | 2 | 4 | 8; readonly ctype: string }
  | { readonly k: 'float'; readonly size: 4 | 8; readonly ctype: string }
  /** bigint address */
  | { readonly k: 'ptr'; readonly size: 4 | 8; readonly ctype: string }
  /** number, or bigint when the enum is 8 bytes wide */
  | {
      readonly k: 'enum';
      readonly size: 1 | 2 | 4 | 8;
      readonly signed: boolean;
      readonly enumId: number;
      readonly ctype: string;
    }
  /** NUL-terminated char array → string */
  | { readonly k: 'string'; readonly len: number; readonly ctype: string }
  /** unsigned byte array → Uint8Array copy */
  | { readonly k: 'bytes'; readonly len: number; readonly ctype: string }
  | { readonly k: 'array'; readonly len: number; readonly stride: number; readonly elem: Shape; readonly ctype: string }
  | RecordShape;

/** @example (shapeOf(btf, 'ev') as RecordShape).size; // 208 */
export interface RecordShape {
  readonly k: 'record';
  readonly union: boolean;
  readonly size: number;
  /** struct/union (or datasec) type id. */
  readonly typeId: number;
  readonly ctype: string;
  readonly fields: readonly FieldShape[];
}

/** @example recordShape.fields.filter((f) => f.bit).map((f) => f.name); // bitfields */
export interface FieldShape {
  /** JS property name (C member name; anonymous members are flattened into the parent). */
  readonly name: string;
  /** Byte offset from the start of the record (for bitfields: of the first byte holding bits). */
  readonly offset: number;
  /** For bitfields: bit position within the byte at `offset` and width in bits. */
  readonly bit?: { readonly shift: number; readonly bits: number };
  readonly shape: Shape;
}

/** @example const s: ScalarShape = { k: 'int', size: 4, signed: false, ctype: 'u32' }; */
export type ScalarShape = Extract<Shape, { k: 'int' | 'bigint' | 'bool' | 'enum' }>;

// Byte arrays of these typedefs are numbers, not text.
const SIGNED_BYTE_TYPEDEFS = new Set(['s8', '__s8', 'int8_t', '__int8_t']);

const MAX_DEPTH = 64;
/**
 * Most leaf values one shape may expand to once shared records and small arrays are
 * written out (what a generated codec reads); bounds code size for types that nest a
 * wide struct in a wide struct in a wide struct.
 */
export const MAX_SHAPE_NODES = 1 << 16;

/**
 * Compute the shape of a type. Throws a BtfError naming the member path for
 * types that have no value representation (functions, incomplete types, long double).
 *
 * @example
 * shapeOf(btf, 'tcp_tuple'); // { k: 'record', size: 8, fields: [{ name: 'sport', offset: 0, ... }, ...] }
 */
export function shapeOf(btf: Btf, ref: BtfTypeRef): Shape {
  return new ShapePlanner(btf).shapeOf(ref);
}

/**
 * Computes shapes, sharing the work for records reached more than once.
 *
 * @example
 * const planner = new ShapePlanner(btf);
 * const shapes = names.map((n) => planner.shapeOf(n));
 */
export class ShapePlanner {
  private readonly records = new Map<number, RecordShape>();
  constructor(private readonly btf: Btf) {}

  shapeOf(ref: BtfTypeRef): Shape {
    const t = this.btf.lookup(ref);
    const path = t.name || this.btf.typeName(t.id);
    const shape = this.plan(t.id, path, 0);
    if (expandedNodes(shape, this.expanded) > MAX_SHAPE_NODES) {
      throw new BtfError(`${path}: ${this.btf.typeName(t.id)} expands to more than ${MAX_SHAPE_NODES} values; decode a smaller member type instead`);
    }
    return shape;
  }

  private readonly expanded = new WeakMap<Shape, number>();
  private budget = MAX_SHAPE_NODES * 4;

  private spend(path: string): void {
    if (--this.budget < 0) throw new BtfError(`${path}: the type has too many members to decode`);
  }

  plan(id: number, path: string, depth: number): Shape {
    const btf = this.btf;
    if (depth > MAX_DEPTH) throw new BtfError(`${path}: type nesting too deep`);
    this.spend(path);
    const ctype = valueTypeName(btf, id);
    const t = btf.resolve(id);
    switch (t.kind) {
      case 'int':
        return intShape(t.size, t.signed, t.bool, ctype, path);
      case 'float':
        if (t.size !== 4 && t.size !== 8) throw new BtfError(`${path}: ${ctype} (${t.size}-byte float) is not supported`);
        return { k: 'float', size: t.size, ctype };
      case 'ptr': {
        const size = btf.sizeof(t.id);
        return { k: 'ptr', size: size === 4 ? 4 : 8, ctype };
      }
      case 'enum':
      case 'enum64': {
        const size = t.size;
        if (size !== 1 && size !== 2 && size !== 4 && size !== 8) {
          throw new BtfError(`${path}: ${ctype} has unsupported size ${size}`);
        }
        return { k: 'enum', size, signed: t.signed, enumId: t.id, ctype };
      }
      case 'array':
        return this.array(t.type, t.nelems, ctype, path, depth);
      case 'struct':
      case 'union':
      case 'datasec':
        return this.record(t, path, depth);
      default:
        throw new BtfError(`${path}: ${ctype} (${t.kind}) has no value representation`);
    }
  }

  private array(elemId: number, len: number, ctype: string, path: string, depth: number): Shape {
    const btf = this.btf;
    const elem = btf.resolve(elemId);
    if (elem.kind === 'int' && elem.size === 1 && !elem.bool) {
      const kind = this.byteArrayKind(elemId, elem);
      if (kind !== 'numbers') return { k: kind, len, ctype };
    }
    const stride = len === 0 ? 0 : btf.sizeof(elemId);
    return { k: 'array', len, stride, elem: this.plan(elemId, `${path}[]`, depth + 1), ctype };
  }

  // `char`/`signed char` arrays are text; unsigned bytes (`u8`, `__u8`,
  // `unsigned char`) are binary; `__s8`-style typedefs are small numbers.
  private byteArrayKind(elemId: number, resolved: Extract<BtfType, { kind: 'int' }>): 'string' | 'bytes' | 'numbers' {
    let t = this.btf.type(elemId);
    for (let i = 0; i < MAX_DEPTH && t.kind !== 'int'; i++) {
      if (t.kind === 'typedef' && SIGNED_BYTE_TYPEDEFS.has(t.name)) return 'numbers';
      if (!isRef(t)) break;
      t = this.btf.type(t.type);
    }
    if (resolved.name === 'char' || resolved.name === 'signed char' || (resolved.char && resolved.signed)) return 'string';
    return 'bytes';
  }

  private record(t: BtfType, path: string, depth: number): RecordShape {
    const cached = this.records.get(t.id);
    if (cached) return cached;
    const fields: FieldShape[] = [];
    let size: number;
    let union = false;
    if (t.kind === 'datasec') {
      size = this.btf.checkedSize(t.id);
      for (const si of t.vars) {
        const v = this.btf.type(si.type);
        if (v.kind !== 'var') continue;
        fields.push({ name: v.name, offset: si.offset, shape: this.plan(v.type, `${path}.${v.name}`, depth + 1) });
      }
    } else if (t.kind === 'struct' || t.kind === 'union') {
      size = t.size;
      union = t.kind === 'union';
      this.members(t.id, 0, fields, path, depth);
    } else {
      throw new BtfError(`${path}: not a record`);
    }
    const shape: RecordShape = { k: 'record', union, size, typeId: t.id, ctype: this.btf.typeName(t.id), fields };
    this.records.set(t.id, shape);
    return shape;
  }

  private members(id: number, baseBits: number, out: FieldShape[], path: string, depth: number): void {
    const t = this.btf.resolve(id);
    if (t.kind !== 'struct' && t.kind !== 'union') return;
    for (const m of t.members) {
      this.spend(path);
      const bitPos = baseBits + m.bitOffset;
      const mt = this.btf.resolve(m.type);
      if (m.name === '') {
        // C lets you name the members of an anonymous struct/union directly, so
        // flatten them; unnamed bitfields are padding.
        if ((mt.kind === 'struct' || mt.kind === 'union') && m.bitfieldSize === 0) this.members(mt.id, bitPos, out, path, depth + 1);
        continue;
      }
      const mpath = `${path}.${m.name}`;
      let bits = m.bitfieldSize;
      let shiftPos = bitPos;
      // Pre-kind_flag BTF encodes bitfields as ints with fewer bits than their storage.
      if (bits === 0 && mt.kind === 'int' && (mt.bits !== mt.size * 8 || mt.bitOffset !== 0)) {
        bits = mt.bits;
        shiftPos = bitPos + mt.bitOffset;
      }
      if (bits === 0 && bitPos % 8 !== 0) {
        if (mt.kind === 'int' || mt.kind === 'enum' || mt.kind === 'enum64') bits = mt.size * 8;
        else throw new BtfError(`${mpath}: member at non-byte bit offset ${bitPos}`);
      }
      const shape = this.plan(m.type, mpath, depth + 1);
      if (out.some((f) => f.name === m.name)) continue;
      if (bits !== 0) {
        if (shape.k !== 'int' && shape.k !== 'bigint' && shape.k !== 'bool' && shape.k !== 'enum') {
          throw new BtfError(`${mpath}: bitfield of ${shape.ctype} is not supported`);
        }
        out.push({ name: m.name, offset: Math.floor(shiftPos / 8), bit: { shift: shiftPos % 8, bits }, shape });
      } else {
        out.push({ name: m.name, offset: bitPos / 8, shape });
      }
    }
  }
}

// Arrays of more than this many leaves are read in a loop, so count as one element.
const LOOP_WEIGHT = 64;

/** Leaf values a generated codec writes out for `s` (shared shapes counted once each). */
function expandedNodes(s: Shape, memo: WeakMap<Shape, number>): number {
  const known = memo.get(s);
  if (known !== undefined) return known;
  let n = 1;
  if (s.k === 'record') {
    for (const f of s.fields) n += expandedNodes(f.shape, memo);
  } else if (s.k === 'array') {
    const elem = expandedNodes(s.elem, memo);
    n += s.len * elem <= LOOP_WEIGHT ? s.len * elem : elem;
  }
  n = Math.min(n, Number.MAX_SAFE_INTEGER);
  memo.set(s, n);
  return n;
}

// Qualifiers say nothing about the value, so leave them out of messages:
// `const volatile __u16` is reported as `__u16`.
function valueTypeName(btf: Btf, id: number): string {
  return btf.typeName(skipRefs((i) => btf.type(i), btf.type(id), isQualifier, MAX_DEPTH).id);
}

function intShape(size: number, signed: boolean, bool: boolean, ctype: string, path: string): Shape {
  if (bool) {
    if (size !== 1 && size !== 2 && size !== 4 && size !== 8) throw new BtfError(`${path}: ${ctype} has unsupported size ${size}`);
    return { k: 'bool', size, ctype };
  }
  if (size === 1 || size === 2 || size === 4) return { k: 'int', size, signed, ctype };
  if (size === 8 || size === 16) return { k: 'bigint', size, signed, ctype };
  throw new BtfError(`${path}: ${ctype} has unsupported size ${size}`);
}

/**
 * Whether an enum decodes to bigint: yes when 8 bytes wide, since 64-bit storage
 * cannot round-trip through number.
 *
 * @example
 * enumIsBig({ k: 'enum', size: 8, signed: false, enumId: 7, ctype: 'enum big' }); // true
 */
export function enumIsBig(s: Extract<Shape, { k: 'enum' }>): boolean {
  return s.size === 8;
}
