// SPDX-License-Identifier: MIT
import * as fs from 'node:fs';
import { elfSectionData, isElf, readElfSections, readElfSymbols } from './elf';
import {
  BTF_KIND_NAMES,
  BtfError,
  type BtfComposite,
  type BtfDatasec,
  type BtfDatasecInfo,
  type BtfDatasecVar,
  type BtfEnum,
  type BtfEnum64,
  type BtfKind,
  type BtfLinkage,
  type BtfMember,
  type BtfType,
  type BtfTypeOfKind,
} from './types';
import { isRef, skipRefs } from './refs';
import { BtfChecker } from './validate';

/**
 * A type given by id, by name (optionally `struct x` / `union x` / `enum x`), or as a type object.
 *
 * @example
 * btf.sizeof(42); btf.sizeof('ev'); btf.sizeof('struct ev'); btf.sizeof(btf.find('ev')!);
 */
export type BtfTypeRef = number | string | BtfType;

const MAGIC = 0xeb9f;
const KERNEL_BTF_PATH = '/sys/kernel/btf/vmlinux';

// Size of the kind-specific data that follows the 12-byte btf_type header:
// a fixed part plus vlen * a per-entry size. Index = BTF_KIND_* number.
const EXTRA_FIXED = new Int32Array([-1, 4, 0, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 4, 0, 0]);
const EXTRA_PER_VLEN = new Int32Array([0, 0, 0, 0, 12, 12, 8, 0, 0, 0, 0, 0, 0, 8, 0, 12, 0, 0, 0, 12]);

const K_INT = 1,
  K_PTR = 2,
  K_ARRAY = 3,
  K_STRUCT = 4,
  K_UNION = 5,
  K_ENUM = 6,
  K_FWD = 7,
  K_TYPEDEF = 8,
  K_VOLATILE = 9,
  K_CONST = 10,
  K_RESTRICT = 11,
  K_FUNC = 12,
  K_FUNC_PROTO = 13,
  K_VAR = 14,
  K_DATASEC = 15,
  K_FLOAT = 16,
  K_DECL_TAG = 17,
  K_TYPE_TAG = 18,
  K_ENUM64 = 19;

const LINKAGE: readonly BtfLinkage[] = ['static', 'global', 'extern'];

// When a name is ambiguous and no kind was asked for, prefer full type
// definitions over forward declarations and over functions/variables.
const FIND_RANK: Readonly<Record<BtfKind, number>> = {
  struct: 0,
  union: 0,
  enum: 0,
  enum64: 0,
  typedef: 1,
  int: 1,
  float: 1,
  fwd: 2,
  func: 3,
  var: 3,
  datasec: 3,
  func_proto: 4,
  decl_tag: 5,
  ptr: 4,
  array: 4,
  volatile: 4,
  const: 4,
  restrict: 4,
  type_tag: 4,
  void: 6,
};

const TYPE_NAME_DEPTH = 32;

const VOID: BtfType = Object.freeze({ id: 0, kind: 'void', name: '' });

// Name lookups served by scanning before the name index is built.
const SCAN_LOOKUPS = 16;

let kernelCache: Btf | undefined;
const moduleCache = new Map<string, Btf>();

/** @example Btf.fromElf(obj, { fixupDatasec: false }) // raw clang output */
export interface BtfFromElfOptions {
  /**
   * Fill in DATASEC sizes and variable offsets from the ELF section headers and
   * symbol table, as libbpf does at load time (clang leaves them 0). Default true.
   */
  fixupDatasec?: boolean;
}

/**
 * Parsed BTF. Construction only indexes where each type starts; type objects
 * and the name index are built on first use, which keeps parsing the ~5 MB
 * vmlinux BTF in the low milliseconds.
 */
export class Btf {
  /** The BTF bytes this object reads from (not copied: do not mutate). */
  readonly raw: Uint8Array;
  /** Base BTF for split BTF (kernel module BTF), else undefined. */
  readonly base: Btf | undefined;
  /** First type id stored in this blob (1, or base.typeCount for split BTF). */
  readonly startId: number;
  /** One past the highest valid type id. */
  readonly typeCount: number;

  private readonly dv: DataView;
  private readonly bytes: Buffer;
  private readonly offsets: Uint32Array;
  private readonly strStart: number;
  private readonly strEnd: number;
  private readonly strBase: number;
  private readonly cache: (BtfType | undefined)[];
  private nameIndex: Map<string, number | number[]> | undefined;
  private ptrSize = 0;
  private lookups = 0;
  private checker: BtfChecker | undefined;

  private constructor(raw: Uint8Array, base: Btf | undefined) {
    this.raw = raw;
    this.base = base;
    this.dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    this.bytes = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
    const dv = this.dv;
    if (raw.length < 24) throw new BtfError(`BTF too short (${raw.length} bytes)`);
    const magic = dv.getUint16(0, true);
    if (magic !== MAGIC) {
      if (magic === 0x9feb) throw new BtfError('big-endian BTF is not supported');
      throw new BtfError(`bad BTF magic 0x${magic.toString(16)} (expected 0xeb9f)`);
    }
    const version = raw[2];
    if (version !== 1) throw new BtfError(`unsupported BTF version ${version}`);
    const hdrLen = dv.getUint32(4, true);
    const typeOff = dv.getUint32(8, true);
    const typeLen = dv.getUint32(12, true);
    const strOff = dv.getUint32(16, true);
    const strLen = dv.getUint32(20, true);
    const typeStart = hdrLen + typeOff;
    const typeEnd = typeStart + typeLen;
    this.strStart = hdrLen + strOff;
    this.strEnd = this.strStart + strLen;
    if (hdrLen < 24 || typeEnd > raw.length || this.strEnd > raw.length) {
      throw new BtfError(
        `BTF header out of bounds (hdr_len=${hdrLen} type ${typeOff}+${typeLen} str ${strOff}+${strLen}, ${raw.length} bytes)`,
      );
    }
    if (strLen > 0 && raw[this.strEnd - 1] !== 0) throw new BtfError('BTF string section is not NUL-terminated');
    this.strBase = base ? base.strBase + (base.strEnd - base.strStart) : 0;
    this.startId = base ? base.typeCount : 1;

    // Every type is at least 12 bytes, so this bounds the count.
    const offsets = new Uint32Array(Math.floor(typeLen / 12) + 1);
    let n = 0;
    let off = typeStart;
    while (off < typeEnd) {
      if (off + 12 > typeEnd) throw new BtfError(`truncated BTF type at byte ${off}`);
      offsets[n++] = off;
      const info = dv.getUint32(off + 4, true);
      const kind = (info >>> 24) & 0x1f;
      const fixed = kind < EXTRA_FIXED.length ? EXTRA_FIXED[kind]! : -1;
      if (fixed < 0) throw new BtfError(`unknown BTF kind ${kind} at type id ${this.startId + n - 1}`);
      off += 12 + fixed + (info & 0xffff) * EXTRA_PER_VLEN[kind]!;
    }
    if (off !== typeEnd) throw new BtfError(`BTF type section overruns its length (${off} vs ${typeEnd})`);
    this.offsets = offsets.subarray(0, n);
    this.typeCount = this.startId + n;
    this.cache = new Array<BtfType | undefined>(n);
  }

  /**
   * Parse raw little-endian BTF (as from btf__raw_data, a `.BTF` ELF section or
   * /sys/kernel/btf/*). Pass `base` for split BTF such as kernel module BTF.
   *
   * @example
   * const btf = Btf.parse(readElfSection(fs.readFileSync('prog.bpf.o'), '.BTF')!);
   * btf.sizeof('conn_event'); // 48
   */
  static parse(raw: Uint8Array, base?: Btf): Btf {
    return new Btf(raw, base);
  }

  /**
   * The running kernel's BTF (/sys/kernel/btf/vmlinux), parsed once and cached.
   * Pass `path` to read it from elsewhere (e.g. a host /sys mounted into a
   * container); such loads are not cached.
   *
   * @example
   * Btf.kernel().enumValues('skb_drop_reason').get(3n); // 'SKB_DROP_REASON_NO_SOCKET' on 6.x
   */
  static kernel(path?: string): Btf {
    if (path !== undefined && path !== KERNEL_BTF_PATH) return Btf.parse(readKernelBtf(path));
    if (!kernelCache) kernelCache = Btf.parse(readKernelBtf(KERNEL_BTF_PATH));
    return kernelCache;
  }

  /**
   * A loaded kernel module's BTF (/sys/kernel/btf/<name>), split on top of {@link Btf.kernel}.
   *
   * @example
   * Btf.kernelModule('nf_conntrack').find('nf_conn', 'struct');
   */
  static kernelModule(name: string): Btf {
    let btf = moduleCache.get(name);
    if (!btf) {
      if (name.includes('/')) throw new BtfError(`bad module name ${JSON.stringify(name)}`);
      btf = Btf.parse(readKernelBtf(`/sys/kernel/btf/${name}`), Btf.kernel());
      moduleCache.set(name, btf);
    }
    return btf;
  }

  /**
   * BTF of a BPF object file (its `.BTF` section). By default DATASEC sizes and
   * variable offsets are filled in from the ELF headers and symbols, because clang
   * emits them as 0 and only libbpf fixes them up at open time.
   *
   * @example
   * const btf = Btf.fromElf(fs.readFileSync('prog.bpf.o'));
   * btf.datasec('.rodata').vars; // [{ name: 'target_pid', offset: 0, size: 4, ... }]
   */
  static fromElf(elf: Uint8Array, options: BtfFromElfOptions = {}): Btf {
    const sections = readElfSections(elf);
    const sec = sections.find((s) => s.name === '.BTF');
    if (!sec) throw new BtfError('ELF file has no .BTF section (was it compiled with -g?)');
    let raw = elfSectionData(elf, sec);
    if (options.fixupDatasec !== false) {
      const plain = Btf.parse(raw);
      const patches = plain.datasecPatches(sections, () => readElfSymbols(elf, sections));
      if (patches.length > 0) {
        raw = Uint8Array.from(raw);
        const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
        for (const [at, value] of patches) dv.setUint32(at, value, true);
      }
    }
    return Btf.parse(raw);
  }

  /**
   * Load BTF from a file: an ELF object (via {@link Btf.fromElf}) or raw BTF.
   *
   * @example
   * Btf.fromFile('build/tcpscope.bpf.o').find('conn_event');
   */
  static fromFile(path: string, base?: Btf): Btf {
    let buf: Buffer;
    try {
      buf = fs.readFileSync(path);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : code === 'EACCES' ? 'permission denied' : (e as Error).message;
      throw new BtfError(`cannot read BTF from ${path}: ${why}; give a BPF object (.bpf.o) or a raw BTF file`, { cause: e });
    }
    if (isElf(buf)) {
      if (base) throw new BtfError('split BTF from an ELF file is not supported');
      return Btf.fromElf(buf);
    }
    return Btf.parse(buf, base);
  }

  /**
   * Total string-section bytes, base included (where a split BTF's own string offsets start).
   *
   * @example
   * new BtfBuilder(Btf.kernel()); // uses typeCount and stringsLength
   */
  get stringsLength(): number {
    return this.strBase + (this.strEnd - this.strStart);
  }

  /** Number of types stored in this blob itself (excluding base and void). @example Btf.kernel().localTypeCount */
  get localTypeCount(): number {
    return this.offsets.length;
  }

  /** String at `offset` in the (base + local) string section. @example btf.str(1) */
  str(offset: number): string {
    if (offset < this.strBase) {
      if (!this.base) throw new BtfError(`string offset ${offset} out of range`);
      return this.base.str(offset);
    }
    const start = this.strStart + offset - this.strBase;
    if (start >= this.strEnd) throw new BtfError(`string offset ${offset} out of range`);
    const end = this.bytes.indexOf(0, start);
    return this.bytes.toString('utf8', start, end);
  }

  /**
   * The type with the given id (0 is void). Throws on an invalid id.
   *
   * @example
   * const t = btf.type(42); if (t.kind === 'struct') t.members.map((m) => m.name);
   */
  type(id: number): BtfType {
    if (id === 0) return VOID;
    if (id < this.startId) {
      if (this.base && id > 0) return this.base.type(id);
      throw new BtfError(`invalid BTF type id ${id}`);
    }
    const idx = id - this.startId;
    if (!(idx < this.offsets.length) || !Number.isInteger(id)) throw new BtfError(`invalid BTF type id ${id}`);
    let t = this.cache[idx];
    if (!t) {
      t = Object.freeze(this.decodeType(id, this.offsets[idx]!));
      this.cache[idx] = t;
    }
    return t;
  }

  /**
   * Iterate every type (base types first for split BTF), excluding void.
   *
   * @example
   * for (const t of btf.types()) if (t.kind === 'struct' && t.name) console.log(t.name);
   */
  *types(): IterableIterator<BtfType> {
    for (let id = 1; id < this.typeCount; id++) yield this.type(id);
  }

  /**
   * Kind of a type id without building its type object (cheap for scans).
   *
   * @example
   * let structs = 0; for (let id = 1; id < btf.typeCount; id++) if (btf.kindOf(id) === 'struct') structs++;
   */
  kindOf(id: number): BtfKind {
    if (id === 0) return 'void';
    if (id < this.startId && this.base) return this.base.kindOf(id);
    const off = this.offsets[id - this.startId];
    if (off === undefined) throw new BtfError(`invalid BTF type id ${id}`);
    return BTF_KIND_NAMES[(this.dv.getUint32(off + 4, true) >>> 24) & 0x1f]!;
  }

  /**
   * All types named `name` (optionally of one kind), in id order.
   *
   * @example
   * btf.findAll('sock').map((t) => t.kind); // e.g. ['struct', 'fwd'] in a module's BTF
   */
  findAll<K extends BtfKind>(name: string, kind?: K): BtfTypeOfKind<K>[] {
    const out: BtfType[] = this.base ? this.base.findAll(name, kind) : [];
    for (const id of this.idsNamed(name)) {
      if (kind === undefined || this.kindOf(id) === kind) out.push(this.type(id));
    }
    return out as BtfTypeOfKind<K>[];
  }

  /**
   * The type named `name`. Without `kind`, full definitions (struct, union,
   * enum, typedef, int) win over forward declarations, functions and variables.
   *
   * @example
   * btf.find('tcp_sock', 'struct')?.size;
   * btf.find('sk_rst_reason'); // the enum, or undefined on older kernels
   */
  find<K extends BtfKind>(name: string, kind?: K): BtfTypeOfKind<K> | undefined {
    const all = this.findAll(name, kind);
    if (kind !== undefined || all.length <= 1) return all[0];
    let best = all[0]!;
    for (const t of all) if (FIND_RANK[t.kind] < FIND_RANK[best.kind]) best = t;
    return best as BtfTypeOfKind<K>;
  }

  /**
   * Look up a type by id, name (`'ev'`, `'struct ev'`, `'enum tcp_state'`) or
   * object; throws a BtfError naming the type when it does not exist.
   *
   * @example
   * btf.lookup('struct sock').id;
   */
  lookup(ref: BtfTypeRef): BtfType {
    if (typeof ref === 'number') {
      this.checkType(ref);
      return this.type(ref);
    }
    if (typeof ref !== 'string') {
      this.checkType(ref.id);
      return ref;
    }
    const m = /^\s*(struct|union|enum)\s+(\S+)\s*$/.exec(ref);
    let t: BtfType | undefined;
    if (m) {
      const name = m[2]!;
      t = m[1] === 'enum' ? (this.find(name, 'enum') ?? this.find(name, 'enum64')) : this.find(name, m[1] as 'struct' | 'union');
    } else {
      t = this.find(ref.trim());
    }
    if (!t) throw new BtfError(`BTF type ${JSON.stringify(ref)} not found`);
    this.checkType(t.id);
    return t;
  }

  /**
   * Checks the whole blob: ids in range, sizes consistent, no type containing itself,
   * bounded nesting. Throws a BtfError naming the first bad type. Lookups check the
   * types they reach on their own; this is for BTF about to be handed to libbpf.
   *
   * @example
   * Btf.parse(untrusted).validate();
   */
  validate(): this {
    this.checkerFor().checkAll();
    return this;
  }

  /** @internal Checks one type and what it contains (see {@link Btf.validate}). */
  checkType(id: number): void {
    this.checkerFor().check(id);
  }

  /** @internal Size of a checked type, -1 when it has none. */
  checkedSize(id: number): number {
    return this.checkerFor().size(id);
  }

  private checkerFor(): BtfChecker {
    return (this.checker ??= new BtfChecker(this));
  }

  /**
   * Strip typedef, const, volatile, restrict and type_tag.
   *
   * @example
   * btf.resolve('__u32'); // { kind: 'int', name: 'unsigned int', size: 4, ... }
   */
  resolve(ref: BtfTypeRef): BtfType {
    const t = skipRefs((id) => this.type(id), this.lookup(ref), isRef, 65);
    if (isRef(t)) throw new BtfError(`type modifier loop at id ${t.id}`);
    return t;
  }

  /**
   * Size in bytes of a type (as C sizeof). Throws for void, functions and forward declarations.
   *
   * @example
   * btf.sizeof('struct sock_common');
   */
  sizeof(ref: BtfTypeRef): number {
    const t = this.resolve(ref);
    switch (t.kind) {
      case 'int':
      case 'struct':
      case 'union':
      case 'enum':
      case 'enum64':
      case 'float':
        return t.size;
      case 'datasec':
        return this.checkedSize(t.id);
      case 'ptr':
        return this.pointerSize();
      case 'array':
        return t.nelems * this.sizeof(t.type);
      case 'var':
        return this.sizeof(t.type);
      default:
        throw new BtfError(`sizeof: ${this.typeName(t.id)} (${t.kind}) has no size`);
    }
  }

  /**
   * Enum value → enumerator name (for an `enum` or `enum64` by name or id).
   * Values are bigints with the enum's signedness applied; for aliased values the first name wins.
   *
   * @example
   * const reasons = Btf.kernel().enumValues('skb_drop_reason');
   * reasons.get(BigInt(reasonFromEvent)); // 'SKB_DROP_REASON_NO_SOCKET'
   */
  enumValues(ref: BtfTypeRef): Map<bigint, string> {
    const out = new Map<bigint, string>();
    for (const v of this.enumType(ref).values) {
      const k = BigInt(v.value);
      if (!out.has(k)) out.set(k, v.name);
    }
    return out;
  }

  /**
   * Enumerator name → value (the reverse of {@link Btf.enumValues}).
   *
   * @example
   * Btf.kernel().enumByName('skb_drop_reason').get('SKB_DROP_REASON_NO_SOCKET'); // e.g. 3n
   */
  enumByName(ref: BtfTypeRef): Map<string, bigint> {
    const out = new Map<string, bigint>();
    for (const v of this.enumType(ref).values) out.set(v.name, BigInt(v.value));
    return out;
  }

  /**
   * Variables of a data section (`.rodata`, `.bss`, `.data`, `.maps`, `.kconfig`, ...).
   * In an unlinked .o parsed with {@link Btf.parse}, clang leaves size and offsets
   * at 0; {@link Btf.fromElf} fills them in like libbpf does.
   *
   * @example
   * for (const v of btf.datasec('.rodata').vars) console.log(v.name, v.offset, v.size);
   */
  datasec(name: string): BtfDatasecInfo {
    const sec = this.find(name, 'datasec');
    if (!sec) {
      const have = this.findAllOfKind('datasec').map((d) => d.name);
      throw new BtfError(`DATASEC ${JSON.stringify(name)} not found (have: ${have.join(', ') || 'none'})`);
    }
    return this.datasecInfo(sec);
  }

  /** All DATASECs with their variables. @example btf.datasecs().map((d) => d.name); // ['.bss', '.rodata', ...] */
  datasecs(): BtfDatasecInfo[] {
    return this.findAllOfKind('datasec').map((d) => this.datasecInfo(d));
  }

  /**
   * C-like spelling of a type for messages: `u16`, `struct ev`, `char[16]`, `const __u32`, `void *`.
   *
   * @example
   * btf.typeName(btf.find('ev', 'struct')!.members[5]!.type); // '__u8[16]'
   */
  typeName(ref: BtfTypeRef): string {
    return this.typeNameAt(ref, 0);
  }

  // Pointers and prototypes may form cycles through each other; names stop at a depth.
  private typeNameAt(ref: BtfTypeRef, depth: number): string {
    const t = this.lookup(ref);
    if (depth > TYPE_NAME_DEPTH) return '...';
    const typeName = (id: number): string => this.typeNameAt(id, depth + 1);
    switch (t.kind) {
      case 'void':
        return 'void';
      case 'struct':
      case 'union':
        return `${t.kind} ${t.name || '(anon)'}`;
      case 'enum':
      case 'enum64':
        return `enum ${t.name || '(anon)'}`;
      case 'fwd':
        return `${t.fwdKind} ${t.name}`;
      case 'ptr':
        return `${typeName(t.type)} *`;
      case 'array': {
        let dims = '';
        let e: BtfType = t;
        while (e.kind === 'array') {
          dims += `[${e.nelems}]`;
          e = this.type(e.type);
        }
        return `${typeName(e.id)}${dims}`;
      }
      case 'const':
      case 'volatile':
      case 'restrict':
        return `${t.kind} ${typeName(t.type)}`;
      case 'type_tag':
        return typeName(t.type);
      case 'func_proto':
        return `${typeName(t.returnType)} (${t.params.map((p) => (p.type === 0 ? '...' : typeName(p.type))).join(', ')})`;
      default:
        return t.name;
    }
  }

  private enumType(ref: BtfTypeRef): BtfEnum | BtfEnum64 {
    let t: BtfType | undefined;
    if (typeof ref === 'string' && !/\s/.test(ref.trim())) {
      // Enum tags live in their own C namespace, so look for the enum before
      // any same-named struct or typedef.
      t = this.find(ref.trim(), 'enum') ?? this.find(ref.trim(), 'enum64');
    }
    const r = this.resolve(t ?? ref);
    if (r.kind !== 'enum' && r.kind !== 'enum64') throw new BtfError(`${this.typeName(r.id)} is not an enum`);
    return r;
  }

  private findAllOfKind<K extends BtfKind>(kind: K): BtfTypeOfKind<K>[] {
    const out: BtfTypeOfKind<K>[] = [];
    for (let id = 1; id < this.typeCount; id++) if (this.kindOf(id) === kind) out.push(this.type(id) as BtfTypeOfKind<K>);
    return out;
  }

  private datasecInfo(sec: BtfDatasec): BtfDatasecInfo {
    const vars: BtfDatasecVar[] = sec.vars.map((si) => {
      const v = this.type(si.type);
      if (v.kind === 'var') return { name: v.name, offset: si.offset, size: si.size, type: v.type, varId: v.id, linkage: v.linkage };
      if (v.kind === 'func') return { name: v.name, offset: si.offset, size: si.size, type: v.type, varId: v.id, linkage: v.linkage };
      throw new BtfError(`DATASEC ${sec.name} entry refers to ${v.kind} ${v.id}`);
    });
    // libbpf's linker also orders a section's variables by offset.
    vars.sort((x, y) => x.offset - y.offset);
    return { name: sec.name, id: sec.id, size: sec.size, vars };
  }

  /** @internal Bytes of a pointer in this BTF. */
  pointerWidth(): number {
    return this.pointerSize();
  }

  private pointerSize(): number {
    // BTF has no pointer-size field; libbpf guesses from 'long', and so do we.
    if (this.ptrSize === 0) {
      const long = this.find('long', 'int') ?? this.find('long int', 'int') ?? this.find('unsigned long', 'int');
      this.ptrSize = long?.size ?? 8;
    }
    return this.ptrSize;
  }

  /** Local ids of types named `name`, ascending. */
  private idsNamed(name: string): readonly number[] {
    if (name === '') return [];
    if (!this.nameIndex && ++this.lookups > SCAN_LOOKUPS) this.nameIndex = this.buildIndex();
    if (!this.nameIndex) return this.scanNamed(name);
    const hit = this.nameIndex.get(name);
    return hit === undefined ? [] : typeof hit === 'number' ? [hit] : hit;
  }

  // A one-off lookup costs ~1 ms as a memmem over the string section plus a
  // pass over the type headers, against ~50 ms to build the full index; most
  // users (enum lookups, one codec) never need the index at all.
  private scanNamed(name: string): number[] {
    const needle = Buffer.from(`\0${name}\0`, 'utf8');
    const strs = this.bytes.subarray(this.strStart, this.strEnd);
    const want: number[] = [];
    if (strs.subarray(0, needle.length - 1).equals(needle.subarray(1))) want.push(this.strBase);
    for (let i = strs.indexOf(needle); i >= 0; i = strs.indexOf(needle, i + 1)) want.push(this.strBase + i + 1);
    if (want.length === 0) return [];
    const { dv, offsets, startId } = this;
    const out: number[] = [];
    const first = want[0]!;
    for (let i = 0; i < offsets.length; i++) {
      const nameOff = dv.getUint32(offsets[i]!, true);
      if (nameOff === first || (want.length > 1 && want.includes(nameOff))) out.push(startId + i);
    }
    return out;
  }

  private buildIndex(): Map<string, number | number[]> {
    const idx = new Map<string, number | number[]>();
    const { dv, offsets, startId } = this;
    for (let i = 0; i < offsets.length; i++) {
      const nameOff = dv.getUint32(offsets[i]!, true);
      if (nameOff === 0) continue;
      const name = this.str(nameOff);
      const id = startId + i;
      const prev = idx.get(name);
      if (prev === undefined) idx.set(name, id);
      else if (typeof prev === 'number') idx.set(name, [prev, id]);
      else prev.push(id);
    }
    return idx;
  }

  /** [byte offset in raw, new value] pairs that apply libbpf's DATASEC fixup. */
  private datasecPatches(
    sections: ReturnType<typeof readElfSections>,
    symbols: () => ReturnType<typeof readElfSymbols>,
  ): [number, number][] {
    const patches: [number, number][] = [];
    let syms: ReturnType<typeof readElfSymbols> | undefined;
    for (let id = this.startId; id < this.typeCount; id++) {
      if (this.kindOf(id) !== 'datasec') continue;
      const sec = this.type(id) as BtfDatasec;
      const elfSec = sections.find((s) => s.name === sec.name);
      if (!elfSec) continue; // .kconfig / .ksyms are virtual; libbpf sizes them itself
      const off = this.offsets[id - this.startId]!;
      if (sec.size === 0 && elfSec.size !== 0) patches.push([off + 8, elfSec.size]);
      syms ??= symbols();
      sec.vars.forEach((si, i) => {
        const v = this.type(si.type);
        const sym = syms!.find((s) => s.name === v.name && s.shndx === elfSec.index && (s.type === 1 || s.type === 0));
        if (sym && sym.value !== si.offset) patches.push([off + 12 + 12 * i + 4, sym.value]);
      });
    }
    return patches;
  }

  private decodeType(id: number, off: number): BtfType {
    const dv = this.dv;
    const nameOff = dv.getUint32(off, true);
    const info = dv.getUint32(off + 4, true);
    const sizeOrType = dv.getUint32(off + 8, true);
    const kind = (info >>> 24) & 0x1f;
    const vlen = info & 0xffff;
    const kflag = info >>> 31 === 1;
    const name = nameOff === 0 ? '' : this.str(nameOff);
    const p = off + 12;
    switch (kind) {
      case K_INT: {
        const enc = dv.getUint32(p, true);
        const e = (enc >>> 24) & 0x0f;
        return {
          id,
          kind: 'int',
          name,
          size: sizeOrType,
          bits: enc & 0xff,
          bitOffset: (enc >>> 16) & 0xff,
          signed: (e & 1) !== 0,
          char: (e & 2) !== 0,
          bool: (e & 4) !== 0,
        };
      }
      case K_PTR:
        return { id, kind: 'ptr', name, type: sizeOrType };
      case K_ARRAY:
        return {
          id,
          kind: 'array',
          name,
          type: dv.getUint32(p, true),
          indexType: dv.getUint32(p + 4, true),
          nelems: dv.getUint32(p + 8, true),
        };
      case K_STRUCT:
      case K_UNION: {
        const members: BtfMember[] = new Array<BtfMember>(vlen);
        for (let i = 0; i < vlen; i++) {
          const m = p + i * 12;
          const mOff = dv.getUint32(m + 8, true);
          const mName = dv.getUint32(m, true);
          members[i] = Object.freeze({
            name: mName === 0 ? '' : this.str(mName),
            type: dv.getUint32(m + 4, true),
            bitOffset: kflag ? mOff & 0xffffff : mOff,
            bitfieldSize: kflag ? mOff >>> 24 : 0,
          });
        }
        const t: BtfComposite = { id, kind: kind === K_STRUCT ? 'struct' : 'union', name, size: sizeOrType, members };
        return t;
      }
      case K_ENUM: {
        const values = new Array<{ name: string; value: number }>(vlen);
        for (let i = 0; i < vlen; i++) {
          const e = p + i * 8;
          values[i] = Object.freeze({
            name: this.str(dv.getUint32(e, true)),
            value: kflag ? dv.getInt32(e + 4, true) : dv.getUint32(e + 4, true),
          });
        }
        return { id, kind: 'enum', name, size: sizeOrType, signed: kflag, values };
      }
      case K_ENUM64: {
        const values = new Array<{ name: string; value: bigint }>(vlen);
        for (let i = 0; i < vlen; i++) {
          const e = p + i * 12;
          const u = (BigInt(dv.getUint32(e + 8, true)) << 32n) | BigInt(dv.getUint32(e + 4, true));
          values[i] = Object.freeze({ name: this.str(dv.getUint32(e, true)), value: kflag ? BigInt.asIntN(64, u) : u });
        }
        return { id, kind: 'enum64', name, size: sizeOrType, signed: kflag, values };
      }
      case K_FWD:
        return { id, kind: 'fwd', name, fwdKind: kflag ? 'union' : 'struct' };
      case K_TYPEDEF:
        return { id, kind: 'typedef', name, type: sizeOrType };
      case K_VOLATILE:
        return { id, kind: 'volatile', name, type: sizeOrType };
      case K_CONST:
        return { id, kind: 'const', name, type: sizeOrType };
      case K_RESTRICT:
        return { id, kind: 'restrict', name, type: sizeOrType };
      case K_TYPE_TAG:
        return { id, kind: 'type_tag', name, type: sizeOrType };
      case K_FUNC:
        return { id, kind: 'func', name, type: sizeOrType, linkage: LINKAGE[vlen] ?? 'static' };
      case K_FUNC_PROTO: {
        const params = new Array<{ name: string; type: number }>(vlen);
        for (let i = 0; i < vlen; i++) {
          const e = p + i * 8;
          const pn = dv.getUint32(e, true);
          params[i] = Object.freeze({ name: pn === 0 ? '' : this.str(pn), type: dv.getUint32(e + 4, true) });
        }
        const variadic = vlen > 0 && params[vlen - 1]!.type === 0 && params[vlen - 1]!.name === '';
        return { id, kind: 'func_proto', name, returnType: sizeOrType, params: variadic ? params.slice(0, -1) : params, variadic };
      }
      case K_VAR:
        return { id, kind: 'var', name, type: sizeOrType, linkage: LINKAGE[dv.getUint32(p, true)] ?? 'static' };
      case K_DATASEC: {
        const vars = new Array<{ type: number; offset: number; size: number }>(vlen);
        for (let i = 0; i < vlen; i++) {
          const e = p + i * 12;
          vars[i] = Object.freeze({
            type: dv.getUint32(e, true),
            offset: dv.getUint32(e + 4, true),
            size: dv.getUint32(e + 8, true),
          });
        }
        return { id, kind: 'datasec', name, size: sizeOrType, vars };
      }
      case K_FLOAT:
        return { id, kind: 'float', name, size: sizeOrType };
      case K_DECL_TAG:
        return { id, kind: 'decl_tag', name, type: sizeOrType, componentIdx: dv.getInt32(p, true) };
      default:
        throw new BtfError(`unknown BTF kind ${kind} at type id ${id}`);
    }
  }
}

function readKernelBtf(path: string): Buffer {
  try {
    return fs.readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new BtfError(
        `${path} does not exist: kernel built without CONFIG_DEBUG_INFO_BTF (or the module has no BTF); ` +
          'CO-RE needs kernel BTF',
      );
    }
    throw new BtfError(`cannot read ${path}: ${(e as Error).message}`);
  }
}
