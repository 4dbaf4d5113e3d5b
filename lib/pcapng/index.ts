// SPDX-License-Identifier: MIT
// A pcapng writer (https://www.ietf.org/archive/id/draft-ietf-opsawg-pcapng-02.html):
// one section header block, one interface description block per interface (name, link
// type, snaplen, timestamp resolution), then enhanced packet blocks. Blocks are built in
// a reusable buffer and written in large chunks.
import fs from 'node:fs';

export const LINKTYPE_ETHERNET = 1;
export const LINKTYPE_RAW = 101;

const SHB = 0x0a0d0d0a;
const IDB = 0x00000001;
const EPB = 0x00000006;
const BYTE_ORDER_MAGIC = 0x1a2b3c4d;
const TWO_32 = 4294967296;

export interface PcapngInterface {
  name: string;
  /** LINKTYPE_* (default Ethernet). */
  linkType?: number;
  /** Largest captured length written for this interface (0: unlimited). */
  snaplen?: number;
  description?: string;
}

export interface PcapngOptions {
  interfaces: PcapngInterface[];
  /** Timestamp resolution of every interface: nanoseconds (default) or microseconds. */
  resolution?: 'ns' | 'us';
  /** shb_userappl */
  application?: string;
  /** Bytes buffered before a write (default 1 MiB). */
  bufferBytes?: number;
}

/** A pcapng file or option that cannot be written or read as given. */
export class PcapngError extends Error {
  override readonly name = 'PcapngError';
}

function pad4(n: number): number {
  return (n + 3) & ~3;
}

const OPTION_NAMES: Readonly<Record<number, string>> = { 2: 'if_name', 3: 'if_description', 4: 'shb_userappl' };

/** An option's length field is 16 bits: longer values are cut at the last whole UTF-8 character that fits. */
export const MAX_OPTION_BYTES = 0xffff;

function optionText(text: string): Uint8Array {
  const bytes = new TextEncoder().encode(text);
  if (bytes.length <= MAX_OPTION_BYTES) return bytes;
  let end = MAX_OPTION_BYTES;
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--; // bytes[end] continues a character: cut before it
  return bytes.subarray(0, end);
}

function optionBytes(options: Array<[number, Uint8Array]>): Uint8Array {
  let size = 4; // opt_endofopt
  for (const [code, v] of options) {
    if (v.length > MAX_OPTION_BYTES) throw new PcapngError(`pcapng: option ${OPTION_NAMES[code] ?? code} is ${v.length} bytes; pcapng options hold at most ${MAX_OPTION_BYTES} bytes, shorten it`);
    size += 4 + pad4(v.length);
  }
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  let at = 0;
  for (const [code, v] of options) {
    view.setUint16(at, code, true);
    view.setUint16(at + 2, v.length, true);
    out.set(v, at + 4);
    at += 4 + pad4(v.length);
  }
  return out; // ends with four zero bytes: opt_endofopt
}

function block(type: number, body: Uint8Array): Uint8Array {
  const total = 12 + body.length;
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  view.setUint32(0, type, true);
  view.setUint32(4, total, true);
  out.set(body, 8);
  view.setUint32(total - 4, total, true);
  return out;
}

/** The section header block and interface description blocks that start a file. */
export function pcapngHeader(options: PcapngOptions): Uint8Array {
  const shbOpts = optionBytes(options.application ? [[4, optionText(options.application)]] : []);
  const shbBody = new Uint8Array(16 + shbOpts.length);
  const sv = new DataView(shbBody.buffer);
  sv.setUint32(0, BYTE_ORDER_MAGIC, true);
  sv.setUint16(4, 1, true);
  sv.setUint16(6, 0, true);
  sv.setInt32(8, -1, true); // section length unknown (-1 as 64 bits)
  sv.setInt32(12, -1, true);
  shbBody.set(shbOpts, 16);
  const parts = [block(SHB, shbBody)];
  const tsresol = options.resolution === 'us' ? 6 : 9;
  for (const iface of options.interfaces) {
    const opts: Array<[number, Uint8Array]> = [[2, optionText(iface.name)]];
    if (iface.description) opts.push([3, optionText(iface.description)]);
    opts.push([9, Uint8Array.of(tsresol)]);
    const o = optionBytes(opts);
    const body = new Uint8Array(8 + o.length);
    const v = new DataView(body.buffer);
    v.setUint16(0, iface.linkType ?? LINKTYPE_ETHERNET, true);
    v.setUint32(4, iface.snaplen ?? 0, true);
    body.set(o, 8);
    parts.push(block(IDB, body));
  }
  const total = parts.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

/**
 * Writes packets as enhanced packet blocks to a file descriptor (or collects them, with
 * fd -1, for toBytes()). Timestamps are given as two 32-bit halves of nanoseconds (or
 * microseconds with resolution 'us') so callers need no bigint per packet.
 *
 * @example
 * const w = PcapngWriter.create('out.pcapng', { interfaces: [{ name: 'lo' }] });
 * w.writePacket(0, tsHigh, tsLow, frame, frame.length);
 * w.close();
 */
const PAUSE = new Int32Array(new SharedArrayBuffer(4));

export class PcapngWriter {
  readonly interfaces: readonly PcapngInterface[];
  readonly resolution: 'ns' | 'us';
  private fd: number;
  private readonly ownsFd: boolean;
  private buf: Uint8Array;
  private view: DataView;
  private used = 0;
  private readonly chunks: Uint8Array[] = [];
  /** Packets written. */
  packets = 0;
  bytes = 0;

  constructor(fd: number, options: PcapngOptions, ownsFd = false) {
    if (!options.interfaces.length) throw new TypeError('pcapng: at least one interface is needed');
    this.fd = fd;
    this.ownsFd = ownsFd;
    this.interfaces = options.interfaces;
    this.resolution = options.resolution ?? 'ns';
    // fill(): fault the pages in now rather than one by one while packets arrive.
    this.buf = new Uint8Array(Math.max(options.bufferBytes ?? 1 << 20, 4096)).fill(0);
    this.view = new DataView(this.buf.buffer);
    this.append(pcapngHeader(options));
  }

  /** Creates (truncates) a file and writes the header. */
  static create(path: string, options: PcapngOptions): PcapngWriter {
    const fd = fs.openSync(path, 'w');
    return new PcapngWriter(fd, options, true);
  }

  private append(bytes: Uint8Array): void {
    if (this.used + bytes.length > this.buf.length) this.flush();
    if (bytes.length > this.buf.length) {
      this.emit(bytes);
      return;
    }
    this.buf.set(bytes, this.used);
    this.used += bytes.length;
  }

  private emit(bytes: Uint8Array): void {
    if (this.fd >= 0) {
      let off = 0;
      while (off < bytes.length) {
        try {
          off += fs.writeSync(this.fd, bytes, off, bytes.length - off);
        } catch (e) {
          // A non-blocking pipe (Node makes its stdout one) that is full: wait for its reader.
          if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
          Atomics.wait(PAUSE, 0, 0, 1);
        }
      }
    } else {
      this.chunks.push(bytes.slice());
    }
    this.bytes += bytes.length;
  }

  /**
   * One enhanced packet block. `data` is the captured bytes (truncated to the
   * interface's snaplen), `origLen` the length on the wire.
   */
  writePacket(ifaceId: number, tsHigh: number, tsLow: number, data: Uint8Array, origLen: number): void {
    const snap = this.interfaces[ifaceId]?.snaplen ?? 0;
    if (this.interfaces[ifaceId] === undefined) throw new RangeError(`pcapng: no interface ${ifaceId}`);
    const capLen = snap > 0 && data.length > snap ? snap : data.length;
    const total = 32 + pad4(capLen);
    if (this.used + total > this.buf.length) {
      this.flush();
      if (total > this.buf.length) {
        this.buf = new Uint8Array(total);
        this.view = new DataView(this.buf.buffer);
      }
    }
    const v = this.view;
    const at = this.used;
    v.setUint32(at, EPB, true);
    v.setUint32(at + 4, total, true);
    v.setUint32(at + 8, ifaceId, true);
    v.setUint32(at + 12, tsHigh, true);
    v.setUint32(at + 16, tsLow, true);
    v.setUint32(at + 20, capLen, true);
    v.setUint32(at + 24, origLen, true);
    this.buf.set(capLen === data.length ? data : data.subarray(0, capLen), at + 28);
    for (let p = at + 28 + capLen; p < at + 28 + pad4(capLen); p++) this.buf[p] = 0;
    v.setUint32(at + total - 4, total, true);
    this.used += total;
    this.packets++;
  }

  /**
   * Room for `bytes` more bytes in the write buffer, flushing first if needed, for encoders
   * that write blocks straight into it (then commit()). Returns the buffer and the offset.
   */
  reserve(bytes: number): { buffer: Uint8Array; at: number } {
    if (this.used + bytes > this.buf.length) {
      this.flush();
      if (bytes > this.buf.length) {
        this.buf = new Uint8Array(bytes);
        this.view = new DataView(this.buf.buffer);
      }
    }
    return { buffer: this.buf, at: this.used };
  }

  /** After reserve(): blocks up to `end` of the buffer are written and hold `packets` packets. */
  commit(end: number, packets: number): void {
    if (end < this.used || end > this.buf.length) throw new RangeError(`pcapng: commit to ${end} outside ${this.used}..${this.buf.length}`);
    this.used = end;
    this.packets += packets;
  }

  /** Same, with the timestamp as a number of ns/us (exact up to 2^53) or a bigint. */
  write(ifaceId: number, timestamp: number | bigint, data: Uint8Array, origLen = data.length): void {
    if (typeof timestamp === 'bigint') {
      this.writePacket(ifaceId, Number(timestamp >> 32n), Number(timestamp & 0xffffffffn), data, origLen);
    } else {
      this.writePacket(ifaceId, Math.floor(timestamp / TWO_32), timestamp % TWO_32, data, origLen);
    }
  }

  flush(): void {
    if (this.used === 0) return;
    this.emit(this.buf.subarray(0, this.used));
    this.used = 0;
  }

  /**
   * Lends the file to another writer (PacketPcapngEncoder.capture()'s native thread): what
   * is buffered is written first. undefined for writers made with fd -1. Until appended()
   * the borrower alone writes.
   */
  lendFd(): number | undefined {
    this.flush();
    return this.fd >= 0 ? this.fd : undefined;
  }

  /** After lendFd(): the borrower appended `bytes` of blocks holding `packets` packets. */
  appended(bytes: number, packets: number): void {
    this.bytes += bytes;
    this.packets += packets;
  }

  /** Everything written, for writers made with fd -1. */
  toBytes(): Uint8Array {
    this.flush();
    const total = this.chunks.reduce((n, c) => n + c.length, 0);
    const out = new Uint8Array(total);
    let at = 0;
    for (const c of this.chunks) { out.set(c, at); at += c.length; }
    return out;
  }

  close(): void {
    this.flush();
    if (this.ownsFd && this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
  }
}

/** Reads back the blocks of a pcapng file (for tests and tools): interfaces and packets. */
export function readPcapng(bytes: Uint8Array): { interfaces: Array<{ linkType: number; snaplen: number; name?: string; tsresol?: number }>; packets: Array<{ iface: number; tsHigh: number; tsLow: number; capLen: number; origLen: number; data: Uint8Array }> } {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const interfaces: Array<{ linkType: number; snaplen: number; name?: string; tsresol?: number }> = [];
  const packets: Array<{ iface: number; tsHigh: number; tsLow: number; capLen: number; origLen: number; data: Uint8Array }> = [];
  let at = 0;
  while (at + 12 <= bytes.length) {
    const type = view.getUint32(at, true);
    const len = view.getUint32(at + 4, true);
    if (len < 12 || len % 4 !== 0 || at + len > bytes.length || view.getUint32(at + len - 4, true) !== len) throw new PcapngError(`pcapng: bad block length ${len} at ${at}`);
    const least = type === SHB ? 28 : type === IDB ? 20 : type === EPB ? 32 : 12;
    if (len < least) throw new PcapngError(`pcapng: block of type ${type} at ${at} is ${len} bytes, shorter than its ${least}-byte minimum`);
    if (type === SHB && view.getUint32(at + 8, true) !== BYTE_ORDER_MAGIC) throw new PcapngError('pcapng: bad byte-order magic');
    if (type === IDB) {
      const iface: { linkType: number; snaplen: number; name?: string; tsresol?: number } = { linkType: view.getUint16(at + 8, true), snaplen: view.getUint32(at + 12, true) };
      let o = at + 16;
      while (o + 4 <= at + len - 4) {
        const code = view.getUint16(o, true);
        const olen = view.getUint16(o + 2, true);
        if (code === 0) break;
        if (o + 4 + olen > at + len - 4) throw new PcapngError(`pcapng: option ${code} at ${o} overruns its block`);
        const value = bytes.subarray(o + 4, o + 4 + olen);
        if (code === 2) iface.name = new TextDecoder().decode(value);
        if (code === 9) iface.tsresol = value[0]!;
        o += 4 + pad4(olen);
      }
      interfaces.push(iface);
    } else if (type === EPB) {
      const capLen = view.getUint32(at + 20, true);
      if (capLen > len - 32) throw new PcapngError(`pcapng: packet at ${at} claims ${capLen} captured bytes in a ${len}-byte block`);
      packets.push({ iface: view.getUint32(at + 8, true), tsHigh: view.getUint32(at + 12, true), tsLow: view.getUint32(at + 16, true), capLen, origLen: view.getUint32(at + 24, true), data: bytes.slice(at + 28, at + 28 + capLen) });
    }
    at += len;
  }
  return { interfaces, packets };
}
