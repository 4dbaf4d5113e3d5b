// SPDX-License-Identifier: MIT
import fs from 'node:fs';
import path from 'node:path';
import { Btf } from '../../bpf/btf/parse';
import { genTypes } from '../../bpf/btf/gen-types';
import { genSkeleton } from '../../bpf/btf/gen-skeleton';
import type { Command } from '../command';
import { UsageError } from '../command';

export const genTypesCommand: Command = {
  name: 'gen-types',
  summary: 'write TypeScript declarations (or with --skeleton a typed skeleton) for a BPF object, like bpf2go',
  usage: '<object.bpf.o> [-t TYPE]... [--all] [--skeleton [--name NAME] [--import-from MODULE]] [-o FILE]',
  options: {
    type: { type: 'string', short: 't', multiple: true, arg: 'NAME', help: 'only this struct/enum (and what it uses); default: the object\'s own types' },
    all: { type: 'boolean', default: false, help: 'also every kernel type the object refers to' },
    skeleton: { type: 'boolean', default: false, help: 'write a typed skeleton (maps, programs, globals, ring buffers) embedding the object' },
    name: { type: 'string', arg: 'NAME', help: 'the skeleton\'s name (default: from the file name)' },
    'import-from': { type: 'string', arg: 'MODULE', help: 'where the skeleton imports tcpscope\'s runtime from (default: tcpscope/bpf)' },
    output: { type: 'string', short: 'o', arg: 'FILE', help: 'write to FILE instead of standard output' },
  },
  examples: [
    ['tcpscope gen-types build/bpf/syncount.bpf.o -o syncount.types.ts', 'TypeScript declarations for the syn-counter example\'s structs'],
    ['tcpscope gen-types --skeleton build/bpf/syncount.bpf.o -o syncount.skel.ts', 'a typed skeleton: obj.maps.syns_by_source, obj.programs.count_syns'],
  ],
  allowPositionals: true,
  async run(ctx) {
    const [file] = ctx.positionals;
    if (!file) throw new UsageError('gen-types needs a BPF object file: tcpscope gen-types build/bpf/x.bpf.o');
    if (!fs.existsSync(file)) throw new UsageError(`no such file: ${file}`);
    if (fs.statSync(file).isDirectory()) throw new UsageError(`${file} is a directory: give a BPF object file (.bpf.o)`);
    const elf = fs.readFileSync(file);
    let text: string;
    if (ctx.values['skeleton']) {
      // The object embedded is this file, for the architecture running the command.
      const name = (ctx.values['name'] as string | undefined) ?? path.basename(file).replace(/(\.[\w-]+)?\.bpf\.o$|\.o$/, '');
      const importFrom = ctx.values['import-from'] as string | undefined;
      text = genSkeleton({ name, objects: new Map([[process.arch, elf]]), source: path.basename(file), ...(importFrom ? { importFrom } : {}) });
    } else {
      const btf = Btf.fromElf(elf);
      const names = ctx.values['type'] as string[] | undefined;
      text = genTypes(btf, names && names.length ? names : undefined, { all: ctx.values['all'] === true });
    }
    const output = ctx.values['output'] as string | undefined;
    if (output) fs.writeFileSync(output, text);
    else ctx.out.write(text);
    return 0;
  },
};
