// SPDX-License-Identifier: MIT
import fs from 'node:fs';
import path from 'node:path';

let root: string | undefined;

/** The tcpscope package directory, whether running from lib/ (ts) or dist/lib/ (js). */
export function packageRoot(): string {
  if (root) return root;
  let dir = __dirname;
  for (;;) {
    const manifest = path.join(dir, 'package.json');
    if (fs.existsSync(manifest) && (JSON.parse(fs.readFileSync(manifest, 'utf8')) as { name?: string }).name === 'tcpscope') break;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`cannot find the tcpscope package directory above ${__dirname}`);
    dir = parent;
  }
  root = dir;
  return dir;
}

/** Directory of the prebuilt addon and built-in objects for this platform (may not exist). */
export function prebuildDir(): string {
  return path.join(packageRoot(), 'prebuilds', `${process.platform}-${process.arch}`);
}

/**
 * Path of a BPF object built from `<name>.bpf.o`: build/bpf/ first (what `npm run build`
 * compiles from bpf/, examples/ and test/bpf/, and what an install without a prebuild
 * compiled), then the package's prebuilt built-in objects for this architecture.
 */
export function builtObjectPath(name: string): string {
  const built = path.join(packageRoot(), 'build', 'bpf', `${name}.bpf.o`);
  if (fs.existsSync(built)) return built;
  const prebuilt = path.join(prebuildDir(), 'bpf', `${name}.bpf.o`);
  return fs.existsSync(prebuilt) ? prebuilt : built;
}
