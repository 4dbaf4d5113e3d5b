// SPDX-License-Identifier: MIT
// Optional peer dependencies, loaded when a feature that needs them is used: the library and
// CLI core need none of them, so an application installs only what it exports to.

/** A feature needs packages that are not installed; the message names them and the command. */
export class MissingPackageError extends Error {
  override readonly name = 'MissingPackageError';
  constructor(readonly feature: string, readonly packages: readonly string[]) {
    super(`${feature} needs ${packages.length === 1 ? 'the package' : 'the packages'} ${packages.join(', ')}: npm install ${packages.join(' ')}`);
  }
}

function installed(name: string): boolean {
  try {
    require.resolve(name);
    return true;
  } catch {
    return false;
  }
}

/** Throws MissingPackageError naming every one of `packages` that cannot be resolved. */
export function requirePackages(feature: string, packages: readonly string[]): void {
  const missing = packages.filter((p) => !installed(p));
  if (missing.length) throw new MissingPackageError(feature, missing);
}

/** require() of an optional package, after checking it is installed. */
export function requireOptional<T>(feature: string, name: string): T {
  requirePackages(feature, [name]);
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require(name) as T;
}
