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
    type: { type: 'string', short: 't', multiple: true },
    all: { type: 'boolean', default: false },
    skeleton: { type: 'boolean', default: false },
    name: { type: 'string' },
    'import-from': { type: 'string' },
    output: { type: 'string', short: 'o' },
  },
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
