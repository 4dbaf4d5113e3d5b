// SPDX-License-Identifier: MIT
/**
 * BTF-driven binary codecs. Each decoder/encoder is generated once per type as
 * straight-line JavaScript (new Function) so that decoding a ring-buffer event
 * is a handful of DataView reads and one object literal, with no per-field
 * closures or interpretation.
 */
import type { Btf, BtfTypeRef } from './parse';
import { enumIsBig, shapeOf, type FieldShape, type RecordShape, type Shape } from './shape';

/**
 * What decoders produce: see the mapping table in {@link decoderFor}.
 *
 * @example
 * const v: DecodedValue = decoderFor(btf, 'ev').decode(view);
 */
export type DecodedValue = number | bigint | boolean | string | Uint8Array | DecodedValue[] | DecodedRecord;
/** A decoded struct, union or DATASEC. @example (dec.decode(view) as DecodedRecord).pid */
export interface DecodedRecord {
  [field: string]: DecodedValue;
}

/**
 * What encoders accept (a superset of {@link DecodedValue}).
 *
 * @example
 * const v: EncodableValue = { pid: 1, comm: 'curl', kind: 'EV_CONNECT' };
 */
export type EncodableValue =
  | number
  | bigint
  | boolean
  | string
  | Uint8Array
  | readonly EncodableValue[]
  | { readonly [field: string]: EncodableValue | undefined };

/**
 * A generated decoder; see {@link decoderFor}.
 *
 * @example
 * const dec: Decoder<conn_event> = decoderFor(btf, 'conn_event');
 * for (let off = 0; off + dec.size <= view.byteLength; off += dec.size) out.push(dec.decode(view, off));
 */
export interface Decoder<T = DecodedValue> {
  /** Bytes read per value (C sizeof). */
  readonly size: number;
  readonly typeId: number;
  /** C spelling of the type, e.g. `struct conn_event`. */
  readonly ctype: string;
  readonly shape: Shape;
  /** Decode one value at `byteOffset` (default 0) of `view`; throws RangeError if it does not fit. */
  decode(view: DataView, byteOffset?: number): T;
  /** Generated JavaScript, for debugging. */
  readonly source: string;
}

/**
 * A generated, type-checking encoder; see {@link encoderFor}.
 *
 * @example
 * const key = encoderFor(btf, 'tcp_tuple').encodeToBytes({ sport: 80, dport: 443 });
 */
export interface Encoder<T = EncodableValue> {
  readonly size: number;
  readonly typeId: number;
  readonly ctype: string;
  readonly shape: Shape;
  /**
   * Write `value` at `byteOffset` (default 0). The whole `size` bytes are
   * overwritten: padding and omitted fields become zero.
   */
  encode(value: T, view: DataView, byteOffset?: number): void;
  /** Encode into a fresh zeroed buffer of `size` bytes. */
  encodeToBytes(value: T): Uint8Array;
  readonly source: string;
}

/** @example decoderFor(btf, 'ev', { strings: 'latin1' }) */
export interface DecoderOptions {
  /**
   * How char arrays become strings. 'utf8' (default) decodes UTF-8 with an
   * ASCII fast path; 'latin1' maps each byte to one code unit.
   */
  strings?: 'utf8' | 'latin1';
}

/** @example encoderFor(btf, 'ev', { strings: 'latin1' }) */
export interface EncoderOptions {
  /**
   * How strings become char-array bytes: 'utf8' (default), or 'latin1' (one byte
   * per code unit, rejecting code units above 0xff), which round-trips arbitrary
   * bytes decoded with `{ strings: 'latin1' }`.
   */
  strings?: 'utf8' | 'latin1';
  /**
   * Name for the value as a whole in error messages (default: the type's name).
   * Encoding a global by its VAR type, pass the variable name to get
   * `tcpscope_port: expected integer 0..65535 (u16), got 70000`.
   */
  label?: string;
}

// Unroll arrays whose element work is at most this many leaf reads; bigger ones get a loop.
const UNROLL_WEIGHT = 64;
// Byte arrays up to this length are copied with inline stores (cheaper than slice()).
const INLINE_BYTES = 32;

type AnyDecoder = Decoder<unknown>;
type AnyEncoder = Encoder<unknown>;
const decoderCache = new WeakMap<Btf, Map<string, AnyDecoder>>();
const encoderCache = new WeakMap<Btf, Map<string, AnyEncoder>>();

/**
 * Build (or fetch from cache) a decoder for a type by name or id.
 *
 * Mapping: ints up to 32 bits → number (signedness kept); 64/128-bit ints →
 * bigint; `_Bool` → boolean; `char`/`signed char` arrays → string (up to the
 * first NUL); unsigned byte arrays (`u8`, `__u8`, `unsigned char`) → Uint8Array
 * copy; other arrays → JS arrays; structs/unions → objects (anonymous members
 * flattened, union members all decoded from the same bytes); enums → number
 * (8-byte enums → bigint); pointers → bigint; float/double → number; padding
 * ignored. A DATASEC name (e.g. `.rodata`) decodes its variables as an object.
 *
 * @example
 * const dec = decoderFor<conn_event>(btf, 'conn_event');
 * ringbuf.on('sample', (view: DataView) => {
 *   const ev = dec.decode(view, 0);
 *   console.log(ev.pid, ev.comm, ev.ts_ns);
 * });
 */
export function decoderFor<T = DecodedValue>(btf: Btf, ref: BtfTypeRef, options: DecoderOptions = {}): Decoder<T> {
  const t = btf.lookup(ref);
  const strings = options.strings ?? 'utf8';
  const key = `${t.id}:${strings}`;
  let cache = decoderCache.get(btf);
  if (!cache) decoderCache.set(btf, (cache = new Map()));
  let dec = cache.get(key);
  if (!dec) {
    dec = buildDecoder(t.id, btf.typeName(t.id), shapeOf(btf, t.id), strings);
    cache.set(key, dec);
  }
  return dec as Decoder<T>;
}

/**
 * Build (or fetch from cache) a type-checking encoder for a type by name or id.
 * Accepts what the decoder returns plus: bigint or number for any integer,
 * enumerator names for enums, string or Uint8Array for char arrays, arrays
 * shorter than declared (rest zeroed), objects with fields omitted (zeroed).
 * Unknown fields and out-of-range values throw a TypeError naming the field
 * path, the C type and the offending value.
 *
 * @example
 * const enc = encoderFor(btf, '.rodata');
 * enc.encode({ tcpscope_port: 8080 }, view);
 * // enc.encode({ tcpscope_port: 70000 }, view) throws
 * // TypeError: tcpscope_port: expected integer 0..65535 (u16), got 70000
 */
export function encoderFor<T = EncodableValue>(btf: Btf, ref: BtfTypeRef, options: EncoderOptions = {}): Encoder<T> {
  const t = btf.lookup(ref);
  const strings = options.strings ?? 'utf8';
  const key = `${t.id}:${strings}:${options.label ?? ''}`;
  let cache = encoderCache.get(btf);
  if (!cache) encoderCache.set(btf, (cache = new Map()));
  let enc = cache.get(key);
  if (!enc) {
    const shape = shapeOf(btf, t.id);
    // Errors about the value as a whole are prefixed with its type, minus qualifiers.
    enc = buildEncoder(btf, t.id, btf.typeName(t.id), options.label ?? (t.name || shape.ctype), shape, strings);
    cache.set(key, enc);
  }
  return enc as Encoder<T>;
}

// ---------------------------------------------------------------------------
// Decoder generation

function sizeOfShape(s: Shape): number {
  switch (s.k) {
    case 'string':
    case 'bytes':
      return s.len;
    case 'array':
      return s.len * s.stride;
    default:
      return s.size;
  }
}

function weight(s: Shape): number {
  switch (s.k) {
    case 'array':
      return s.len * weight(s.elem);
    case 'record':
      return s.fields.reduce((n, f) => n + weight(f.shape), 0);
    case 'bytes':
      return s.len <= INLINE_BYTES ? 1 + (s.len >> 3) : 1;
    default:
      return 1;
  }
}

/** Position expression: `base + k` with k folded at generation time. */
interface Pos {
  readonly base: string;
  readonly k: number;
}
const at = (p: Pos, add = 0): string => (p.k + add === 0 ? p.base : `${p.base} + ${p.k + add}`);
const shifted = (p: Pos, add: number): Pos => ({ base: p.base, k: p.k + add });

function prop(name: string): string {
  return /^[A-Za-z_$][\w$]*$/.test(name) && name !== '__proto__' ? name : `[${JSON.stringify(name)}]`;
}

class DecodeGen {
  private n = 0;
  readonly helpers: string[] = [];
  constructor(private readonly strFn: string) {}

  private tmp(prefix: string): string {
    return `${prefix}${this.n++}`;
  }

  expr(s: Shape, p: Pos, pre: string[]): string {
    switch (s.k) {
      case 'int':
        return s.size === 1 ? `dv.get${s.signed ? 'Int' : 'Uint'}8(${at(p)})` : `dv.get${s.signed ? 'Int' : 'Uint'}${s.size * 8}(${at(p)}, true)`;
      case 'enum':
        if (enumIsBig(s)) return `dv.getBig${s.signed ? 'Int' : 'Uint'}64(${at(p)}, true)`;
        return s.size === 1 ? `dv.get${s.signed ? 'Int' : 'Uint'}8(${at(p)})` : `dv.get${s.signed ? 'Int' : 'Uint'}${s.size * 8}(${at(p)}, true)`;
      case 'bigint':
        if (s.size === 8) return `dv.getBig${s.signed ? 'Int' : 'Uint'}64(${at(p)}, true)`;
        return `H.r128(dv, ${at(p)}, ${s.signed})`;
      case 'bool':
        if (s.size === 1) return `dv.getUint8(${at(p)}) !== 0`;
        if (s.size === 8) return `dv.getBigUint64(${at(p)}, true) !== 0n`;
        return `dv.getUint${s.size * 8}(${at(p)}, true) !== 0`;
      case 'float':
        return `dv.getFloat${s.size * 8}(${at(p)}, true)`;
      case 'ptr':
        return s.size === 8 ? `dv.getBigUint64(${at(p)}, true)` : `BigInt(dv.getUint32(${at(p)}, true))`;
      case 'string':
        return s.len === 0 ? `''` : `${this.strFn}(dv, ${at(p)}, ${s.len})`;
      case 'bytes': {
        if (s.len === 0) return 'new Uint8Array(0)';
        if (s.len > INLINE_BYTES) return `H.copyBytes(dv, ${at(p)}, ${s.len})`;
        const t = this.tmp('b');
        const stores: string[] = [];
        for (let i = 0; i < s.len; i++) stores.push(`${t}[${i}] = dv.getUint8(${at(p, i)});`);
        pre.push(`const ${t} = new Uint8Array(${s.len}); ${stores.join(' ')}`);
        return t;
      }
      case 'array': {
        if (s.len === 0) return '[]';
        if (weight(s) <= UNROLL_WEIGHT) {
          const parts: string[] = [];
          for (let i = 0; i < s.len; i++) parts.push(this.expr(s.elem, shifted(p, i * s.stride), pre));
          return `[${parts.join(', ')}]`;
        }
        return `${this.loopHelper(s)}(dv, ${at(p)})`;
      }
      case 'record':
        return this.record(s, p, pre);
    }
  }

  private record(s: RecordShape, p: Pos, pre: string[]): string {
    const parts = s.fields.map((f) => `${prop(f.name)}: ${this.field(f, p, pre)}`);
    return `{ ${parts.join(', ')} }`;
  }

  field(f: FieldShape, rec: Pos, pre: string[]): string {
    const p = shifted(rec, f.offset);
    if (!f.bit) return this.expr(f.shape, p, pre);
    const s = f.shape;
    const { shift, bits } = f.bit;
    const nbytes = Math.ceil((shift + bits) / 8);
    const signed = (s.k === 'int' || s.k === 'bigint' || s.k === 'enum') && s.signed;
    const bigResult = s.k === 'bigint' || (s.k === 'enum' && enumIsBig(s));
    if (bigResult || nbytes > 4) {
      // Wide or 64-bit-typed bitfields are rare; a BigInt helper keeps them exact.
      const e = `H.rbits(dv, ${at(p)}, ${nbytes}, ${shift}, ${bits}, ${signed})`;
      if (bigResult) return e;
      return s.k === 'bool' ? `${e} !== 0n` : `Number(${e})`;
    }
    const raw =
      nbytes === 1
        ? `dv.getUint8(${at(p)})`
        : nbytes === 2
          ? `dv.getUint16(${at(p)}, true)`
          : nbytes === 3
            ? `(dv.getUint16(${at(p)}, true) | (dv.getUint8(${at(p, 2)}) << 16))`
            : `dv.getUint32(${at(p)}, true)`;
    if (signed) return `((${raw} << ${32 - shift - bits}) >> ${32 - bits})`;
    const v = bits === 32 ? `(${raw} >>> 0)` : `((${shift === 0 ? raw : `${raw} >>> ${shift}`}) & ${2 ** bits - 1})`;
    return s.k === 'bool' ? `(${v} !== 0)` : v;
  }

  private loopHelper(s: Extract<Shape, { k: 'array' }>): string {
    const name = this.tmp('A');
    const pre: string[] = [];
    const e = this.expr(s.elem, { base: 'q', k: 0 }, pre);
    this.helpers.push(
      `function ${name}(dv, p) {\n` +
        `  const a = new Array(${s.len});\n` +
        `  for (let i = 0, q = p; i < ${s.len}; i++, q += ${s.stride}) {\n` +
        (pre.length ? `    ${pre.join('\n    ')}\n` : '') +
        `    a[i] = ${e};\n` +
        `  }\n  return a;\n}`,
    );
    return name;
  }
}

/** Decoders generated here: they read their view, copy what they keep and never write. */
const copyingDecoders = new WeakSet<object>();

/** @internal True for decoders of decoderFor: safe on a view they must not keep or write to. */
export function decodesIntoCopies(decoder: object): boolean {
  return copyingDecoders.has(decoder);
}

function buildDecoder(typeId: number, ctype: string, shape: Shape, strings: 'utf8' | 'latin1'): AnyDecoder {
  const size = sizeOfShape(shape);
  const gen = new DecodeGen(strings === 'latin1' ? 'H.cstrLatin1' : 'H.cstrUtf8');
  const pre: string[] = [];
  const expr = gen.expr(shape, { base: 'p', k: 0 }, pre);
  // Everything, bytes included, is read through the caller's DataView: V8
  // inlines getUint8 as cheaply as a typed-array load, and it avoids touching
  // view.buffer, which a ring buffer may hand out fresh for every sample.
  const src =
    `"use strict";\n` +
    gen.helpers.join('\n') +
    `\nreturn function decode(v, o) {\n` +
    `  if (o === undefined) o = 0;\n` +
    `  if (!(o >= 0 && o + ${size} <= v.byteLength)) throw H.rangeError(${JSON.stringify(ctype)}, ${size}, v, o);\n` +
    `  const dv = v, p = o;\n` +
    (pre.length ? `  ${pre.join('\n  ')}\n` : '') +
    `  return ${expr};\n};\n`;
  const decode = new Function('H', src)(decodeHelpers) as (view: DataView, byteOffset?: number) => unknown;
  const decoder = { size, typeId, ctype, shape, decode, source: src };
  copyingDecoders.add(decoder);
  return decoder;
}

// ---------------------------------------------------------------------------
// Lazy views

/** Where a view keeps its bytes: symbol keys, so neither JSON nor Object.keys shows them. */
export const VIEW_DATA: unique symbol = Symbol('tcpscope.view.data');
export const VIEW_OFFSET: unique symbol = Symbol('tcpscope.view.offset');

/** What every lazy view holds: the bytes it reads, and where its record starts. */
export interface ViewBase {
  readonly [VIEW_DATA]: DataView;
  readonly [VIEW_OFFSET]: number;
  /** Every field, decoded now, as a plain object (what JSON.stringify writes). */
  toJSON(): Record<string, unknown>;
}

/** A generated view class: `new C(view, offset)` costs one small object; fields decode when read. */
export interface ViewClass<T> {
  new (view: DataView, byteOffset: number): T & ViewBase;
  readonly prototype: T & ViewBase;
  /** Bytes of the record (C sizeof). */
  readonly size: number;
}

/**
 * A decoder whose values are lazy views over the record's bytes: each field is a getter
 * generated as {@link decoderFor} would decode it, run when (and each time) it is read.
 * Values keep reading `view` after decode() returns, so it must not be reused for other
 * bytes while they live (`retainsView`: RecordReader hands such decoders a copy of each
 * batch).
 */
export interface ViewDecoder<T> extends Decoder<T & ViewBase> {
  readonly retainsView: true;
  /** The class, to extend with computed fields (e.g. string addresses). */
  readonly View: ViewClass<T>;
}

const viewCache = new WeakMap<Btf, Map<string, ViewDecoder<unknown>>>();

/**
 * Build (or fetch from cache) a lazy view decoder for a struct or union: a field costs
 * nothing until read; only the record's size is checked at decode().
 *
 * @example
 * const dec = viewDecoderFor<conn_event>(btf, 'conn_event');
 * const ev = dec.decode(view, 0); // no field read yet
 * ev.pid;                         // one DataView read
 */
export function viewDecoderFor<T = DecodedRecord>(btf: Btf, ref: BtfTypeRef, options: DecoderOptions = {}): ViewDecoder<T> {
  const t = btf.lookup(ref);
  const strings = options.strings ?? 'utf8';
  const key = `${t.id}:${strings}`;
  let cache = viewCache.get(btf);
  if (!cache) viewCache.set(btf, (cache = new Map()));
  let dec = cache.get(key);
  if (!dec) {
    dec = buildViewDecoder(t.id, btf.typeName(t.id), shapeOf(btf, t.id), strings);
    cache.set(key, dec);
  }
  return dec as ViewDecoder<T>;
}

function buildViewDecoder(typeId: number, ctype: string, shape: Shape, strings: 'utf8' | 'latin1'): ViewDecoder<unknown> {
  if (shape.k !== 'record') throw new TypeError(`a lazy view needs a struct or union, not ${ctype}`);
  const size = shape.size;
  const gen = new DecodeGen(strings === 'latin1' ? 'H.cstrLatin1' : 'H.cstrUtf8');
  const getters: string[] = [];
  const names: string[] = [];
  // A name repeated (flattened anonymous members) reads as the last one, as in decoderFor's
  // object literal.
  const fields = new Map<string, FieldShape>();
  for (const f of shape.fields) if (f.name !== 'toJSON' && f.name !== 'constructor') fields.set(f.name, f);
  for (const f of fields.values()) {
    const pre: string[] = [];
    const expr = gen.field(f, { base: 'p', k: 0 }, pre);
    getters.push(`  get ${prop(f.name)}() {\n    const dv = this[D], p = this[O];\n` + (pre.length ? `    ${pre.join('\n    ')}\n` : '') + `    return ${expr};\n  }`);
    names.push(f.name);
  }
  const json = names.map((n) => `${prop(n)}: this${/^[A-Za-z_$][\w$]*$/.test(n) && n !== '__proto__' ? `.${n}` : `[${JSON.stringify(n)}]`}`).join(', ');
  const src =
    `"use strict";\n` +
    gen.helpers.join('\n') +
    `\nclass View {\n` +
    `  constructor(v, o) { this[D] = v; this[O] = o; }\n` +
    getters.join('\n') +
    `\n  toJSON() { return { ${json} }; }\n` +
    `  [H.inspect](depth, options, inspect) { return inspect(this.toJSON(), options); }\n` +
    `}\n` +
    `View.size = ${size};\n` +
    `return View;\n`;
  const View = new Function('H', 'D', 'O', src)(viewHelpers, VIEW_DATA, VIEW_OFFSET) as ViewClass<unknown>;
  const rangeError = decodeHelpers.rangeError;
  const decode = (v: DataView, o = 0): unknown => {
    if (!(o >= 0 && o + size <= v.byteLength)) throw rangeError(ctype, size, v, o);
    return new View(v, o);
  };
  return { size, typeId, ctype, shape, decode, source: src, retainsView: true, View } as ViewDecoder<unknown>;
}

function cstrUtf8(dv: DataView, p: number, n: number): string {
  let s = '';
  let hi = 0;
  let e = p;
  const end = p + n;
  for (; e < end; e++) {
    const c = dv.getUint8(e);
    if (c === 0) break;
    hi |= c;
    s += String.fromCharCode(c);
  }
  // Building the string byte by byte beats TextDecoder for short ASCII names; redo it properly otherwise.
  return hi < 0x80 ? s : Buffer.from(dv.buffer, dv.byteOffset + p, e - p).toString('utf8');
}

function cstrLatin1(dv: DataView, p: number, n: number): string {
  let s = '';
  const end = p + n;
  for (let e = p; e < end; e++) {
    const c = dv.getUint8(e);
    if (c === 0) break;
    s += String.fromCharCode(c);
  }
  return s;
}

function readUintLE(dv: DataView, p: number, n: number): bigint {
  let v = 0n;
  for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(dv.getUint8(p + i));
  return v;
}

const decodeHelpers = {
  cstrUtf8,
  cstrLatin1,
  copyBytes(dv: DataView, p: number, n: number): Uint8Array {
    return new Uint8Array(dv.buffer, dv.byteOffset + p, n).slice();
  },
  r128(dv: DataView, p: number, signed: boolean): bigint {
    const v = (dv.getBigUint64(p + 8, true) << 64n) | dv.getBigUint64(p, true);
    return signed ? BigInt.asIntN(128, v) : v;
  },
  rbits(dv: DataView, p: number, n: number, shift: number, bits: number, signed: boolean): bigint {
    const v = readUintLE(dv, p, n) >> BigInt(shift);
    return signed ? BigInt.asIntN(bits, v) : BigInt.asUintN(bits, v);
  },
  rangeError(ctype: string, size: number, v: DataView, o: unknown): RangeError {
    return new RangeError(`decode ${ctype}: needs ${size} bytes at offset ${String(o)}, but the view has ${v.byteLength} bytes`);
  },
};

const viewHelpers = { ...decodeHelpers, inspect: Symbol.for('nodejs.util.inspect.custom') };

// ---------------------------------------------------------------------------
// Encoder generation

/** A path to a field for error messages, as a JS expression. */
interface Path {
  readonly js: string;
  /** Literal text when known at generation time. */
  readonly lit?: string;
  readonly root: boolean;
}

function childPath(parent: Path, name: string): Path {
  if (parent.root) return { js: JSON.stringify(name), lit: name, root: false };
  if (parent.lit !== undefined) return { js: JSON.stringify(`${parent.lit}.${name}`), lit: `${parent.lit}.${name}`, root: false };
  return { js: `${parent.js} + ${JSON.stringify(`.${name}`)}`, root: false };
}

function indexPath(parent: Path, index: string): Path {
  return { js: `${parent.js} + "[" + ${index} + "]"`, root: false };
}

class EncodeGen {
  private n = 0;
  /** Constants handed to the generated code (known-field sets, enum tables). */
  readonly consts: unknown[] = [];
  constructor(
    private readonly btf: Btf,
    private readonly latin1: boolean,
  ) {}

  private tmp(prefix: string): string {
    return `${prefix}${this.n++}`;
  }

  private constant(v: unknown): string {
    this.consts.push(v);
    return `C[${this.consts.length - 1}]`;
  }

  /**
   * Append statements writing value `x` of shape `s` at `p`. `only` restricts
   * output to lossy or lossless leaves (see the union case).
   */
  stmts(s: Shape, x: string, p: Pos, path: Path, out: string[], only: Only = 'all'): void {
    const P = path.js;
    const T = JSON.stringify(s.ctype);
    if (only !== 'all' && s.k !== 'array' && s.k !== 'record' && isLossy(s) !== (only === 'lossy')) return;
    switch (s.k) {
      case 'int': {
        const [min, max] = intRange(s.size * 8, s.signed);
        const v = `H.int(${x}, ${min}, ${max}, ${P}, ${T})`;
        out.push(s.size === 1 ? `dv.setUint8(${at(p)}, ${v} & 0xff);` : `dv.set${s.signed ? 'Int' : 'Uint'}${s.size * 8}(${at(p)}, ${v}, true);`);
        return;
      }
      case 'bigint': {
        const [min, max] = bigRange(s.size * 8, s.signed);
        const v = `H.big(${x}, ${min}n, ${max}n, ${P}, ${T})`;
        if (s.size === 8) out.push(`dv.set${s.signed ? 'BigInt' : 'BigUint'}64(${at(p)}, ${v}, true);`);
        else out.push(`H.w128(dv, ${at(p)}, ${v});`);
        return;
      }
      case 'bool':
        out.push(`H.wuint(dv, ${at(p)}, ${s.size}, H.bool(${x}, ${P}, ${T}));`);
        return;
      case 'float':
        out.push(`dv.setFloat${s.size * 8}(${at(p)}, H.float(${x}, ${P}, ${T}), true);`);
        return;
      case 'ptr': {
        const [min, max] = bigRange(s.size * 8, false);
        out.push(`H.wuint(dv, ${at(p)}, ${s.size}, H.big(${x}, ${min}n, ${max}n, ${P}, ${T}));`);
        return;
      }
      case 'enum': {
        const table = this.enumTable(s);
        const big = enumIsBig(s);
        const [min] = bigRange(s.size * 8, true);
        const [, umax] = bigRange(s.size * 8, false);
        // C enum storage wraps, so accept both the signed and unsigned spelling of a value.
        out.push(`H.wuint(dv, ${at(p)}, ${s.size}, H.enumv(${x}, ${table}, ${min}n, ${umax}n, ${big}, ${P}, ${T}));`);
        return;
      }
      case 'string':
        out.push(`H.str(u8, ${at(p)}, ${s.len}, ${x}, ${P}, ${T}, ${this.latin1});`);
        return;
      case 'bytes':
        out.push(`H.bytes(u8, ${at(p)}, ${s.len}, ${x}, ${P}, ${T});`);
        return;
      case 'array': {
        const a = this.tmp('a');
        const i = this.tmp('i');
        const q = this.tmp('q');
        const e = this.tmp('x');
        const inner: string[] = [];
        this.stmts(s.elem, e, { base: q, k: 0 }, indexPath(path, i), inner, only);
        if (inner.length === 0) {
          out.push(`H.arr(${x}, ${s.len}, ${P}, ${T});`);
          return;
        }
        out.push(
          `{ const ${a} = H.arr(${x}, ${s.len}, ${P}, ${T});`,
          `  for (let ${i} = 0, ${q} = ${at(p)}; ${i} < ${a}.length; ${i}++, ${q} += ${s.stride}) {`,
          `    const ${e} = ${a}[${i}]; if (${e} !== undefined) { ${inner.join(' ')} } } }`,
        );
        return;
      }
      case 'record': {
        const known = this.constant(new Set(s.fields.map((f) => f.name)));
        out.push(`H.obj(${x}, ${known}, ${P}, ${T});`);
        // Union members overlap, so with several given (as in a decoded value)
        // the last write wins. Writing every lossy leaf (bool, string, float)
        // before every lossless one makes re-encoding a decoded union reproduce
        // its bytes wherever any lossless member covers them.
        const passes: Only[] = only === 'all' && (s.union || hasOverlap(s.fields)) ? ['lossy', 'lossless'] : [only];
        for (const pass of passes) {
          for (const f of s.fields) {
            const fx = this.tmp('x');
            const inner: string[] = [];
            const fp = childPath(path, f.name);
            if (f.bit) this.bitfield(f, fx, shifted(p, f.offset), fp, inner, pass);
            else this.stmts(f.shape, fx, shifted(p, f.offset), fp, inner, pass);
            if (inner.length > 0) out.push(`{ const ${fx} = ${x}[${JSON.stringify(f.name)}]; if (${fx} !== undefined) { ${inner.join(' ')} } }`);
          }
        }
        return;
      }
    }
  }

  private bitfield(f: FieldShape, x: string, p: Pos, path: Path, out: string[], only: Only): void {
    const { shift, bits } = f.bit!;
    const s = f.shape;
    if (only !== 'all' && isLossy(s) !== (only === 'lossy')) return;
    const nbytes = Math.ceil((shift + bits) / 8);
    const P = path.js;
    const T = JSON.stringify(`${s.ctype}:${bits}`);
    let v: string;
    if (s.k === 'bool') {
      v = `H.bool(${x}, ${P}, ${T})`;
    } else if (s.k === 'enum') {
      const [min] = bigRange(bits, true);
      const [, umax] = bigRange(bits, false);
      v = `H.enumv(${x}, ${this.enumTable(s)}, ${min}n, ${umax}n, ${enumIsBig(s)}, ${P}, ${T})`;
    } else {
      const signed = s.k === 'int' || s.k === 'bigint' ? s.signed : false;
      const [min, max] = bigRange(bits, signed);
      v = `H.big(${x}, ${min}n, ${max}n, ${P}, ${T})`;
    }
    out.push(`H.wbits(dv, ${at(p)}, ${nbytes}, ${shift}, ${bits}, ${v});`);
  }

  private enumTable(s: Extract<Shape, { k: 'enum' }>): string {
    const t = this.btf.type(s.enumId);
    const m = new Map<string, bigint>();
    if (t.kind === 'enum' || t.kind === 'enum64') for (const e of t.values) m.set(e.name, BigInt(e.value));
    return this.constant(m);
  }
}

type Only = 'all' | 'lossy' | 'lossless';

/** Do any fields share bytes? (Members of an anonymous union flattened into a struct do.) */
function hasOverlap(fields: readonly FieldShape[]): boolean {
  const spans = fields
    .map((f) => (f.bit ? [f.offset * 8 + f.bit.shift, f.offset * 8 + f.bit.shift + f.bit.bits] : [f.offset * 8, (f.offset + sizeOfShape(f.shape)) * 8]) as [number, number])
    .sort((a, b) => a[0] - b[0]);
  let end = 0;
  for (const [from, to] of spans) {
    if (from < end) return true;
    end = Math.max(end, to);
  }
  return false;
}

// Leaves whose decoded JS value may not re-encode to the same bytes: bools
// other than 0/1, bytes after a string's NUL or invalid UTF-8, NaN payloads.
function isLossy(s: Shape): boolean {
  return s.k === 'bool' || s.k === 'string' || s.k === 'float';
}

function intRange(bits: number, signed: boolean): [number, number] {
  return signed ? [-(2 ** (bits - 1)), 2 ** (bits - 1) - 1] : [0, 2 ** bits - 1];
}

function bigRange(bits: number, signed: boolean): [string, string] {
  const b = BigInt(bits);
  return signed ? [String(-(1n << (b - 1n))), String((1n << (b - 1n)) - 1n)] : ['0', String((1n << b) - 1n)];
}

function buildEncoder(btf: Btf, typeId: number, ctype: string, rootLabel: string, shape: Shape, strings: 'utf8' | 'latin1'): AnyEncoder {
  const size = sizeOfShape(shape);
  const gen = new EncodeGen(btf, strings === 'latin1');
  const body: string[] = [];
  gen.stmts(shape, 'x', { base: 'p', k: 0 }, { js: JSON.stringify(rootLabel), lit: rootLabel, root: true }, body);
  const src =
    `"use strict";\n` +
    `let lb = null, ldv = null, lu8 = null;\n` +
    `return function encode(x, v, o) {\n` +
    `  if (o === undefined) o = 0;\n` +
    `  if (!(o >= 0 && o + ${size} <= v.byteLength)) throw H.rangeError(${JSON.stringify(ctype)}, ${size}, v, o);\n` +
    `  const b = v.buffer;\n` +
    `  if (b !== lb) { lb = b; ldv = new DataView(b); lu8 = new Uint8Array(b); }\n` +
    `  const dv = ldv, u8 = lu8, p = v.byteOffset + o;\n` +
    `  u8.fill(0, p, p + ${size});\n` +
    `  ${body.join('\n  ')}\n` +
    `};\n`;
  const encode = new Function('H', 'C', src)(encodeHelpers, gen.consts) as (value: unknown, view: DataView, byteOffset?: number) => void;
  return {
    size,
    typeId,
    ctype,
    shape,
    encode,
    encodeToBytes(value: unknown): Uint8Array {
      const out = new Uint8Array(size);
      encode(value, new DataView(out.buffer), 0);
      return out;
    },
    source: src,
  };
}

function show(x: unknown): string {
  if (typeof x === 'bigint') return `${x}n`;
  if (typeof x === 'string') return JSON.stringify(x.length > 40 ? `${x.slice(0, 40)}…` : x);
  if (x instanceof Uint8Array) return `${x.constructor.name}(${x.length})`;
  if (Array.isArray(x)) return `array(${x.length})`;
  if (x === null) return 'null';
  if (typeof x === 'object') return 'object';
  if (typeof x === 'function') return 'function';
  return String(x);
}

function fail(path: string, expected: string, ctype: string, x: unknown, extra = ''): TypeError {
  return new TypeError(`${path}: expected ${expected} (${ctype}), got ${show(x)}${extra}`);
}

function writeUintLE(dv: DataView, p: number, n: number, v: bigint): void {
  for (let i = 0; i < n; i++) {
    dv.setUint8(p + i, Number(v & 0xffn));
    v >>= 8n;
  }
}

const encodeHelpers = {
  rangeError: decodeHelpers.rangeError,
  int(x: unknown, min: number, max: number, path: string, ctype: string): number {
    if (typeof x === 'number' && Number.isInteger(x) && x >= min && x <= max) return x;
    if (typeof x === 'bigint' && x >= BigInt(min) && x <= BigInt(max)) return Number(x);
    throw fail(path, `integer ${min}..${max}`, ctype, x);
  },
  big(x: unknown, min: bigint, max: bigint, path: string, ctype: string): bigint {
    if (typeof x === 'bigint') {
      if (x >= min && x <= max) return x;
    } else if (typeof x === 'number' && Number.isSafeInteger(x)) {
      const b = BigInt(x);
      if (b >= min && b <= max) return b;
    }
    throw fail(path, `integer ${min}..${max}`, ctype, x, typeof x === 'number' && !Number.isSafeInteger(x) && Number.isInteger(x) ? ' (not a safe integer: pass a bigint)' : '');
  },
  bool(x: unknown, path: string, ctype: string): number {
    if (x === true || x === 1) return 1;
    if (x === false || x === 0) return 0;
    throw fail(path, 'boolean', ctype, x);
  },
  float(x: unknown, path: string, ctype: string): number {
    if (typeof x === 'number') return x;
    throw fail(path, 'number', ctype, x);
  },
  enumv(x: unknown, table: Map<string, bigint>, min: bigint, max: bigint, big: boolean, path: string, ctype: string): bigint {
    if (typeof x === 'string') {
      const v = table.get(x);
      if (v !== undefined) return v;
    } else if (typeof x === 'bigint' || (typeof x === 'number' && Number.isSafeInteger(x))) {
      const b = BigInt(x);
      if (b >= min && b <= max) return b;
    }
    const names = [...table.keys()];
    const list = names.length > 8 ? `${names.slice(0, 8).join(', ')}, …` : names.join(', ');
    throw fail(path, `${big ? 'bigint' : 'integer'} ${min}..${max} or one of ${list}`, ctype, x);
  },
  wuint(dv: DataView, p: number, n: number, v: number | bigint): void {
    if (n === 1) dv.setUint8(p, Number(v) & 0xff);
    else if (n === 2) dv.setUint16(p, Number(v) & 0xffff, true);
    else if (n === 4) dv.setUint32(p, Number(BigInt.asUintN(32, BigInt(v))), true);
    else dv.setBigUint64(p, BigInt.asUintN(64, BigInt(v)), true);
  },
  w128(dv: DataView, p: number, v: bigint): void {
    const u = BigInt.asUintN(128, v);
    dv.setBigUint64(p, BigInt.asUintN(64, u), true);
    dv.setBigUint64(p + 8, u >> 64n, true);
  },
  wbits(dv: DataView, p: number, n: number, shift: number, bits: number, v: number | bigint): void {
    const mask = ((1n << BigInt(bits)) - 1n) << BigInt(shift);
    const cur = readUintLE(dv, p, n);
    writeUintLE(dv, p, n, (cur & ~mask) | ((BigInt.asUintN(bits, BigInt(v)) << BigInt(shift)) & mask));
  },
  str(u8: Uint8Array, p: number, len: number, x: unknown, path: string, ctype: string, latin1: boolean): void {
    let bytes: Uint8Array;
    if (typeof x === 'string') {
      // Buffer's latin1 encoder silently truncates code units above 0xff.
      if (latin1 && /[^\u0000-\u00ff]/.test(x)) throw fail(path, `latin1 string of at most ${len} characters`, ctype, x);
      bytes = Buffer.from(x, latin1 ? 'latin1' : 'utf8');
    } else if (x instanceof Uint8Array) bytes = x;
    else throw fail(path, `string or Uint8Array of at most ${len} bytes`, ctype, x);
    if (bytes.length > len) throw fail(path, `string or Uint8Array of at most ${len} bytes`, ctype, x, ` (${bytes.length} bytes)`);
    u8.set(bytes, p);
  },
  bytes(u8: Uint8Array, p: number, len: number, x: unknown, path: string, ctype: string): void {
    const what = `Uint8Array or array of bytes, at most ${len}`;
    if (x instanceof Uint8Array) {
      if (x.length > len) throw fail(path, what, ctype, x);
      u8.set(x, p);
      return;
    }
    if (Array.isArray(x) && x.length <= len) {
      for (let i = 0; i < x.length; i++) {
        const b: unknown = x[i];
        if (typeof b !== 'number' || !Number.isInteger(b) || b < 0 || b > 255) {
          throw fail(`${path}[${i}]`, 'integer 0..255', ctype, b);
        }
        u8[p + i] = b;
      }
      return;
    }
    throw fail(path, what, ctype, x);
  },
  arr(x: unknown, len: number, path: string, ctype: string): readonly unknown[] {
    if (Array.isArray(x) && x.length <= len) return x;
    throw fail(path, `array of at most ${len} elements`, ctype, x);
  },
  obj(x: unknown, known: ReadonlySet<string>, path: string, ctype: string): void {
    if (typeof x !== 'object' || x === null || Array.isArray(x) || x instanceof Uint8Array) throw fail(path, 'object', ctype, x);
    for (const k of Object.keys(x)) {
      if (!known.has(k)) {
        throw new TypeError(`${path}: unknown field ${JSON.stringify(k)} for ${ctype} (fields: ${[...known].join(', ')})`);
      }
    }
  },
};
