// SPDX-License-Identifier: MIT
/**
 * BTF parsing and BTF-driven codecs, in pure TypeScript (no libbpf needed).
 *
 * - {@link Btf}: parse raw BTF, a BPF object's `.BTF` or the kernel's; look up,
 *   resolve and size types; enum and DATASEC helpers.
 * - {@link decoderFor} / {@link encoderFor}: generated straight-line codecs.
 * - {@link genTypes}: TypeScript declarations matching what the decoders return.
 * - {@link readElfSection} and friends: the minimal ELF reader behind Btf.fromElf.
 * - {@link BtfBuilder}: write BTF (tests, synthetic map types).
 *
 * @example
 * import { Btf, decoderFor, encoderFor, genTypes } from './bpf/btf';
 * const btf = Btf.fromFile('tcpscope.bpf.o');
 * const dec = decoderFor<conn_event>(btf, 'conn_event');
 * const ev = dec.decode(new DataView(sample.buffer, sample.byteOffset, sample.byteLength));
 * const rodata = encoderFor(btf, '.rodata').encodeToBytes({ tcpscope_port: 8080 });
 * fs.writeFileSync('conn_event.ts', genTypes(btf));
 */
export { Btf, type BtfTypeRef, type BtfFromElfOptions } from './parse';
export {
  decoderFor,
  viewDecoderFor,
  VIEW_DATA,
  VIEW_OFFSET,
  encoderFor,
  type ViewDecoder,
  type ViewClass,
  type ViewBase,
  type Decoder,
  type Encoder,
  type DecoderOptions,
  type EncoderOptions,
  type DecodedValue,
  type DecodedRecord,
  type EncodableValue,
} from './codec';
export { genTypes, pascalCase, mapDefinitions, recordTypes, type GenTypesOptions, type MapDefinition } from './gen-types';
export { genSkeleton, programSymbols, type GenSkeletonOptions, type ProgramSymbol } from './gen-skeleton';
export { shapeOf, ShapePlanner, enumIsBig, type Shape, type ScalarShape, type RecordShape, type FieldShape } from './shape';
export { BtfBuilder, type BuildMember } from './build';
export {
  readElfSection,
  readElfSections,
  readElfSymbols,
  elfSectionData,
  isElf,
  ElfError,
  type ElfSection,
  type ElfSymbol,
} from './elf';
export * from './types';
