// SPDX-License-Identifier: MIT
// The kinds that only wrap another type (typedef and the qualifiers) and the walk through
// them: one list for the parser, the checker, the shape planner and the type generator.
import type { BtfRef, BtfType } from './types';

/** typedef, const, volatile, restrict or type_tag. */
export function isRef(t: BtfType): t is BtfRef {
  return t.kind === 'typedef' || isQualifier(t);
}

/** const, volatile, restrict or type_tag: they say nothing about the value (a typedef names it). */
export function isQualifier(t: BtfType): t is BtfRef {
  return t.kind === 'const' || t.kind === 'volatile' || t.kind === 'restrict' || t.kind === 'type_tag';
}

/** Follows `t` through the kinds `through` accepts, at most `limit` steps; the type reached. */
export function skipRefs(type: (id: number) => BtfType, t: BtfType, through: (t: BtfType) => t is BtfRef, limit: number): BtfType {
  for (let i = 0; i < limit && through(t); i++) t = type(t.type);
  return t;
}
