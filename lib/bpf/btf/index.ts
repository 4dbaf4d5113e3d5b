/**
 * BTF parsing and BTF-driven codecs, in pure TypeScript.
 *
 * @example
 * import { Btf, decoderFor, genTypes } from './btf';
 * const btf = Btf.fromFile('tcpscope.bpf.o');
 * const dec = decoderFor(btf, 'conn_event');
 * const ev = dec.decode(new DataView(sample.buffer, sample.byteOffset, sample.byteLength));
 */
export { Btf, type BtfTypeRef, type BtfFromElfOptions } from './parse';
export {
  decoderFor,
  encoderFor,
  type Decoder,
  type Encoder,
  type DecoderOptions,
  type DecodedValue,
  type DecodedRecord,
  type EncodableValue,
} from './codec';
export { genTypes, type GenTypesOptions } from './gen-types';
export { shapeOf, type Shape, type RecordShape, type FieldShape } from './shape';
export { BtfBuilder, type BuildMember } from './build';
export {
  readElfSection,
  readElfSections,
  readElfSymbols,
  isElf,
  ElfError,
  type ElfSection,
  type ElfSymbol,
} from './elf';
export * from './types';
