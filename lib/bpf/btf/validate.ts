// SPDX-License-Identifier: MIT
/**
 * Structural checks on BTF before anything walks it: type ids in range, kind-specific
 * fields sane, sizes consistent, no type containing itself (cycles are allowed only
 * through pointers and function prototypes) and bounded nesting. Walkers (sizeof,
 * typeName, codecs, gen-types) and libbpf then only ever see well-formed type graphs.
 */
import { isRef, skipRefs } from './refs';
import { BtfError, type BtfKind, type BtfType } from './types';

/** What the checker reads of a Btf (parse.ts's Btf; an interface so the two modules do not import each other). */
export interface CheckedBtf {
  readonly base: CheckedBtf | undefined;
  readonly startId: number;
  readonly typeCount: number;
  readonly localTypeCount: number;
  type(id: number): BtfType;
  kindOf(id: number): BtfKind;
  pointerWidth(): number;
  checkType(id: number): void;
  checkedSize(id: number): number;
}

/** Longest chain of by-value containment (typedefs and qualifiers count) a type may have. */
export const MAX_BTF_NESTING = 128;
/** Largest size of one type, as the kernel allows (u32). */
const MAX_TYPE_SIZE = 0xffffffff;

const UNVISITED = 0;
const ON_PATH = 1;
const DONE = 2;

const NOT_VALUE_TYPES = new Set(['var', 'datasec', 'func', 'decl_tag']);
const INT_SIZES = new Set([1, 2, 4, 8, 16]);
const ENUM_SIZES = new Set([1, 2, 4, 8]);
const FLOAT_SIZES = new Set([2, 4, 8, 12, 16]);

/**
 * Checks the types of one Btf, each at most once. `check(id)` validates everything the
 * type contains by value and the ids it points to; `checkAll()` the whole blob.
 *
 * @example
 * new BtfChecker(btf).checkAll(); // throws BtfError naming the first bad type
 */
export class BtfChecker {
  private readonly state: Uint8Array;
  /** Size in bytes of each checked type; -1 for types without a size (void, func, fwd...). */
  private readonly sizes: Float64Array;

  constructor(private readonly btf: CheckedBtf) {
    this.state = new Uint8Array(btf.localTypeCount);
    this.sizes = new Float64Array(btf.localTypeCount);
  }

  /** Throws a BtfError unless `id` and what it contains are well formed. */
  check(id: number): void {
    const btf = this.btf;
    if (id === 0) return;
    if (id < btf.startId) {
      if (!btf.base) throw new BtfError(`invalid BTF type id ${id}`);
      btf.base.checkType(id);
      return;
    }
    const local = id - btf.startId;
    if (!(local < this.state.length) || !Number.isInteger(id)) throw new BtfError(`invalid BTF type id ${id}`);
    if (this.state[local] === DONE) return;
    this.walk(id);
  }

  /** Checks every type of the blob (base types are the base's business). */
  checkAll(): void {
    for (let id = this.btf.startId; id < this.btf.typeCount; id++) this.check(id);
  }

  /** Size of a checked type in bytes, or -1 when it has none. */
  size(id: number): number {
    if (id === 0) return -1;
    if (id < this.btf.startId) return this.btf.base ? this.btf.base.checkedSize(id) : -1;
    this.check(id);
    return this.sizes[id - this.btf.startId]!;
  }

  // Iterative depth-first walk along by-value edges: a back edge is a type containing itself.
  private walk(root: number): void {
    const btf = this.btf;
    const stack: { id: number; children: number[]; next: number }[] = [];
    const enter = (id: number): void => {
      const t = btf.type(id);
      this.checkLocal(t);
      if (stack.length >= MAX_BTF_NESTING) throw new BtfError(`BTF type ${id} nests more than ${MAX_BTF_NESTING} levels deep`);
      this.state[id - btf.startId] = ON_PATH;
      stack.push({ id, children: contained(t), next: 0 });
    };
    enter(root);
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      if (top.next < top.children.length) {
        const child = top.children[top.next++]!;
        if (child === 0 || child < btf.startId) {
          if (child !== 0) btf.base?.checkType(child);
          continue;
        }
        const s = this.state[child - btf.startId];
        if (s === ON_PATH) throw new BtfError(`BTF type ${child} contains itself (a cycle not through a pointer, via type ${top.id})`);
        if (s === UNVISITED) enter(child);
        continue;
      }
      stack.pop();
      const t = btf.type(top.id);
      this.sizes[top.id - btf.startId] = this.sizeOf(t);
      this.state[top.id - btf.startId] = DONE;
    }
  }

  private ref(t: BtfType, id: number, what: string): void {
    if (!(id >= 0 && id < this.btf.typeCount)) {
      throw new BtfError(`BTF type ${t.id} (${t.kind}${t.name ? ` ${t.name}` : ''}): ${what} refers to type id ${id}, beyond the last type ${this.btf.typeCount - 1}`);
    }
  }

  // A value's type: what typedefs, qualifiers, pointers, arrays, members and variables name.
  private valueRef(t: BtfType, id: number, what: string): void {
    this.ref(t, id, what);
    const k = this.btf.kindOf(id);
    if (NOT_VALUE_TYPES.has(k)) throw this.bad(t, `${what} is a ${k} (${id}), not a type`);
  }

  private bad(t: BtfType, what: string): BtfError {
    return new BtfError(`BTF type ${t.id} (${t.kind}${t.name ? ` ${t.name}` : ''}): ${what}`);
  }

  // Checks that need only the type itself and the kinds of the ids it names.
  private checkLocal(t: BtfType): void {
    const btf = this.btf;
    if (t.kind === 'ptr' || isRef(t)) {
      this.valueRef(t, t.type, 'its target');
      if (t.kind === 'typedef' && !t.name) throw this.bad(t, 'a typedef without a name');
      return;
    }
    switch (t.kind) {
      case 'int':
        if (!INT_SIZES.has(t.size)) throw this.bad(t, `size ${t.size} is not 1, 2, 4, 8 or 16`);
        if (t.bits === 0 || t.bitOffset + t.bits > t.size * 8) throw this.bad(t, `${t.bits} bits at bit ${t.bitOffset} do not fit ${t.size} bytes`);
        return;
      case 'float':
        if (!FLOAT_SIZES.has(t.size)) throw this.bad(t, `size ${t.size} is not a float size`);
        return;
      case 'enum':
      case 'enum64':
        if (!ENUM_SIZES.has(t.size)) throw this.bad(t, `size ${t.size} is not 1, 2, 4 or 8`);
        return;
      case 'array':
        this.valueRef(t, t.type, 'its element');
        this.ref(t, t.indexType, 'its index type');
        if (t.type === 0) throw this.bad(t, 'an array of void');
        return;
      case 'struct':
      case 'union':
        for (const m of t.members) {
          this.valueRef(t, m.type, `member ${m.name || '(anon)'}`);
          if (m.type === 0) throw this.bad(t, `member ${m.name || '(anon)'} is void`);
        }
        return;
      case 'func':
        this.ref(t, t.type, 'its prototype');
        if (btf.kindOf(t.type) !== 'func_proto') throw this.bad(t, `its prototype ${t.type} is a ${btf.kindOf(t.type)}, not a func_proto`);
        return;
      case 'func_proto':
        this.valueRef(t, t.returnType, 'its return type');
        for (const p of t.params) this.valueRef(t, p.type, `parameter ${p.name || '(anon)'}`);
        return;
      case 'var':
        this.valueRef(t, t.type, 'its type');
        if (t.type === 0) throw this.bad(t, 'a variable of type void');
        if (!t.name) throw this.bad(t, 'a variable without a name');
        return;
      case 'datasec':
        for (const v of t.vars) {
          this.ref(t, v.type, 'a variable');
          const k = btf.kindOf(v.type);
          if (k !== 'var' && k !== 'func') throw this.bad(t, `entry ${v.type} is a ${k}, not a var or func`);
          if (t.size !== 0 && v.offset + v.size > t.size) throw this.bad(t, `variable at ${v.offset}+${v.size} is past the section's ${t.size} bytes`);
        }
        return;
      case 'decl_tag':
        this.ref(t, t.type, 'its target');
        if (t.componentIdx < -1) throw this.bad(t, `component index ${t.componentIdx}`);
        return;
      case 'fwd':
      case 'void':
        return;
    }
  }

  // Runs once everything `t` contains has its size.
  private sizeOf(t: BtfType): number {
    const btf = this.btf;
    const sized = (id: number): number => (id === 0 ? -1 : id < btf.startId ? (btf.base ? btf.base.checkedSize(id) : -1) : this.sizes[id - btf.startId]!);
    if (isRef(t)) return sized(t.type);
    switch (t.kind) {
      case 'int':
      case 'float':
      case 'enum':
      case 'enum64':
        return t.size;
      case 'ptr':
        return btf.pointerWidth();
      case 'var':
        return sized(t.type);
      case 'array': {
        const elem = sized(t.type);
        if (elem < 0) throw this.bad(t, `its element ${btf.kindOf(t.type)} ${t.type} has no size`);
        const total = elem * t.nelems;
        if (total > MAX_TYPE_SIZE) throw this.bad(t, `${t.nelems} elements of ${elem} bytes exceed 4 GiB`);
        return total;
      }
      case 'struct':
      case 'union': {
        const bits = t.size * 8;
        for (const m of t.members) {
          const ms = sized(m.type);
          const name = m.name || '(anon)';
          // Without kind_flag, a bitfield is an int type narrower than its storage.
          const narrow = m.bitfieldSize === 0 ? narrowInt(btf, m.type) : undefined;
          if (narrow) {
            if (m.bitOffset + narrow.bitOffset + narrow.bits > bits) throw this.bad(t, `bitfield ${name} at bit ${m.bitOffset} is past its ${t.size} bytes`);
            continue;
          }
          if (m.bitfieldSize > 0) {
            if (m.bitOffset + m.bitfieldSize > bits) throw this.bad(t, `bitfield ${name} at bit ${m.bitOffset} is past its ${t.size} bytes`);
            continue;
          }
          if (ms < 0) throw this.bad(t, `member ${name} (${btf.kindOf(m.type)} ${m.type}) has no size`);
          if (m.bitOffset + ms * 8 > bits) throw this.bad(t, `member ${name} at bit ${m.bitOffset} (${ms} bytes) is past its ${t.size} bytes`);
        }
        return t.size;
      }
      case 'datasec': {
        // clang leaves a section's size 0 until libbpf fixes it up: then its extent is its variables'.
        let end = 0;
        for (const v of t.vars) {
          const vs = sized(v.type);
          if (vs > v.size && btf.kindOf(v.type) === 'var') throw this.bad(t, `variable ${v.type} is ${vs} bytes but its entry says ${v.size}`);
          end = Math.max(end, v.offset + v.size);
        }
        if (t.size !== 0 && end > t.size) throw this.bad(t, `variables end at ${end}, past the section's ${t.size} bytes`);
        return Math.max(t.size, end);
      }
      default:
        return -1;
    }
  }
}

/** The int behind typedefs and qualifiers of a checked type when it has fewer bits than bytes. */
function narrowInt(btf: CheckedBtf, id: number): { bits: number; bitOffset: number } | undefined {
  const t = skipRefs((i) => btf.type(i), btf.type(id), isRef, MAX_BTF_NESTING);
  if (t.kind !== 'int' || (t.bits === t.size * 8 && t.bitOffset === 0)) return undefined;
  return { bits: t.bits, bitOffset: t.bitOffset };
}

/** Ids a type holds by value (a cycle among these is a type containing itself). */
function contained(t: BtfType): number[] {
  if (isRef(t)) return [t.type];
  switch (t.kind) {
    case 'var':
    case 'array':
      return [t.type];
    case 'struct':
    case 'union':
      return t.members.map((m) => m.type);
    case 'datasec':
      return t.vars.map((v) => v.type);
    default:
      return [];
  }
}
