// SPDX-License-Identifier: MIT
import fs from 'node:fs';
import { NotFoundError } from './errors';
import { native } from './native';

/** An interface given by name or index. */
export type InterfaceRef = string | number;

function knownInterfaces(): string {
  try {
    return fs.readdirSync('/sys/class/net').join(', ');
  } catch {
    return 'unknown';
  }
}

/** Resolves an interface name or index in this process's network namespace. */
export function interfaceIndex(ref: InterfaceRef): number {
  if (typeof ref === 'number') {
    if (!Number.isInteger(ref) || ref <= 0 || native().ifIndexToName(ref) === null) {
      throw new NotFoundError(`no network interface with index ${ref} (interfaces: ${knownInterfaces()})`);
    }
    return ref;
  }
  const index = native().ifNameToIndex(ref);
  if (!index) throw new NotFoundError(`no network interface named '${ref}' (interfaces: ${knownInterfaces()}); check \`ip link\``);
  return index;
}

/** The name of an interface index, or undefined when it is gone. */
export function interfaceName(index: number): string | undefined {
  return native().ifIndexToName(index) ?? undefined;
}
