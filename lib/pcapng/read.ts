// SPDX-License-Identifier: MIT
// Reads the packets of a capture file, pcap (tcpdump -w's default, µs or ns) or pcapng
// (tcpscope packets -w, Wireshark), for `tcpscope packets -r` and the filter tests.
import { LINKTYPE_ETHERNET, LINKTYPE_RAW, readPcapng } from './index';

export const LINKTYPE_LINUX_SLL = 113;
export const LINKTYPE_LINUX_SLL2 = 276;

export interface CaptureFrame {
  /** Captured bytes, as in the file. */
  data: Uint8Array;
  /** Length on the wire (may exceed data.length when the capture was truncated). */
  origLen: number;
  /** Wall-clock time, ns since the epoch. */
  tsNs: bigint;
  linkType: number;
  /** Interface name when the file records one. */
  ifname: string | undefined;
}

export class CaptureFormatError extends Error {
  override readonly name = 'CaptureFormatError';
}

const PCAP_US = 0xa1b2c3d4;
const PCAP_NS = 0xa1b23c4d;
const PCAPNG_SHB = 0x0a0d0d0a;

/** Every packet of a pcap or pcapng file's bytes. */
export function readCapture(bytes: Uint8Array): CaptureFrame[] {
  if (bytes.length < 4) throw new CaptureFormatError('not a capture file: shorter than any pcap or pcapng header');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magicLe = view.getUint32(0, true);
  if (magicLe === PCAPNG_SHB) return readNg(bytes);
  for (const le of [true, false]) {
    const magic = view.getUint32(0, le);
    if (magic !== PCAP_US && magic !== PCAP_NS) continue;
    if (bytes.length < 24) throw new CaptureFormatError('truncated pcap header');
    const nano = magic === PCAP_NS;
    const linkType = view.getUint32(20, le) & 0xffff;
    const frames: CaptureFrame[] = [];
    let at = 24;
    while (at + 16 <= bytes.length) {
      const sec = view.getUint32(at, le), frac = view.getUint32(at + 4, le);
      const capLen = view.getUint32(at + 8, le), origLen = view.getUint32(at + 12, le);
      if (at + 16 + capLen > bytes.length) throw new CaptureFormatError(`truncated packet ${frames.length + 1} at byte ${at}`);
      frames.push({ data: bytes.subarray(at + 16, at + 16 + capLen), origLen, tsNs: BigInt(sec) * 1_000_000_000n + BigInt(frac) * (nano ? 1n : 1000n), linkType, ifname: undefined });
      at += 16 + capLen;
    }
    return frames;
  }
  throw new CaptureFormatError('not a pcap or pcapng file (unknown magic number)');
}

function readNg(bytes: Uint8Array): CaptureFrame[] {
  let parsed: ReturnType<typeof readPcapng>;
  try {
    parsed = readPcapng(bytes);
  } catch (e) {
    throw new CaptureFormatError((e as Error).message);
  }
  return parsed.packets.map((p) => {
    const iface = parsed.interfaces[p.iface];
    if (!iface) throw new CaptureFormatError(`pcapng: packet on undeclared interface ${p.iface}`);
    const units = BigInt(p.tsHigh) * 2n ** 32n + BigInt(p.tsLow);
    const res = iface.tsresol ?? 6;
    const perSec = res & 0x80 ? 2n ** BigInt(res & 0x7f) : 10n ** BigInt(res);
    return { data: p.data, origLen: p.origLen, tsNs: (units * 1_000_000_000n) / perSec, linkType: iface.linkType, ifname: iface.name };
  });
}

/**
 * The frame as an Ethernet frame (what the packet program parses): Ethernet as is; raw IP
 * and Linux cooked captures (tcpdump -i any) get a synthesized Ethernet header. undefined
 * for link types without IP.
 */
export function asEthernet(frame: CaptureFrame): Uint8Array | undefined {
  const eth = (etherType: number, payload: Uint8Array): Uint8Array => {
    const out = new Uint8Array(14 + payload.length);
    out[12] = etherType >> 8;
    out[13] = etherType & 0xff;
    out.set(payload, 14);
    return out;
  };
  const d = frame.data;
  switch (frame.linkType) {
    case LINKTYPE_ETHERNET: return d;
    case LINKTYPE_RAW: {
      const v = d[0]! >> 4;
      return v === 4 ? eth(0x0800, d) : v === 6 ? eth(0x86dd, d) : undefined;
    }
    case LINKTYPE_LINUX_SLL: return d.length >= 16 ? eth((d[14]! << 8) | d[15]!, d.subarray(16)) : undefined;
    case LINKTYPE_LINUX_SLL2: return d.length >= 20 ? eth((d[0]! << 8) | d[1]!, d.subarray(20)) : undefined;
    default: return undefined;
  }
}
