// SPDX-License-Identifier: MIT
// Addresses as tcpscope events carry them: 16 bytes, IPv4 in the first 4 (family 2) or
// a full IPv6 address (family 10).
import net from 'node:net';
import { parseIp } from '../bpf/packet';

export const AF_INET = 2;
export const AF_INET6 = 10;

/** Formats an event address; IPv4-mapped IPv6 addresses print as IPv4. */
/** `addr:port`, or `[addr]:port` for an IPv6 address (as in URLs and `ss`). */
export function formatEndpoint(addr: string, port: number): string {
  return addr.includes(':') ? `[${addr}]:${port}` : `${addr}:${port}`;
}

export function formatAddress(bytes: Uint8Array, family: number): string {
  if (family === AF_INET) return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  if (groups.slice(0, 5).every((g) => g === '0') && groups[5] === 'ffff') {
    return `${bytes[12]}.${bytes[13]}.${bytes[14]}.${bytes[15]}`;
  }
  // Compress the longest run of zero groups (RFC 5952).
  let bestStart = -1, bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') { i++; continue; }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen && j - i > 1) { bestStart = i; bestLen = j - i; }
    i = j;
  }
  if (bestStart < 0) return groups.join(':');
  return `${groups.slice(0, bestStart).join(':')}::${groups.slice(bestStart + bestLen).join(':')}`;
}

/** A CIDR range parsed and validated: `10.0.0.0/8`, `fd00::/64`, or a single address. */
export interface Cidr {
  family: 2 | 10;
  /** 16 bytes; IPv4 in the first 4. */
  addr: Uint8Array;
  prefixLen: number;
  text: string;
}

export function parseCidr(text: string): Cidr {
  const [address, prefix] = text.split('/') as [string, string | undefined];
  if (!address || net.isIP(address) === 0) throw new TypeError(`bad address in '${text}': expected an IPv4 or IPv6 address, optionally with /prefix (e.g. 10.0.0.0/8, fd00::/64)`);
  const v6 = net.isIP(address) === 6;
  const max = v6 ? 128 : 32;
  const prefixLen = prefix === undefined ? max : Number(prefix);
  if (!Number.isInteger(prefixLen) || prefixLen < 0 || prefixLen > max || (prefix !== undefined && !/^\d+$/.test(prefix))) {
    throw new TypeError(`bad prefix length in '${text}': expected 0..${max}`);
  }
  const raw = parseIp(address);
  const addr = new Uint8Array(16);
  addr.set(raw);
  // Zero the host bits so equal ranges compare equal.
  for (let bit = prefixLen; bit < max; bit++) addr[bit >> 3]! &= ~(0x80 >> (bit & 7));
  return { family: v6 ? AF_INET6 : AF_INET, addr, prefixLen, text };
}

/** True when `bytes` (an event address) lies in `cidr`. */
export function cidrContains(cidr: Cidr, bytes: Uint8Array, family: number): boolean {
  if (family !== cidr.family) return false;
  for (let bit = 0; bit < cidr.prefixLen; bit++) {
    const mask = 0x80 >> (bit & 7);
    if ((bytes[bit >> 3]! & mask) !== (cidr.addr[bit >> 3]! & mask)) return false;
  }
  return true;
}

/** Validates a TCP/UDP port number. */
export function parsePort(value: string | number): number {
  const port = typeof value === 'number' ? value : /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new TypeError(`bad port '${String(value)}': expected 0..65535`);
  return port;
}
