// SPDX-License-Identifier: MIT
/**
 * Minimal ELF64 little-endian reader: just enough to pull `.BTF` and the
 * symbol table out of a clang-built BPF object without linking libbpf.
 */

/** A section header. @example readElfSections(obj).find((s) => s.name === '.rodata')?.size */
export interface ElfSection {
  readonly index: number;
  readonly name: string;
  /** sh_type (1 = PROGBITS, 2 = SYMTAB, 8 = NOBITS, ...). */
  readonly type: number;
  readonly flags: bigint;
  readonly offset: number;
  /** sh_size; for NOBITS sections (.bss) this is the memory size, with no file bytes. */
  readonly size: number;
  readonly link: number;
  readonly info: number;
  readonly entsize: number;
}

/** A .symtab entry. @example readElfSymbols(obj).find((s) => s.name === 'target_pid')?.value */
export interface ElfSymbol {
  readonly name: string;
  readonly value: number;
  readonly size: number;
  /** STT_* (0 NOTYPE, 1 OBJECT, 2 FUNC, 3 SECTION, ...). */
  readonly type: number;
  /** STB_* (0 LOCAL, 1 GLOBAL, 2 WEAK). */
  readonly bind: number;
  /** Index of the section the symbol lives in (0 = undefined/extern). */
  readonly shndx: number;
}

/** Malformed or unsupported ELF. @example try { readElfSections(buf); } catch (e) { if (e instanceof ElfError) ... } */
export class ElfError extends Error {
  override readonly name = 'ElfError';
}

const SHT_SYMTAB = 2;
const SHT_NOBITS = 8;
const SHN_XINDEX = 0xffff;

function view(buf: Uint8Array): DataView {
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
}

function u64(dv: DataView, off: number): number {
  const v = dv.getBigUint64(off, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new ElfError(`ELF field at ${off} too large: ${v}`);
  return Number(v);
}

function cstring(buf: Uint8Array, start: number, end: number): string {
  if (start > end || end > buf.length) throw new ElfError(`string at ${start} is outside its string table (ends at ${end})`);
  let e = start;
  while (e < end && buf[e] !== 0) e++;
  return Buffer.from(buf.buffer, buf.byteOffset + start, e - start).toString('utf8');
}

/** True when `buf` starts with the ELF magic. @example isElf(fs.readFileSync('x.bpf.o')); // true */
export function isElf(buf: Uint8Array): boolean {
  return buf.length >= 4 && buf[0] === 0x7f && buf[1] === 0x45 && buf[2] === 0x4c && buf[3] === 0x46;
}

/**
 * List the section headers of an ELF64 little-endian file.
 *
 * @example
 * const secs = readElfSections(fs.readFileSync('prog.bpf.o'));
 * secs.map((s) => s.name); // ['', '.text', 'tracepoint/...', '.BTF', ...]
 */
export function readElfSections(buf: Uint8Array): ElfSection[] {
  if (!isElf(buf)) throw new ElfError('not an ELF file (bad magic)');
  if (buf.length < 64) throw new ElfError('truncated ELF header');
  if (buf[4] !== 2) throw new ElfError('only ELF64 is supported (BPF objects are ELF64)');
  if (buf[5] !== 1) {
    throw new ElfError('big-endian ELF is not supported (object was built for bpfeb; use -target bpfel or bpf on a little-endian host)');
  }
  const dv = view(buf);
  const shoff = u64(dv, 0x28);
  const shentsize = dv.getUint16(0x3a, true);
  let shnum = dv.getUint16(0x3c, true);
  let shstrndx = dv.getUint16(0x3e, true);
  if (shoff === 0) return [];
  if (shentsize < 64) throw new ElfError(`bad e_shentsize ${shentsize}`);
  const hdrAt = (i: number): number => {
    const at = shoff + i * shentsize;
    if (at + 64 > buf.length) throw new ElfError(`section header ${i} out of bounds`);
    return at;
  };
  // Files with >= 0xff00 sections keep the real counts in section header 0.
  if (shnum === 0) shnum = u64(dv, hdrAt(0) + 0x20);
  if (shstrndx === SHN_XINDEX) shstrndx = dv.getUint32(hdrAt(0) + 0x28, true);

  const raw: Omit<ElfSection, 'name'>[] = [];
  const nameOffs: number[] = [];
  for (let i = 0; i < shnum; i++) {
    const at = hdrAt(i);
    nameOffs.push(dv.getUint32(at, true));
    raw.push({
      index: i,
      type: dv.getUint32(at + 4, true),
      flags: dv.getBigUint64(at + 8, true),
      offset: u64(dv, at + 0x18),
      size: u64(dv, at + 0x20),
      link: dv.getUint32(at + 0x28, true),
      info: dv.getUint32(at + 0x2c, true),
      entsize: u64(dv, at + 0x38),
    });
  }
  const strtab = raw[shstrndx];
  if (!strtab) throw new ElfError(`bad e_shstrndx ${shstrndx}`);
  const strEnd = strtab.offset + strtab.size;
  if (strEnd > buf.length) throw new ElfError('section name table out of bounds');
  return raw.map((s, i) => ({ ...s, name: cstring(buf, strtab.offset + nameOffs[i]!, strEnd) }));
}

/**
 * The file bytes of a section (a view into `buf`, not a copy).
 *
 * @example
 * const ro = readElfSections(obj).find((s) => s.name === '.rodata')!;
 * elfSectionData(obj, ro); // initial .rodata contents
 */
export function elfSectionData(buf: Uint8Array, sec: ElfSection): Uint8Array {
  if (sec.type === SHT_NOBITS) return new Uint8Array(0);
  if (sec.offset + sec.size > buf.length) throw new ElfError(`section ${sec.name} out of bounds`);
  return buf.subarray(sec.offset, sec.offset + sec.size);
}

/**
 * Return the contents of the named section (a view into `buf`), or undefined.
 *
 * @example
 * const btfBytes = readElfSection(fs.readFileSync('prog.bpf.o'), '.BTF');
 * const btf = Btf.parse(btfBytes!);
 */
export function readElfSection(buf: Uint8Array, name: string): Uint8Array | undefined {
  const sec = readElfSections(buf).find((s) => s.name === name);
  return sec ? elfSectionData(buf, sec) : undefined;
}

/**
 * Read the `.symtab` symbols of an ELF64 little-endian file (empty if stripped).
 *
 * @example
 * readElfSymbols(obj).filter((s) => s.type === 1).map((s) => s.name); // data objects
 */
export function readElfSymbols(buf: Uint8Array, sections: ElfSection[] = readElfSections(buf)): ElfSymbol[] {
  const symtab = sections.find((s) => s.type === SHT_SYMTAB);
  if (!symtab) return [];
  const strtab = sections[symtab.link];
  if (!strtab) throw new ElfError('symbol table has no string table');
  const data = elfSectionData(buf, symtab);
  const dv = view(data);
  const entsize = symtab.entsize || 24;
  const strEnd = strtab.offset + strtab.size;
  const out: ElfSymbol[] = [];
  for (let at = 0; at + 24 <= data.length; at += entsize) {
    const info = data[at + 4]!;
    out.push({
      name: cstring(buf, strtab.offset + dv.getUint32(at, true), strEnd),
      type: info & 0xf,
      bind: info >> 4,
      shndx: dv.getUint16(at + 6, true),
      value: u64(dv, at + 8),
      size: u64(dv, at + 16),
    });
  }
  return out;
}
