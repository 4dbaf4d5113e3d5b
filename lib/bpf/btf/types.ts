// SPDX-License-Identifier: MIT
/**
 * Plain-data view of BTF types. Every type object is frozen and carries its
 * own id so that callers can pass it back to Btf methods.
 */

/**
 * Lower-case BTF kind names (BTF_KIND_INT → 'int').
 *
 * @example
 * if (btf.kindOf(id) === 'struct') console.log(btf.type(id).name);
 */
export type BtfKind =
  | 'void'
  | 'int'
  | 'ptr'
  | 'array'
  | 'struct'
  | 'union'
  | 'enum'
  | 'fwd'
  | 'typedef'
  | 'volatile'
  | 'const'
  | 'restrict'
  | 'func'
  | 'func_proto'
  | 'var'
  | 'datasec'
  | 'float'
  | 'decl_tag'
  | 'type_tag'
  | 'enum64';

/**
 * Numeric BTF_KIND_* value for each kind name, as in <linux/btf.h>.
 *
 * @example
 * BTF_KIND_NUMBERS.enum64; // 19
 */
export const BTF_KIND_NUMBERS: Readonly<Record<BtfKind, number>> = {
  void: 0,
  int: 1,
  ptr: 2,
  array: 3,
  struct: 4,
  union: 5,
  enum: 6,
  fwd: 7,
  typedef: 8,
  volatile: 9,
  const: 10,
  restrict: 11,
  func: 12,
  func_proto: 13,
  var: 14,
  datasec: 15,
  float: 16,
  decl_tag: 17,
  type_tag: 18,
  enum64: 19,
};

/**
 * Kind name for each BTF_KIND_* number.
 *
 * @example
 * BTF_KIND_NAMES[4]; // 'struct'
 */
export const BTF_KIND_NAMES: readonly BtfKind[] = [
  'void',
  'int',
  'ptr',
  'array',
  'struct',
  'union',
  'enum',
  'fwd',
  'typedef',
  'volatile',
  'const',
  'restrict',
  'func',
  'func_proto',
  'var',
  'datasec',
  'float',
  'decl_tag',
  'type_tag',
  'enum64',
];

interface BtfTypeBase {
  /** Type id; 0 is `void`. */
  readonly id: number;
  /** Name, or '' for anonymous types. */
  readonly name: string;
}

/** Type id 0. @example btf.type(0); // { id: 0, kind: 'void', name: '' } */
export interface BtfVoid extends BtfTypeBase {
  readonly kind: 'void';
}

/** @example btf.resolve('__u16'); // { kind: 'int', name: 'unsigned short', size: 2, signed: false, ... } */
export interface BtfInt extends BtfTypeBase {
  readonly kind: 'int';
  /** Storage size in bytes. */
  readonly size: number;
  /** Number of value bits (normally size * 8). */
  readonly bits: number;
  /** Bit offset of the value inside its storage (always 0 in modern BTF). */
  readonly bitOffset: number;
  readonly signed: boolean;
  readonly char: boolean;
  readonly bool: boolean;
}

/** @example btf.typeName(ptr.id); // 'struct sock *' */
export interface BtfPtr extends BtfTypeBase {
  readonly kind: 'ptr';
  /** Pointee type id. */
  readonly type: number;
}

/** @example const a = btf.resolve(member.type); if (a.kind === 'array') a.nelems; // 16 */
export interface BtfArray extends BtfTypeBase {
  readonly kind: 'array';
  /** Element type id. */
  readonly type: number;
  readonly indexType: number;
  readonly nelems: number;
}

/**
 * A struct/union member.
 *
 * @example
 * for (const m of btf.find('ev', 'struct')!.members) console.log(m.name, m.bitOffset / 8);
 */
export interface BtfMember {
  /** Member name, '' for anonymous struct/union members and unnamed bitfields. */
  readonly name: string;
  readonly type: number;
  /** Offset from the start of the enclosing struct/union, in bits. */
  readonly bitOffset: number;
  /** Width of a bitfield in bits, 0 for ordinary members. */
  readonly bitfieldSize: number;
}

/** A struct or union. @example btf.find('tcp_sock', 'struct')!.members.length */
export interface BtfComposite extends BtfTypeBase {
  readonly kind: 'struct' | 'union';
  readonly size: number;
  readonly members: readonly BtfMember[];
}

/** One enumerator. @example btf.find('ev_kind', 'enum')!.values[0]; // { name: 'EV_CONNECT', value: 1 } */
export interface BtfEnumValue<V extends number | bigint = number | bigint> {
  readonly name: string;
  readonly value: V;
}

/** @example btf.find('sk_rst_reason', 'enum')!.values.map((v) => v.name) */
export interface BtfEnum extends BtfTypeBase {
  readonly kind: 'enum';
  readonly size: number;
  readonly signed: boolean;
  /** Values as JS numbers (BTF_KIND_ENUM stores 32 bits). */
  readonly values: readonly BtfEnumValue<number>[];
}

/** @example (btf.type(id) as BtfEnum64).values[0].value; // a bigint */
export interface BtfEnum64 extends BtfTypeBase {
  readonly kind: 'enum64';
  readonly size: number;
  readonly signed: boolean;
  readonly values: readonly BtfEnumValue<bigint>[];
}

/** Forward declaration (`struct foo;`). @example btf.find('opaque'); // { kind: 'fwd', fwdKind: 'struct' } */
export interface BtfFwd extends BtfTypeBase {
  readonly kind: 'fwd';
  /** Whether the forward declaration is for a struct or a union. */
  readonly fwdKind: 'struct' | 'union';
}

/**
 * Types that only wrap another type: typedef and the qualifiers.
 *
 * @example
 * btf.find('__u32', 'typedef')!.type; // id of 'unsigned int'
 */
export interface BtfRef extends BtfTypeBase {
  readonly kind: 'typedef' | 'volatile' | 'const' | 'restrict' | 'type_tag';
  readonly type: number;
}

/** @example btf.find('handle', 'func')!.linkage; // 'global' */
export type BtfLinkage = 'static' | 'global' | 'extern';

/** @example btf.typeName(btf.find('tcp_v4_rcv', 'func')!.type); // 'int (struct sk_buff *)' */
export interface BtfFunc extends BtfTypeBase {
  readonly kind: 'func';
  /** FUNC_PROTO type id. */
  readonly type: number;
  readonly linkage: BtfLinkage;
}

/** @example proto.params.map((p) => p.name); // ['ctx'] */
export interface BtfParam {
  readonly name: string;
  readonly type: number;
}

/** @example const p = btf.type(fn.type); if (p.kind === 'func_proto') p.returnType; */
export interface BtfFuncProto extends BtfTypeBase {
  readonly kind: 'func_proto';
  readonly returnType: number;
  readonly params: readonly BtfParam[];
  /** True when the prototype ends in `...` (encoded as a trailing void param). */
  readonly variadic: boolean;
}

/** A global variable. @example btf.find('target_pid', 'var')!.type */
export interface BtfVar extends BtfTypeBase {
  readonly kind: 'var';
  readonly type: number;
  readonly linkage: BtfLinkage;
}

/** A DATASEC entry, as stored. @example btf.find('.rodata', 'datasec')!.vars[0].offset */
export interface BtfVarSecinfo {
  /** VAR (or FUNC for extern ksyms) type id. */
  readonly type: number;
  readonly offset: number;
  readonly size: number;
}

/** @example btf.find('.bss', 'datasec')!.size */
export interface BtfDatasec extends BtfTypeBase {
  readonly kind: 'datasec';
  readonly size: number;
  readonly vars: readonly BtfVarSecinfo[];
}

/** @example btf.resolve('double'); // { kind: 'float', size: 8, ... } */
export interface BtfFloat extends BtfTypeBase {
  readonly kind: 'float';
  readonly size: number;
}

/** `__attribute__((btf_decl_tag("x")))`. @example btf.findAll('bpf_kfunc', 'decl_tag').length */
export interface BtfDeclTag extends BtfTypeBase {
  readonly kind: 'decl_tag';
  /** Tagged type (struct, union, func, var or typedef). */
  readonly type: number;
  /** Member / parameter index the tag applies to, -1 for the type itself. */
  readonly componentIdx: number;
}

/**
 * Any BTF type; switch on `kind` to narrow.
 *
 * @example
 * const t = btf.resolve('conn_event');
 * if (t.kind === 'struct') t.members.forEach((m) => console.log(m.name));
 */
export type BtfType =
  | BtfVoid
  | BtfInt
  | BtfPtr
  | BtfArray
  | BtfComposite
  | BtfEnum
  | BtfEnum64
  | BtfFwd
  | BtfRef
  | BtfFunc
  | BtfFuncProto
  | BtfVar
  | BtfDatasec
  | BtfFloat
  | BtfDeclTag;

type KindMatch<T, K> = T extends { readonly kind: infer TK } ? (K extends TK ? T : never) : never;

/**
 * Narrow a {@link BtfType} by kind.
 *
 * @example
 * const s: BtfTypeOfKind<'struct'> = btf.find('sock', 'struct')!; // BtfComposite
 */
export type BtfTypeOfKind<K extends BtfKind> = KindMatch<BtfType, K>;

/**
 * A variable found in a DATASEC, with its VAR resolved.
 *
 * @example
 * btf.datasec('.rodata').vars.find((v) => v.name === 'target_pid')?.offset;
 */
export interface BtfDatasecVar {
  readonly name: string;
  /** Byte offset inside the section. */
  readonly offset: number;
  readonly size: number;
  /** Type id of the variable's value (the VAR's target type, qualifiers kept). */
  readonly type: number;
  /** Id of the VAR (or FUNC) entry itself. */
  readonly varId: number;
  readonly linkage: BtfLinkage;
}

/** @example const { size, vars } = btf.datasec('.rodata'); */
export interface BtfDatasecInfo {
  readonly name: string;
  readonly id: number;
  /** Section size in bytes; 0 in an unlinked .o unless fixed up (see Btf.fromElf). */
  readonly size: number;
  readonly vars: readonly BtfDatasecVar[];
}

/**
 * Malformed BTF, unknown types and unsupported layouts.
 *
 * @example
 * try { btf.lookup('struct nope'); } catch (e) { if (e instanceof BtfError) console.warn(e.message); }
 */
export class BtfError extends Error {
  override readonly name = 'BtfError';
}
