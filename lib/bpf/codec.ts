// SPDX-License-Identifier: MIT
// Codecs turn JS values into the bytes a map key or value holds, and back.

/** Encodes and decodes one fixed-size value at an offset of a DataView. */
export interface Codec<T> {
  readonly size: number;
  encode(value: T, view: DataView, byteOffset: number): void;
  decode(view: DataView, byteOffset: number): T;
}

function intCodec(size: 1 | 2 | 4, signed: boolean): Codec<number> {
  const min = signed ? -(2 ** (size * 8 - 1)) : 0;
  const max = signed ? 2 ** (size * 8 - 1) - 1 : 2 ** (size * 8) - 1;
  const label = `${signed ? 'i' : 'u'}${size * 8}`;
  const check = (v: number): void => {
    if (!Number.isInteger(v) || v < min || v > max) throw new TypeError(`expected integer ${min}..${max} (${label}), got ${String(v)}`);
  };
  switch (size) {
    case 1:
      return { size, encode: (v, d, o) => { check(v); signed ? d.setInt8(o, v) : d.setUint8(o, v); }, decode: signed ? (d, o) => d.getInt8(o) : (d, o) => d.getUint8(o) };
    case 2:
      return { size, encode: (v, d, o) => { check(v); signed ? d.setInt16(o, v, true) : d.setUint16(o, v, true); }, decode: signed ? (d, o) => d.getInt16(o, true) : (d, o) => d.getUint16(o, true) };
    case 4:
      return { size, encode: (v, d, o) => { check(v); signed ? d.setInt32(o, v, true) : d.setUint32(o, v, true); }, decode: signed ? (d, o) => d.getInt32(o, true) : (d, o) => d.getUint32(o, true) };
  }
}

export const u8 = intCodec(1, false);
export const u16 = intCodec(2, false);
export const u32 = intCodec(4, false);
export const i32 = intCodec(4, true);

/** 64-bit unsigned; accepts number or bigint, decodes to bigint. */
export const u64: Codec<bigint> = {
  size: 8,
  encode(v: bigint | number, d, o) {
    const b = BigInt(v);
    if (b < 0n || b > 0xffff_ffff_ffff_ffffn) throw new TypeError(`expected integer 0..2^64-1 (u64), got ${String(v)}`);
    d.setBigUint64(o, b, true);
  },
  decode: (d, o) => d.getBigUint64(o, true),
};

/** 64-bit signed; accepts number or bigint, decodes to bigint. */
export const i64: Codec<bigint> = {
  size: 8,
  encode(v: bigint | number, d, o) { d.setBigInt64(o, BigInt(v), true); },
  decode: (d, o) => d.getBigInt64(o, true),
};

/** Network-order (big-endian) 16-bit value, as ports are stored in packet headers. */
export const be16: Codec<number> = {
  size: 2,
  encode(v, d, o) {
    if (!Number.isInteger(v) || v < 0 || v > 0xffff) throw new TypeError(`expected integer 0..65535 (be16), got ${String(v)}`);
    d.setUint16(o, v, false);
  },
  decode: (d, o) => d.getUint16(o, false),
};

/** Raw bytes of a fixed size; decodes to a copy. */
export function bytes(size: number): Codec<Uint8Array> {
  return {
    size,
    encode(v, d, o) {
      if (!(v instanceof Uint8Array)) throw new TypeError(`expected a Uint8Array of ${size} bytes`);
      if (v.length !== size) throw new TypeError(`expected ${size} bytes, got ${v.length}`);
      new Uint8Array(d.buffer, d.byteOffset + o, size).set(v);
    },
    decode: (d, o) => new Uint8Array(d.buffer.slice(d.byteOffset + o, d.byteOffset + o + size)),
  };
}

/** Picks the integer codec matching a key or value size, or raw bytes. */
export function codecForSize(size: number): Codec<number> | Codec<bigint> | Codec<Uint8Array> {
  if (size === 4) return u32;
  if (size === 8) return u64;
  if (size === 2) return u16;
  if (size === 1) return u8;
  return bytes(size);
}

/** Encodes a value into a fresh buffer of the codec's size. */
export function encodeToBytes<T>(codec: Codec<T>, value: T): Uint8Array {
  const out = new Uint8Array(codec.size);
  codec.encode(value, new DataView(out.buffer), 0);
  return out;
}
