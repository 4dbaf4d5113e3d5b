// SPDX-License-Identifier: MIT
// The capabilities of this process, from /proc/self/status.
import fs from 'node:fs';

const CAPABILITY_BITS = { CAP_NET_ADMIN: 12, CAP_SYS_ADMIN: 21, CAP_PERFMON: 38, CAP_BPF: 39 } as const;
export type Capability = keyof typeof CAPABILITY_BITS;
/** What tcpscope needs when it is not root (CAP_SYS_ADMIN, i.e. root, covers them all). */
export const BPF_CAPABILITIES: readonly Capability[] = ['CAP_BPF', 'CAP_PERFMON', 'CAP_NET_ADMIN'];

/** Whether this process holds `cap` in its effective set. */
export function hasCapability(cap: Capability): boolean {
  try {
    const hex = /CapEff:\s*([0-9a-f]+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'))?.[1] ?? '0';
    return (BigInt(`0x${hex}`) & (1n << BigInt(CAPABILITY_BITS[cap]))) !== 0n;
  } catch {
    return false;
  }
}

/** The capabilities of BPF_CAPABILITIES this process lacks (none when it has CAP_SYS_ADMIN). */
export function missingBpfCapabilities(): Capability[] {
  if (hasCapability('CAP_SYS_ADMIN')) return [];
  return BPF_CAPABILITIES.filter((c) => !hasCapability(c));
}
