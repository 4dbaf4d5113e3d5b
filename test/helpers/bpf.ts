// SPDX-License-Identifier: MIT
// Gatekeeping for integration tests: skip with a printed reason without BPF privileges,
// fail instead when TCPSCOPE_REQUIRE_BPF=1 (CI).
import path from 'node:path';
import fs from 'node:fs';
import { bpfPrivilege } from '../../lib/bpf/sys';

export const ROOT = path.resolve(__dirname, '..', '..');
export const BUILD_BPF = path.join(ROOT, 'build', 'bpf');

export function objectPath(name: string): string {
  return path.join(BUILD_BPF, `${name}.bpf.o`);
}

/** Whether BPF integration tests can run here; prints why not, or throws under CI. */
export function bpfAvailable(suite: string): boolean {
  const priv = bpfPrivilege();
  let reason: string | undefined = priv.ok ? undefined : priv.reason;
  if (!reason && !fs.existsSync(path.join(ROOT, 'build', 'Release', 'tcpscope.node'))) reason = 'the addon is not built (npm run build)';
  if (!reason && !fs.existsSync('/sys/kernel/btf/vmlinux')) reason = 'the kernel has no BTF (/sys/kernel/btf/vmlinux)';
  if (!reason) return true;
  if (process.env.TCPSCOPE_REQUIRE_BPF === '1') {
    throw new Error(`${suite}: BPF tests cannot run (${reason}) but TCPSCOPE_REQUIRE_BPF=1 requires them`);
  }
  console.warn(`[skip] ${suite}: ${reason}`);
  return false;
}

/** Polls `probe` until it returns a truthy value or `ms` pass. */
export async function eventually<T>(probe: () => T | Promise<T>, ms = 5000, what = 'condition'): Promise<NonNullable<T>> {
  const deadline = Date.now() + ms;
  let last: T | undefined;
  while (Date.now() < deadline) {
    last = await probe();
    if (last) return last as NonNullable<T>;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what} (last value: ${String(last)})`);
}

/** The C library this process runs with (for uprobes), from its memory map: the guest's own on every architecture. */
export function libcPath(): string {
  const maps = fs.readFileSync('/proc/self/maps', 'utf8');
  const m = /\s(\/\S*\/libc\.so\.6)$/m.exec(maps) ?? /\s(\/\S*\/libc[-.][\d.]*so\S*)$/m.exec(maps);
  if (!m) throw new Error('libc not found in /proc/self/maps');
  return m[1]!;
}
