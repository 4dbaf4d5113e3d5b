// SPDX-License-Identifier: MIT
// What the guard must not cut off by mistake: every address at once, the peers of
// established connections to local listeners (the SSH session among them), the default
// gateways. Read from the kernel's own tables (/proc/net/tcp{,6}, /proc/net/route,
// /proc/net/ipv6_route) of this process's network namespace, and from $SSH_CONNECTION.
import fs from 'node:fs';
import net from 'node:net';
import { AF_INET, AF_INET6, Cidr, cidrContains, formatAddress, parseCidr } from '../net/addr';

/** An address the guard refuses to deny without force, and why. */
export interface ProtectedAddress {
  address: string;
  family: 2 | 10;
  /** 16 bytes, IPv4 in the first 4. */
  bytes: Uint8Array;
  /** e.g. 'the client of this SSH session', 'the default gateway'. */
  reason: string;
}

/** A deny refused by a safety rule; the message is one line naming the rule and the override. */
export class GuardSafetyError extends Error {
  readonly code = 'EGUARDSAFETY';
  constructor(readonly cidr: string, readonly reason: string) {
    super(`refusing to deny ${cidr}: ${reason} (pass --force, or force: true, to deny it anyway)`);
    this.name = 'GuardSafetyError';
  }
}

const TCP_ESTABLISHED = '01';
const TCP_LISTEN = '0A';

/** An address as /proc/net/tcp{,6} and the route tables print it: 32-bit words in host (little-endian) order. */
function procAddress(hex: string): { family: 2 | 10; bytes: Uint8Array } {
  const bytes = new Uint8Array(16);
  for (let w = 0; w < hex.length / 8; w++) {
    const word = parseInt(hex.slice(w * 8, w * 8 + 8), 16);
    for (let b = 0; b < 4; b++) bytes[w * 4 + b] = (word >>> (8 * b)) & 0xff;
  }
  if (hex.length === 8) return { family: AF_INET, bytes };
  // IPv4-mapped (::ffff:a.b.c.d): the IPv4 address.
  if (bytes.subarray(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff) {
    const v4 = new Uint8Array(16);
    v4.set(bytes.subarray(12, 16));
    return { family: AF_INET, bytes: v4 };
  }
  return { family: AF_INET6, bytes };
}

function readLines(file: string): string[] {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').slice(1).filter(Boolean);
  } catch {
    return [];
  }
}

function entry(family: 2 | 10, bytes: Uint8Array, reason: string): ProtectedAddress {
  return { address: formatAddress(bytes, family), family, bytes, reason };
}

/** Peers of established TCP connections whose local port is a listening port (connections this host accepted). */
export function establishedPeers(): ProtectedAddress[] {
  const rows = [...readLines('/proc/net/tcp'), ...readLines('/proc/net/tcp6')].map((l) => l.trim().split(/\s+/));
  const listening = new Set<string>();
  for (const r of rows) if (r[3] === TCP_LISTEN) listening.add(r[1]!.split(':')[1]!);
  const seen = new Map<string, ProtectedAddress>();
  for (const r of rows) {
    if (r[3] !== TCP_ESTABLISHED) continue;
    const [, localPort] = r[1]!.split(':') as [string, string];
    if (!listening.has(localPort)) continue;
    const [remHex] = r[2]!.split(':') as [string];
    const { family, bytes } = procAddress(remHex);
    const e = entry(family, bytes, `it holds ${formatAddress(bytes, family)}, the peer of an established connection to local port ${parseInt(localPort, 16)}`);
    if (!seen.has(e.address)) seen.set(e.address, e);
  }
  return [...seen.values()];
}

/** The client of this process's SSH session ($SSH_CONNECTION: client, its port, server, its port). */
export function sshClient(env: NodeJS.ProcessEnv = process.env): ProtectedAddress | undefined {
  const client = env['SSH_CONNECTION']?.trim().split(/\s+/)[0];
  if (!client || net.isIP(client) === 0) return undefined;
  const c = parseCidr(client);
  return entry(c.family, c.addr, `it holds ${formatAddress(c.addr, c.family)}, the client of this SSH session ($SSH_CONNECTION)`);
}

/** Gateways of the default routes (IPv4 and IPv6). */
export function defaultGateways(): ProtectedAddress[] {
  const out: ProtectedAddress[] = [];
  for (const l of readLines('/proc/net/route')) {
    const f = l.trim().split(/\s+/); // Iface Destination Gateway Flags RefCnt Use Metric Mask ...
    if (f[1] === '00000000' && f[7] === '00000000' && f[2] && f[2] !== '00000000') {
      const { family, bytes } = procAddress(f[2]);
      out.push(entry(family, bytes, `it holds ${formatAddress(bytes, family)}, the default gateway (${f[0]})`));
    }
  }
  // /proc/net/ipv6_route has its addresses in network order, and a header-less format.
  let v6 = '';
  try { v6 = fs.readFileSync('/proc/net/ipv6_route', 'utf8'); } catch { /* no IPv6 */ }
  for (const l of v6.split('\n')) {
    const f = l.trim().split(/\s+/); // dest plen src plen nexthop metric refcnt use flags iface
    if (f.length < 10 || f[0] !== '0'.repeat(32) || f[1] !== '00' || f[4] === '0'.repeat(32)) continue;
    const bytes = Uint8Array.from(f[4]!.match(/../g)!.map((h) => parseInt(h, 16)));
    out.push(entry(AF_INET6, bytes, `it holds ${formatAddress(bytes, AF_INET6)}, the default gateway (${f[9]})`));
  }
  return out;
}

/** Every address the guard protects now: the SSH client, established peers, default gateways. */
export function protectedAddresses(): ProtectedAddress[] {
  const ssh = sshClient();
  return [...(ssh ? [ssh] : []), ...establishedPeers(), ...defaultGateways()];
}

/** Why denying `c` would be unsafe, or undefined. */
export function denyProblem(c: Cidr, protectedList: readonly ProtectedAddress[]): string | undefined {
  if (c.prefixLen === 0) return `it covers every ${c.family === AF_INET6 ? 'IPv6' : 'IPv4'} address`;
  for (const p of protectedList) if (cidrContains(c, p.bytes, p.family)) return p.reason;
  return undefined;
}

/** denyProblem over a fixed list, with single addresses (bulk lists are mostly those) looked up in O(1). */
export class SafetyIndex {
  private readonly v4 = new Map<number, string>();
  private readonly v6 = new Map<string, string>();

  constructor(readonly list: readonly ProtectedAddress[]) {
    for (const p of list) {
      if (p.family === AF_INET) { if (!this.v4.has(v4Key(p.bytes))) this.v4.set(v4Key(p.bytes), p.reason); }
      else if (!this.v6.has(v6Key(p.bytes))) this.v6.set(v6Key(p.bytes), p.reason);
    }
  }

  problem(c: Cidr): string | undefined {
    if (c.family === AF_INET && c.prefixLen === 32) return this.v4.get(v4Key(c.addr));
    if (c.family === AF_INET6 && c.prefixLen === 128) return this.v6.get(v6Key(c.addr));
    return denyProblem(c, this.list);
  }
}

function v4Key(b: Uint8Array): number {
  return ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
}

function v6Key(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, 16).toString('hex');
}

/** True when `address` lies in one of `ranges`. */
export function inRanges(address: string, ranges: readonly Cidr[]): boolean {
  if (net.isIP(address) === 0) return false;
  const a = parseCidr(address);
  return ranges.some((r) => cidrContains(r, a.addr, a.family));
}
