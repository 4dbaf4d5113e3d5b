/**
 * Plain-data view of BTF types. Every type object is immutable and carries its
 * own id so that callers can pass it back to {@link Btf} methods.
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

/** Numeric BTF_KIND_* value for each kind name, as in <linux/btf.h>. */
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

export interface BtfVoid extends BtfTypeBase {
  readonly kind: 'void';
}

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

export interface BtfPtr extends BtfTypeBase {
  readonly kind: 'ptr';
  /** Pointee type id. */
  readonly type: number;
}

export interface BtfArray extends BtfTypeBase {
  readonly kind: 'array';
  /** Element type id. */
  readonly type: number;
  readonly indexType: number;
  readonly nelems: number;
}

export interface BtfMember {
  /** Member name, '' for anonymous struct/union members and unnamed bitfields. */
  readonly name: string;
  readonly type: number;
  /** Offset from the start of the enclosing struct/union, in bits. */
  readonly bitOffset: number;
  /** Width of a bitfield in bits, 0 for ordinary members. */
  readonly bitfieldSize: number;
}

export interface BtfComposite extends BtfTypeBase {
  readonly kind: 'struct' | 'union';
  readonly size: number;
  readonly members: readonly BtfMember[];
}

export interface BtfEnumValue<V extends number | bigint = number | bigint> {
  readonly name: string;
  readonly value: V;
}

export interface BtfEnum extends BtfTypeBase {
  readonly kind: 'enum';
  readonly size: number;
  readonly signed: boolean;
  /** Values as JS numbers (BTF_KIND_ENUM stores 32 bits). */
  readonly values: readonly BtfEnumValue<number>[];
}

export interface BtfEnum64 extends BtfTypeBase {
  readonly kind: 'enum64';
  readonly size: number;
  readonly signed: boolean;
  readonly values: readonly BtfEnumValue<bigint>[];
}

export interface BtfFwd extends BtfTypeBase {
  readonly kind: 'fwd';
  /** Whether the forward declaration is for a struct or a union. */
  readonly fwdKind: 'struct' | 'union';
}

/** Types that only wrap another type: typedef and the qualifiers. */
export interface BtfRef extends BtfTypeBase {
  readonly kind: 'typedef' | 'volatile' | 'const' | 'restrict' | 'type_tag';
  readonly type: number;
}

export type BtfLinkage = 'static' | 'global' | 'extern';

export interface BtfFunc extends BtfTypeBase {
  readonly kind: 'func';
  /** FUNC_PROTO type id. */
  readonly type: number;
  readonly linkage: BtfLinkage;
}

export interface BtfParam {
  readonly name: string;
  readonly type: number;
}

export interface BtfFuncProto extends BtfTypeBase {
  readonly kind: 'func_proto';
  readonly returnType: number;
  readonly params: readonly BtfParam[];
  /** True when the prototype ends in `...` (encoded as a trailing void param). */
  readonly variadic: boolean;
}

export interface BtfVar extends BtfTypeBase {
  readonly kind: 'var';
  readonly type: number;
  readonly linkage: BtfLinkage;
}

export interface BtfVarSecinfo {
  /** VAR (or FUNC for extern ksyms) type id. */
  readonly type: number;
  readonly offset: number;
  readonly size: number;
}

export interface BtfDatasec extends BtfTypeBase {
  readonly kind: 'datasec';
  readonly size: number;
  readonly vars: readonly BtfVarSecinfo[];
}

export interface BtfFloat extends BtfTypeBase {
  readonly kind: 'float';
  readonly size: number;
}

export interface BtfDeclTag extends BtfTypeBase {
  readonly kind: 'decl_tag';
  /** Tagged type (struct, union, func, var or typedef). */
  readonly type: number;
  /** Member / parameter index the tag applies to, -1 for the type itself. */
  readonly componentIdx: number;
}

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

/** Narrow a {@link BtfType} by kind. */
export type BtfTypeOfKind<K extends BtfKind> = Extract<BtfType, { kind: K }>;

/** A variable found in a DATASEC, with its VAR resolved. */
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

export interface BtfDatasecInfo {
  readonly name: string;
  readonly id: number;
  /** Section size in bytes; 0 in an unlinked .o unless fixed up (see Btf.fromElf). */
  readonly size: number;
  readonly vars: readonly BtfDatasecVar[];
}

export class BtfError extends Error {
  override readonly name = 'BtfError';
}
