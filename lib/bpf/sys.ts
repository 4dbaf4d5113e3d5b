// SPDX-License-Identifier: MIT
// Kernel filesystems and facts the runtime depends on. Mounted on demand, never assumed.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export const BPFFS = '/sys/fs/bpf';
export const TRACEFS_CANDIDATES = ['/sys/kernel/tracing', '/sys/kernel/debug/tracing'];
/** Where tcpscope pins what must outlive one call, and what `tcpscope cleanup` sweeps. */
export const PIN_ROOT = `${BPFFS}/tcpscope`;

function fsTypeOf(dir: string): string | undefined {
  try {
    const mounts = fs.readFileSync('/proc/self/mounts', 'utf8').split('\n');
    let found: string | undefined;
    for (const line of mounts) {
      const [, mountPoint, type] = line.split(' ');
      if (mountPoint === dir) found = type;
    }
    return found;
  } catch {
    return undefined;
  }
}

function mount(type: string, dir: string): void {
  fs.mkdirSync(dir, { recursive: true });
  try {
    execFileSync('mount', ['-t', type, type, dir], { stdio: 'pipe' });
  } catch (e) {
    const stderr = (e as { stderr?: Buffer }).stderr?.toString().trim();
    throw new Error(`cannot mount ${type} at ${dir}${stderr ? `: ${stderr}` : ''}. Mount it as root: mount -t ${type} ${type} ${dir}`);
  }
}

/** Makes sure the bpffs holding `pinPath` (default /sys/fs/bpf) is mounted; returns its root. */
export function ensureBpffs(pinPath: string = BPFFS): string {
  if (!pinPath.startsWith(`${BPFFS}/`) && pinPath !== BPFFS) {
    fs.mkdirSync(path.dirname(pinPath), { recursive: true });
    return path.dirname(pinPath);
  }
  if (fsTypeOf(BPFFS) !== 'bpf') mount('bpf', BPFFS);
  if (pinPath !== BPFFS) fs.mkdirSync(path.dirname(pinPath), { recursive: true });
  return BPFFS;
}

/** Returns the tracefs mount, mounting it at /sys/kernel/tracing if nothing is mounted. */
export function ensureTracefs(): string {
  for (const dir of TRACEFS_CANDIDATES) {
    if (fs.existsSync(path.join(dir, 'trace_pipe'))) return dir;
  }
  mount('tracefs', TRACEFS_CANDIDATES[0]!);
  return TRACEFS_CANDIDATES[0]!;
}

/** The cgroup v2 root (unified hierarchy), e.g. /sys/fs/cgroup or /sys/fs/cgroup/unified. */
export function cgroup2Root(): string {
  const mounts = fs.readFileSync('/proc/self/mounts', 'utf8').split('\n');
  for (const line of mounts) {
    const [, mountPoint, type] = line.split(' ');
    if (type === 'cgroup2' && mountPoint) return mountPoint;
  }
  const dir = '/sys/fs/cgroup/unified';
  mount('cgroup2', dir);
  return dir;
}

const CAP_NET_ADMIN = 12, CAP_SYS_ADMIN = 21, CAP_PERFMON = 38, CAP_BPF = 39;

/** Whether this process has capability `bit` in its effective set. */
function hasCapability(bit: number): boolean {
  const status = fs.readFileSync('/proc/self/status', 'utf8');
  const hex = /CapEff:\s*([0-9a-f]+)/.exec(status)?.[1] ?? '0';
  return (BigInt(`0x${hex}`) & (1n << BigInt(bit))) !== 0n;
}

/** True when this process can load BPF programs; otherwise the reason. */
export function bpfPrivilege(): { ok: true } | { ok: false; reason: string } {
  if (process.platform !== 'linux') return { ok: false, reason: 'eBPF needs Linux' };
  const has = hasCapability;
  if (has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON) && has(CAP_NET_ADMIN))) return { ok: true };
  return { ok: false, reason: 'needs root or CAP_BPF + CAP_PERFMON + CAP_NET_ADMIN (this process has neither)' };
}

/** True when the running kernel exposes its BTF. */
export function kernelBtfPath(): string | undefined {
  return fs.existsSync('/sys/kernel/btf/vmlinux') ? '/sys/kernel/btf/vmlinux' : undefined;
}

/**
 * The BTF to relocate CO-RE objects against when none is given: the kernel's own, when this
 * process lacks CAP_SYS_ADMIN. Listing the kernel modules' BTF (which libbpf does when a type
 * has no candidate in vmlinux, e.g. a compatibility flavour like `___old`) needs CAP_SYS_ADMIN,
 * and libbpf before 1.2 (Debian 12's, the prebuilt addon's) then fails the whole load with
 * EPERM; naming vmlinux's BTF keeps it to vmlinux, as later libbpf does by itself.
 */
export function defaultBtfCustomPath(): string | undefined {
  if (process.platform !== 'linux' || hasCapability(CAP_SYS_ADMIN)) return undefined;
  return kernelBtfPath();
}
