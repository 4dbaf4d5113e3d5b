// SPDX-License-Identifier: MIT
// Child process of the BpfObject.open fuzzer: opens inputs [start, start + count) of a run
// and announces each index on fd $FUZZ_PROGRESS_FD (3 from run-open.cjs) before touching it, so the parent knows which input a
// crash (a signal) or a hang belongs to. Prints a JSON summary on stdout at the end.
// argv: seed start count corpusFile... (or --file path... to replay kept inputs).
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { mutate } = require('./mutate.cjs');

const root = path.resolve(__dirname, '../..');
const { BpfObject } = require(path.join(root, 'dist/lib/bpf/object.js'));
const { BpfError, NotFoundError } = require(path.join(root, 'dist/lib/bpf/errors.js'));
const { BtfError } = require(path.join(root, 'dist/lib/bpf/btf/types.js'));
const { ElfError } = require(path.join(root, 'dist/lib/bpf/btf/elf.js'));

const args = process.argv.slice(2);
const replay = args[0] === '--file';
const seed = replay ? 0 : Number(args[0]);
const start = replay ? 0 : Number(args[1]);
const count = replay ? args.length - 1 : Number(args[2]);
const files = replay ? args.slice(1) : args.slice(3);
const corpus = replay ? [] : files.map((f) => fs.readFileSync(f));
const progress = process.env.FUZZ_PROGRESS_FD ? Number(process.env.FUZZ_PROGRESS_FD) : -1;

const summary = { opened: 0, failed: 0, untyped: [], duplicated: [], kinds: {} };
for (let i = start; i < start + count; i++) {
  if (progress >= 0) fs.writeSync(progress, `${i}\n`);
  const input = replay ? fs.readFileSync(files[i]) : mutate(corpus[i % corpus.length], seed, i, 'elf');
  try {
    const obj = BpfObject.open(input);
    try {
      obj.programInfos();
      obj.mapInfos();
      void obj.btf;
      // FUZZ_LOAD=1: also relocate (CO-RE against the kernel's BTF) and load what opened.
      if (process.env.FUZZ_LOAD === '1') obj.load();
    } finally {
      obj.close();
    }
    summary.opened++;
  } catch (e) {
    summary.failed++;
    const typed = e instanceof BpfError || e instanceof BtfError || e instanceof ElfError || e instanceof NotFoundError;
    const name = e && e.name ? e.name : typeof e;
    summary.kinds[name] = (summary.kinds[name] || 0) + 1;
    const message = e && e.message ? String(e.message) : String(e);
    if (!typed && summary.untyped.length < 20) summary.untyped.push({ index: i, name, message: message.slice(0, 300) });
    const first = message.split(':')[0];
    if (first && message.startsWith(`${first}: ${first}:`) && summary.duplicated.length < 20) summary.duplicated.push({ index: i, message: message.slice(0, 200) });
  }
}
process.stdout.write(JSON.stringify(summary) + '\n');
