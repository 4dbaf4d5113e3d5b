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

/** Path of a BPF object built from `<name>.bpf.c` (bpf/, examples/ or test/bpf/). */
export function builtObjectPath(name: string): string {
  return path.join(packageRoot(), 'build', 'bpf', `${name}.bpf.o`);
}
