// SPDX-License-Identifier: MIT
// Deterministic input mutation shared by the fuzz tests (test/fuzz/*.test.ts), the
// BpfObject.open child (open-child.cjs) and scripts/fuzz.sh: an input is fully named by
// (seed, index), so a crash in a child is reproduced and kept from those two numbers.
'use strict';

/** mulberry32: small, fast, good enough to spread mutations. */
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function inputRng(seed, index) {
  return rng((Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(index + 1, 0x85ebca77)) >>> 0);
}

const INTERESTING32 = [0, 1, 2, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff];

/** Offsets and sizes of an ELF64 section by name, or undefined (no validation: best effort). */
function elfSection(buf, name) {
  try {
    if (buf.length < 64 || buf[0] !== 0x7f) return undefined;
    const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    const shoff = Number(dv.getBigUint64(0x28, true));
    const shnum = dv.getUint16(0x3c, true);
    const shstrndx = dv.getUint16(0x3e, true);
    if (shoff + shnum * 64 > buf.length || shstrndx >= shnum) return undefined;
    const strOff = Number(dv.getBigUint64(shoff + shstrndx * 64 + 0x18, true));
    for (let i = 0; i < shnum; i++) {
      const at = shoff + i * 64;
      let p = strOff + dv.getUint32(at, true);
      let s = '';
      while (p < buf.length && buf[p] !== 0 && s.length < 64) s += String.fromCharCode(buf[p++]);
      if (s === name) {
        const offset = Number(dv.getBigUint64(at + 0x18, true));
        const size = Number(dv.getBigUint64(at + 0x20, true));
        if (offset + size <= buf.length) return { offset, size };
      }
    }
  } catch {
    return undefined;
  }
  return undefined;
}

/** Byte offsets of each BTF type record in raw BTF at `base` (a .BTF section or blob). */
function btfTypeOffsets(buf, base, length) {
  const out = [];
  if (length < 24) return out;
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const hdr = dv.getUint32(base + 4, true);
  const typeOff = dv.getUint32(base + 8, true);
  const typeLen = dv.getUint32(base + 12, true);
  let p = base + hdr + typeOff;
  const end = Math.min(p + typeLen, base + length);
  const fixed = [0, 4, 0, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 4, 0, 0];
  const per = [0, 0, 0, 0, 12, 12, 8, 0, 0, 0, 0, 0, 0, 8, 0, 12, 0, 0, 0, 12];
  while (p + 12 <= end && out.length < 100000) {
    out.push(p);
    const info = dv.getUint32(p + 4, true);
    const kind = (info >>> 24) & 0x1f;
    if (kind >= fixed.length) break;
    p += 12 + fixed[kind] + (info & 0xffff) * per[kind];
  }
  return out;
}

function pick(r, list) {
  return list[Math.floor(r() * list.length)];
}

/** Structure-aware BTF edit: retarget a type id, its info word or a member at random. */
function mutateBtfRegion(out, r, base, length) {
  const types = btfTypeOffsets(out, base, length);
  if (types.length === 0) return false;
  const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
  const idx = Math.floor(r() * types.length);
  const at = types[idx];
  const selfId = idx + 1;
  const choice = r();
  const ids = [0, selfId, selfId + 1, selfId - 1, types.length, types.length + 1, types.length + 1000, 0xffffffff, Math.floor(r() * (types.length + 2))];
  // Field of the record to overwrite: size/type word, or a word of its trailing data.
  const info = dv.getUint32(at + 4, true);
  const vlen = info & 0xffff;
  const trailingWords = Math.min(vlen * 3 + 3, 64);
  let field = at + 8;
  if (choice < 0.35) field = at + 8;
  else if (choice < 0.5) field = at + 4;
  else if (choice < 0.6) field = at;
  else field = at + 12 + 4 * Math.floor(r() * trailingWords);
  if (field + 4 > base + length) return false;
  let value;
  if (field === at + 4) {
    const kind = Math.floor(r() * 21);
    value = r() < 0.5 ? ((info & 0x80ffffff) | (kind << 24)) >>> 0 : ((info & 0xffff0000) | Math.floor(r() * 0x10000)) >>> 0;
    if (r() < 0.2) value = (value ^ 0x80000000) >>> 0;
  } else {
    value = r() < 0.7 ? pick(r, ids) : pick(r, INTERESTING32);
  }
  dv.setUint32(field, value >>> 0, true);
  return true;
}

/**
 * One mutation of `input` (not modified) for input number `index` of run `seed`.
 * `kind` 'elf' aims most edits at the .BTF/.BTF.ext sections and headers of an object;
 * 'btf' treats the input as a raw BTF blob.
 */
function mutate(input, seed, index, kind = 'elf') {
  const r = inputRng(seed, index);
  let out = Uint8Array.from(input);
  const edits = 1 + Math.floor(r() * (r() < 0.8 ? 3 : 12));
  for (let e = 0; e < edits; e++) {
    const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
    const roll = r();
    let region = { offset: 0, size: out.length };
    if (kind === 'elf' && roll < 0.55) {
      const which = r();
      const sec = which < 0.75 ? elfSection(out, '.BTF') : which < 0.9 ? elfSection(out, '.BTF.ext') : elfSection(out, '.symtab');
      if (sec && sec.size >= 4) {
        region = sec;
        if (which < 0.75 && r() < 0.6 && mutateBtfRegion(out, r, sec.offset, sec.size)) continue;
      }
    } else if (kind === 'elf' && roll < 0.7 && out.length >= 64) {
      // ELF and section headers.
      const shoff = Number(dv.getBigUint64(0x28, true));
      region = r() < 0.3 || shoff >= out.length ? { offset: 0, size: 64 } : { offset: shoff, size: out.length - shoff };
    } else if (kind === 'btf' && roll < 0.6 && mutateBtfRegion(out, r, 0, out.length)) {
      continue;
    }
    if (region.size < 1) continue;
    const op = r();
    const pos = region.offset + Math.floor(r() * region.size);
    if (op < 0.3) {
      out[pos] ^= 1 << Math.floor(r() * 8);
    } else if (op < 0.45) {
      out[pos] = pick(r, [0, 0xff, 0x7f, 0x80, 1]);
    } else if (op < 0.8) {
      if (pos + 4 <= out.length) dv.setUint32(pos & ~3, pick(r, INTERESTING32) >>> 0, true);
    } else if (op < 0.9) {
      if (pos + 4 <= out.length) dv.setUint32(pos, Math.floor(r() * 0x100000000) >>> 0, true);
    } else if (op < 0.95) {
      out = out.subarray(0, Math.max(0, pos));
      out = Uint8Array.from(out);
    } else {
      const len = Math.min(out.length - pos, 1 + Math.floor(r() * 64));
      const dst = Math.floor(r() * Math.max(1, out.length - len));
      out.copyWithin(dst, pos, pos + len);
    }
  }
  return out;
}

module.exports = { rng, inputRng, mutate, elfSection };
