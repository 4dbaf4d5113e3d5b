import fs from 'node:fs';
import { Btf } from '../../bpf/btf/parse';
import { genTypes } from '../../bpf/btf/gen-types';
import type { Command } from '../command';
import { UsageError } from '../command';

export const genTypesCommand: Command = {
  name: 'gen-types',
  summary: 'write TypeScript declarations for the types of a BPF object (like bpf2go)',
  usage: '<object.bpf.o> [-t TYPE]... [-o FILE]',
  options: {
    type: { type: 'string', short: 't', multiple: true, arg: 'NAME', help: 'only this struct/enum (and what it uses); default: every named type of the object' },
    output: { type: 'string', short: 'o', arg: 'FILE', help: 'write the declarations to FILE instead of standard output' },
  },
  examples: [['tcpscope gen-types build/bpf/syncount.bpf.o -o syncount.types.ts', 'TypeScript declarations for the syn-counter example\'s structs']],
  allowPositionals: true,
  async run(ctx) {
    const [file] = ctx.positionals;
    if (!file) throw new UsageError('gen-types needs a BPF object file: tcpscope gen-types build/bpf/x.bpf.o');
    if (!fs.existsSync(file)) throw new UsageError(`no such file: ${file}`);
    const btf = Btf.fromElf(fs.readFileSync(file));
    const names = ctx.values['type'] as string[] | undefined;
    const text = genTypes(btf, names && names.length ? names : undefined);
    const output = ctx.values['output'] as string | undefined;
    if (output) fs.writeFileSync(output, text);
    else ctx.out.write(text);
    return 0;
  },
};
