// SPDX-License-Identifier: MIT
/**
 * TypeScript declarations for BTF types, derived from the same shapes the
 * codecs use so that `decoderFor<conn_event>(btf, 'conn_event')` is typed exactly.
 */
import type { Btf } from './parse';
import { enumIsBig, ShapePlanner, type FieldShape, type RecordShape, type Shape } from './shape';
import { isQualifier, skipRefs } from './refs';
import { BtfError, type BtfEnum, type BtfEnum64, type BtfType } from './types';

/** @example genTypes(btf, ['conn_event'], { header: '' }) */
export interface GenTypesOptions {
  /**
   * Also emit an interface per `.rodata*` / `.data*` / `.bss*` DATASEC, matching
   * `decoderFor(btf, '.rodata')`. Default: true when `names` is omitted.
   */
  datasecs?: boolean;
  /**
   * Without `names`: every named struct/union/enum of the BTF, not only the program's own
   * types (those of its maps' keys and values, its globals and its ring records).
   */
  all?: boolean;
  /** First-line comment; default names the generator. Pass '' for none. */
  header?: string;
}

// Words that cannot name an interface/enum/type alias, plus globals the output uses.
const RESERVED = new Set(
  (
    'any bigint boolean never number object string symbol undefined unknown void null ' +
    'break case catch class const continue debugger default delete do else enum export extends false finally for ' +
    'function if import in instanceof new return super switch this throw true try typeof var while with ' +
    'implements interface let package private protected public static yield await type of as ' +
    'Uint8Array Array Map ReadonlyMap BigInt Number String Boolean Object Symbol Record'
  ).split(' '),
);

/**
 * Generate TypeScript declarations for the named structs, unions, enums,
 * typedefs and DATASECs (names may be `'ev'`, `'struct ev'`, `'enum ev_kind'`,
 * `'.rodata'`), plus every named type they reference. Without `names`, the
 * program's own types: its maps' keys and values, its globals (one interface
 * per data section) and the records of its rings, with what they reference; not
 * the kernel structs it only reads (`all: true` emits every named type).
 *
 * Type names are PascalCase from the C names (`struct hit_event` → `HitEvent`);
 * fields keep their C names, as the decoders return them. Enums become a `const`
 * object plus a union type of its values (no TS `enum`, so the output works under
 * `erasableSyntaxOnly` and `isolatedModules`) and a `<Name>Names` map of value → name.
 *
 * @example
 * fs.writeFileSync('conn.ts', genTypes(Btf.fromFile('tcpscope.bpf.o')));
 * // export interface ConnEvent { ts_ns: bigint; pid: number; comm: string; ... }
 */
export function genTypes(btf: Btf, names?: readonly string[], options: GenTypesOptions = {}): string {
  return new TypeGen(btf).run(names, options);
}

/** `hit_event` → `HitEvent`, `.rodata` → `Rodata`, `in6_addr` → `In6Addr`. */
export function pascalCase(cName: string): string {
  const words = cName.split(/[^A-Za-z0-9]+/).filter(Boolean);
  const name = words.map((w) => w[0]!.toUpperCase() + w.slice(1)).join('');
  if (!name) return '_';
  return /^\d/.test(name) ? `_${name}` : name;
}

/** Sections of global variables: `.rodata*`, `.data*`, `.bss*`. */
export const DATA_SECTION = /^\.(rodata|data|bss)(\..*)?$/;

/**
 * The BTF-defined maps of an object (`SEC(".maps")`), read from the `.maps` DATASEC as
 * libbpf does: `type`, `key`/`value` (pointers to the types), `key_size`/`value_size`.
 */
export interface MapDefinition {
  readonly name: string;
  /** BPF_MAP_TYPE_* number, or undefined when not given. */
  readonly type: number | undefined;
  readonly keyType: number | undefined;
  readonly valueType: number | undefined;
  readonly keySize: number | undefined;
  readonly valueSize: number | undefined;
}

export function mapDefinitions(btf: Btf): MapDefinition[] {
  const sec = btf.datasecs().find((d) => d.name === '.maps');
  if (!sec) return [];
  return sec.vars.map((v) => {
    const def = btf.resolve(v.type);
    const field = (name: string): number | undefined => {
      if (def.kind !== 'struct') return undefined;
      const m = def.members.find((x) => x.name === name);
      return m === undefined ? undefined : m.type;
    };
    // __uint(name, N) is `int (*name)[N]`: the value is the array's length.
    const number = (name: string): number | undefined => {
      const id = field(name);
      if (id === undefined) return undefined;
      const p = btf.resolve(id);
      if (p.kind !== 'ptr') return undefined;
      const a = btf.resolve(p.type);
      return a.kind === 'array' ? a.nelems : undefined;
    };
    // __type(key, T) is `T *key`.
    const pointee = (name: string): number | undefined => {
      const id = field(name);
      if (id === undefined) return undefined;
      const p = btf.resolve(id);
      return p.kind === 'ptr' ? p.type : undefined;
    };
    return { name: v.name, type: number('type'), keyType: pointee('key'), valueType: pointee('value'), keySize: number('key_size'), valueSize: number('value_size') };
  });
}

/**
 * Record types declared for rings and perf buffers: `<map>_record_type`, a pointer global
 * (TCPSCOPE_RINGBUF, TCPSCOPE_PERFBUF, TCPSCOPE_RECORD_TYPE), map name → pointee type id.
 */
export function recordTypes(btf: Btf): Map<string, number> {
  const out = new Map<string, number>();
  for (const d of btf.datasecs()) {
    if (!DATA_SECTION.test(d.name)) continue;
    for (const v of d.vars) {
      if (!v.name.endsWith('_record_type')) continue;
      const p = btf.resolve(v.type);
      if (p.kind === 'ptr') out.set(v.name.slice(0, -'_record_type'.length), p.type);
    }
  }
  return out;
}

export class TypeGen {
  private readonly planner: ShapePlanner;
  private readonly tsNames = new Map<number, string>();
  private readonly used = new Set<string>();
  private readonly emitted = new Set<number>();
  private readonly queue: number[] = [];
  private readonly out: string[] = [];
  private anonTypedefs: Map<number, string> | undefined;

  constructor(private readonly btf: Btf) {
    this.planner = new ShapePlanner(btf);
  }

  run(names: readonly string[] | undefined, options: GenTypesOptions): string {
    const btf = this.btf;
    const header = options.header ?? '// Generated by tcpscope gen-types from BTF. Do not edit.';
    if (header) this.out.push(header, '');
    if (names) {
      for (const n of names) this.root(btf.lookup(n), true);
    } else if (!options.all) {
      this.ownTypes();
    } else {
      for (let id = 1; id < btf.typeCount; id++) {
        const k = btf.kindOf(id);
        if (k !== 'struct' && k !== 'union' && k !== 'enum' && k !== 'enum64' && k !== 'typedef') continue;
        const t = btf.type(id);
        if (t.kind === 'typedef') {
          // Only typedefs that give an anonymous struct/union/enum its name.
          if (this.anonTypedefName(this.stripQualifiers(t.type)) === t.name) this.root(t, false);
        } else if (t.name) {
          this.root(t, false);
        }
      }
    }
    if (options.datasecs ?? !names) {
      for (const d of btf.datasecs()) if (DATA_SECTION.test(d.name) && d.vars.length > 0) this.root(btf.type(d.id), !!names);
    }
    return this.finish();
  }

  /** Emits what was queued; the declarations so far as one text. */
  finish(): string {
    this.drain();
    return `${this.out.join('\n').trimEnd()}\n`;
  }

  /** Appends raw lines (after the types emitted so far). */
  push(...lines: string[]): void {
    this.drain();
    this.out.push(...lines);
  }

  /** A name no emitted declaration uses, based on `base` (for code written next to the types). */
  reserve(base: string): string {
    return this.allocate(base, 'value');
  }

  /** The TypeScript type of BTF type `id` as decoders return it, queueing the declarations it needs. */
  typeOf(id: number): string {
    return this.ts(this.planner.shapeOf(id));
  }

  /**
   * One interface for the variables of some data sections, without those `skip` names.
   * Returns its name, or undefined when no variable is left.
   */
  dataInterface(name: string, sections: readonly string[], skip: (variable: string) => boolean = () => false): string | undefined {
    const fields: FieldShape[] = [];
    for (const d of this.btf.datasecs()) {
      if (!sections.includes(d.name) || d.vars.length === 0) continue;
      const shape = this.planner.shapeOf(d.id) as RecordShape;
      for (const f of shape.fields) if (!skip(f.name)) fields.push(f);
    }
    if (fields.length === 0) return undefined;
    const tsName = this.allocate(name, 'interface');
    const body = this.fields({ k: 'record', union: false, size: 0, typeId: 0, ctype: '', fields }, '  ');
    this.drain();
    this.out.push(`/** globals in ${sections.join(', ')} */`, `export interface ${tsName} {`, body.trimEnd(), '}', '');
    return tsName;
  }

  /** The program's own types: map keys and values, globals, ring records. */
  private ownTypes(): void {
    for (const m of mapDefinitions(this.btf)) {
      for (const id of [m.keyType, m.valueType]) if (id !== undefined) this.ownRoot(id);
    }
    for (const id of recordTypes(this.btf).values()) this.ownRoot(id);
    for (const d of this.btf.datasecs()) {
      if (!DATA_SECTION.test(d.name)) continue;
      for (const v of d.vars) this.ownRoot(v.type);
    }
  }

  private ownRoot(id: number): void {
    try {
      this.typeOf(id);
    } catch (e) {
      this.out.push(`// skipped ${this.btf.typeName(id)}: ${(e as Error).message}`, '');
    }
  }

  private root(t: BtfType, explicit: boolean): void {
    switch (t.kind) {
      case 'struct':
      case 'union':
      case 'enum':
      case 'enum64':
      case 'datasec':
        if (!explicit) {
          try {
            if (t.kind !== 'enum' && t.kind !== 'enum64') this.planner.shapeOf(t.id);
          } catch (e) {
            this.out.push(`// skipped ${this.btf.typeName(t.id)}: ${(e as Error).message}`, '');
            return;
          }
        }
        this.need(t.id);
        return;
      case 'typedef': {
        const target = this.stripQualifiers(t.type);
        const tt = this.btf.type(target);
        if ((tt.kind === 'struct' || tt.kind === 'union' || tt.kind === 'enum' || tt.kind === 'enum64') && !tt.name) {
          this.need(target);
          return;
        }
        const shape = this.planner.shapeOf(t.id);
        const name = this.allocate(pascalCase(t.name), 'typedef');
        this.out.push(`/** typedef ${this.btf.typeName(t.type)} ${t.name} */`, `export type ${name} = ${this.ts(shape)};`, '');
        return;
      }
      default:
        throw new BtfError(`gen-types: ${this.btf.typeName(t.id)} (${t.kind}) is not a data type`);
    }
  }

  private need(id: number): string {
    let name = this.tsNames.get(id);
    if (name === undefined) {
      const t = this.btf.type(id);
      const base = t.kind === 'datasec' ? t.name : t.name || this.anonTypedefName(id) || `anon_${id}`;
      name = this.allocate(pascalCase(base), t.kind);
      this.tsNames.set(id, name);
    }
    if (!this.emitted.has(id)) {
      this.emitted.add(id);
      this.queue.push(id);
    }
    return name;
  }

  private drain(): void {
    for (let id = this.queue.shift(); id !== undefined; id = this.queue.shift()) {
      const t = this.btf.type(id);
      if (t.kind === 'enum' || t.kind === 'enum64') this.emitEnum(t);
      else this.emitRecord(this.planner.shapeOf(id) as RecordShape);
    }
  }

  private allocate(base: string, kind: string): string {
    let name = /^[A-Za-z_$][\w$]*$/.test(base) ? base : base.replace(/[^\w$]/g, '_').replace(/^(\d)/, '_$1');
    if (RESERVED.has(name)) name = `${name}_`;
    if (this.used.has(name)) {
      // C keeps struct, union, enum and typedef names in separate namespaces; TS does not.
      const suffix = pascalCase(kind);
      let alt = `${name}${suffix}`;
      for (let i = 2; this.used.has(alt); i++) alt = `${name}${suffix}${i}`;
      name = alt;
    }
    this.used.add(name);
    // An enum also declares `<Name>Names`.
    if (kind === 'enum' || kind === 'enum64') this.used.add(`${name}Names`);
    return name;
  }

  private stripQualifiers(id: number): number {
    return skipRefs((i) => this.btf.type(i), this.btf.type(id), isQualifier, 64).id;
  }

  /** Name of a typedef that names the anonymous struct/union/enum `id`, if any. */
  private anonTypedefName(id: number): string | undefined {
    if (!this.anonTypedefs) {
      this.anonTypedefs = new Map();
      for (let i = 1; i < this.btf.typeCount; i++) {
        if (this.btf.kindOf(i) !== 'typedef') continue;
        const td = this.btf.type(i);
        if (td.kind !== 'typedef') continue;
        const target = this.btf.type(this.stripQualifiers(td.type));
        if (target.name === '' && (target.kind === 'struct' || target.kind === 'union' || target.kind === 'enum' || target.kind === 'enum64')) {
          if (!this.anonTypedefs.has(target.id)) this.anonTypedefs.set(target.id, td.name);
        }
      }
    }
    return this.anonTypedefs.get(id);
  }

  private ts(s: Shape, indent = ''): string {
    switch (s.k) {
      case 'int':
      case 'float':
        return 'number';
      case 'bigint':
      case 'ptr':
        return 'bigint';
      case 'bool':
        return 'boolean';
      case 'string':
        return 'string';
      case 'bytes':
        return 'Uint8Array';
      case 'enum': {
        const t = this.btf.type(s.enumId);
        if (t.name || this.anonTypedefName(t.id)) return this.need(t.id);
        return enumIsBig(s) ? 'bigint' : 'number';
      }
      case 'array': {
        const e = this.ts(s.elem, indent);
        return /^[\w$]+$/.test(e) || e.endsWith(']') ? `${e}[]` : `Array<${e}>`;
      }
      case 'record': {
        const t = this.btf.type(s.typeId);
        if (t.name || this.anonTypedefName(t.id)) return this.need(t.id);
        return `{\n${this.fields(s, `${indent}  `)}${indent}}`;
      }
    }
  }

  private fields(s: RecordShape, indent: string): string {
    let body = '';
    for (const f of s.fields) {
      const where = f.bit ? `${f.shape.ctype}:${f.bit.bits}, byte ${f.offset} bit ${f.bit.shift}` : `${f.shape.ctype}, offset ${f.offset}`;
      body += `${indent}/** ${where.replace(/\*\//g, '*\\/')} */\n`;
      body += `${indent}${propName(f.name)}: ${this.ts(f.shape, indent)};\n`;
    }
    return body;
  }

  private emitRecord(s: RecordShape): void {
    const name = this.tsNames.get(s.typeId)!;
    const what = s.ctype.startsWith('.') ? `section ${s.ctype}` : s.ctype;
    this.out.push(`/** ${what} (${s.size} bytes) */`, `export interface ${name} {`);
    this.out.push(this.fields(s, '  ').trimEnd(), '}', '');
  }

  private emitEnum(t: BtfEnum | BtfEnum64): void {
    const name = this.tsNames.get(t.id)!;
    const big = t.size === 8;
    const lit = (v: bigint): string => (big ? `${v}n` : v < 0n ? `-${-v}` : `${v}`);
    const vals = t.values.map((v) => [v.name, asDecoded(BigInt(v.value), t.size, t.signed)] as const);
    this.out.push(`/** enum ${t.name || name} (${t.size} bytes)${big ? '; values are bigint' : ''} */`, `export const ${name} = {`);
    for (const [n, v] of vals) this.out.push(`  ${propName(n)}: ${lit(v)},`);
    this.out.push('} as const;');
    // Empty enums (forward-declared in BTF) have no values to union.
    this.out.push(`export type ${name} = ${vals.length ? `(typeof ${name})[keyof typeof ${name}]` : big ? 'bigint' : 'number'};`);
    const key = big ? 'bigint' : 'number';
    this.out.push(`/** enum ${t.name || name}: value → enumerator name (the first, where several share a value) */`);
    this.out.push(`export const ${name}Names: ReadonlyMap<${key}, string> = new Map<${key}, string>([`);
    const seen = new Set<bigint>();
    for (const [n, v] of vals) {
      if (seen.has(v)) continue;
      seen.add(v);
      this.out.push(`  [${lit(v)}, ${JSON.stringify(n)}],`);
    }
    this.out.push(']);', '');
  }
}

function propName(name: string): string {
  return /^[A-Za-z_$][\w$]*$/.test(name) ? name : JSON.stringify(name);
}

// The value a decoder reads back for this enumerator: BTF stores ENUM values as
// 32 bits, but a 1- or 2-byte enum in memory holds only its low bytes.
function asDecoded(v: bigint, size: number, signed: boolean): bigint {
  const bits = size * 8;
  return signed ? BigInt.asIntN(bits, v) : BigInt.asUintN(bits, v);
}
