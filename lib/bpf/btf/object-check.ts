// SPDX-License-Identifier: MIT
/**
 * Checks a BPF ELF object before libbpf opens it. libbpf 1.1 trusts section indexes,
 * symbol indexes and BTF type ids it reads from the file; a malformed object makes it
 * read out of bounds (SIGSEGV). Everything libbpf's open follows is checked here first.
 */
import { ElfError, elfSectionData, readElfSections, type ElfSection } from './elf';
import { Btf } from './parse';
import { BtfError } from './types';

const ET_REL = 1;
const EM_BPF = 247;
const SHT_SYMTAB = 2;
const SHT_STRTAB = 3;
const SHT_REL = 9;
const SHN_LORESERVE = 0xff00;
const SHN_ABS = 0xfff1;
const SHN_COMMON = 0xfff2;
const SYM_SIZE = 24;
const REL_SIZE = 16;
/** More sections or symbols than any real BPF object has; bounds the work on hostile files. */
const MAX_SECTIONS = 1 << 16;
const MAX_SYMBOLS = 1 << 20;

/**
 * Throws an ElfError or BtfError naming what is wrong with `elf` as a BPF object; returns
 * the parsed BTF (or undefined when the object has none).
 *
 * @example
 * checkBpfObject(fs.readFileSync('x.bpf.o'));
 */
export function checkBpfObject(elf: Uint8Array): Btf | undefined {
  const sections = readElfSections(elf);
  const dv = new DataView(elf.buffer, elf.byteOffset, elf.byteLength);
  const type = dv.getUint16(0x10, true);
  const machine = dv.getUint16(0x12, true);
  if (type !== ET_REL) throw new ElfError(`not a relocatable object (e_type ${type}); BPF objects are built with clang -target bpf -c`);
  if (machine !== 0 && machine !== EM_BPF) throw new ElfError(`not a BPF object (e_machine ${machine}, expected ${EM_BPF})`);
  if (sections.length > MAX_SECTIONS) throw new ElfError(`${sections.length} sections is more than a BPF object has`);
  for (const s of sections) elfSectionData(elf, s);

  const symtab = sections.find((s) => s.type === SHT_SYMTAB);
  let symbols = 0;
  if (symtab) symbols = checkSymbols(elf, sections, symtab);
  for (const s of sections) if (s.type === SHT_REL) checkRelocations(elf, sections, s, symtab, symbols);

  const btfSec = sections.find((s) => s.name === '.BTF');
  if (!btfSec) return undefined;
  const btf = Btf.parse(elfSectionData(elf, btfSec)).validate();
  const ext = sections.find((s) => s.name === '.BTF.ext');
  if (ext) checkBtfExt(elfSectionData(elf, ext), btf);
  return btf;
}

/** A 64-bit field as a number; past 2^53 it is out of range for anything here anyway. */
function u64(dv: DataView, at: number): number {
  return dv.getUint32(at, true) + dv.getUint32(at + 4, true) * 0x100000000;
}

function checkSymbols(elf: Uint8Array, sections: ElfSection[], symtab: ElfSection): number {
  if (symtab.entsize !== SYM_SIZE) throw new ElfError(`symbol table entry size ${symtab.entsize} (expected ${SYM_SIZE})`);
  if (symtab.size % SYM_SIZE !== 0) throw new ElfError(`symbol table size ${symtab.size} is not a multiple of ${SYM_SIZE}`);
  const strtab = sections[symtab.link];
  if (!strtab || strtab.type !== SHT_STRTAB) throw new ElfError(`symbol table links to section ${symtab.link}, which is not a string table`);
  const count = symtab.size / SYM_SIZE;
  if (count > MAX_SYMBOLS) throw new ElfError(`${count} symbols is more than a BPF object has`);
  const data = elfSectionData(elf, symtab);
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  for (let i = 0; i < count; i++) {
    const at = i * SYM_SIZE;
    const name = dv.getUint32(at, true);
    if (name >= Math.max(strtab.size, 1)) throw new ElfError(`symbol ${i}: name offset ${name} is past the string table`);
    const shndx = dv.getUint16(at + 6, true);
    if (shndx >= sections.length && shndx < SHN_LORESERVE) throw new ElfError(`symbol ${i}: section index ${shndx} does not exist`);
    if (shndx >= SHN_LORESERVE && shndx !== SHN_ABS && shndx !== SHN_COMMON) throw new ElfError(`symbol ${i}: reserved section index 0x${shndx.toString(16)}`);
    const value = u64(dv, at + 8);
    const size = u64(dv, at + 16);
    const sec = shndx < sections.length ? sections[shndx] : undefined;
    if (sec && shndx !== 0 && (value > sec.size || size > sec.size)) {
      throw new ElfError(`symbol ${i}: value ${value} size ${size} is outside section ${sec.name} (${sec.size} bytes)`);
    }
  }
  return count;
}

function checkRelocations(elf: Uint8Array, sections: ElfSection[], rel: ElfSection, symtab: ElfSection | undefined, symbols: number): void {
  if (rel.entsize !== REL_SIZE || rel.size % REL_SIZE !== 0) throw new ElfError(`relocation section ${rel.name}: entry size ${rel.entsize}, size ${rel.size}`);
  if (!symtab || sections[rel.link] !== symtab) throw new ElfError(`relocation section ${rel.name} links to section ${rel.link}, not the symbol table`);
  const target = sections[rel.info];
  if (!target || rel.info === 0) throw new ElfError(`relocation section ${rel.name} applies to section ${rel.info}, which does not exist`);
  const data = elfSectionData(elf, rel);
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  for (let at = 0; at < data.length; at += REL_SIZE) {
    const offset = u64(dv, at);
    const sym = dv.getUint32(at + 12, true);
    if (sym >= symbols) throw new ElfError(`relocation section ${rel.name}: symbol index ${sym} of ${symbols}`);
    if (offset >= target.size) throw new ElfError(`relocation section ${rel.name}: offset ${offset} is past ${target.name} (${target.size} bytes)`);
  }
}

// .BTF.ext: a header, then func_info, line_info and CO-RE relocation blocks, each a
// record size followed by per-section runs of records.
function checkBtfExt(ext: Uint8Array, btf: Btf): void {
  const fail = (what: string): BtfError => new BtfError(`.BTF.ext: ${what}`);
  if (ext.length < 24) throw fail(`${ext.length} bytes is shorter than its header`);
  const dv = new DataView(ext.buffer, ext.byteOffset, ext.byteLength);
  if (dv.getUint16(0, true) !== 0xeb9f) throw fail('bad magic');
  if (ext[2] !== 1) throw fail(`unsupported version ${ext[2]}`);
  const hdrLen = dv.getUint32(4, true);
  if (hdrLen < 24 || hdrLen > ext.length) throw fail(`header length ${hdrLen}`);
  const blocks: { name: string; minRecord: number; off: number; len: number; typeField?: number; strField?: number }[] = [
    { name: 'func_info', minRecord: 8, off: dv.getUint32(8, true), len: dv.getUint32(12, true), typeField: 4 },
    { name: 'line_info', minRecord: 16, off: dv.getUint32(16, true), len: dv.getUint32(20, true), strField: 4 },
  ];
  if (hdrLen >= 32) blocks.push({ name: 'core_relo', minRecord: 16, off: dv.getUint32(24, true), len: dv.getUint32(28, true), typeField: 4, strField: 8 });
  for (const b of blocks) {
    if (b.len === 0) continue;
    const start = hdrLen + b.off;
    const end = start + b.len;
    if (end > ext.length || b.len < 4) throw fail(`${b.name} at ${b.off}+${b.len} is outside the section`);
    const record = dv.getUint32(start, true);
    if (record < b.minRecord || record % 4 !== 0 || record > 1024) throw fail(`${b.name} record size ${record}`);
    for (let p = start + 4; p < end; ) {
      if (p + 8 > end) throw fail(`${b.name} section header truncated`);
      const nameOff = dv.getUint32(p, true);
      const count = dv.getUint32(p + 4, true);
      if (nameOff >= btf.stringsLength) throw fail(`${b.name} section name offset ${nameOff} is outside the BTF strings`);
      if (count === 0) throw fail(`${b.name} section with no records`);
      p += 8;
      if (p + count * record > end) throw fail(`${b.name}: ${count} records of ${record} bytes overrun the block`);
      for (let i = 0; i < count; i++, p += record) {
        if (b.typeField !== undefined) {
          const id = dv.getUint32(p + b.typeField, true);
          if (id >= btf.typeCount) throw fail(`${b.name} record refers to type id ${id}, beyond the last type ${btf.typeCount - 1}`);
        }
        if (b.strField !== undefined) {
          const s = dv.getUint32(p + b.strField, true);
          if (s >= btf.stringsLength) throw fail(`${b.name} record string offset ${s} is outside the BTF strings`);
        }
      }
    }
  }
}
