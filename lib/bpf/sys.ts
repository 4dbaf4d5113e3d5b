// SPDX-License-Identifier: MIT
// Kernel filesystems and facts the runtime depends on. Mounted on demand, never assumed.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { BpfError, BpfPermissionError } from './errors';
import { hasCapability, missingBpfCapabilities } from './caps';

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

/**
 * Creates a mount point directory (and its parents) one level at a time. Not
 * mkdirSync({ recursive }): in a sysfs mounted afresh (as `ip netns exec` does) mkdir under
 * /sys fails with ENOENT although the parent exists, and Node's recursive mkdir then retries
 * forever.
 */
function makeMountPoint(dir: string): void {
  if (fs.existsSync(dir)) return;
  makeMountPoint(path.dirname(dir));
  try {
    fs.mkdirSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new BpfError(`cannot create the mount point ${dir}: ${(e as Error).message}`);
  }
}

function mount(type: string, dir: string): void {
  if (!hasCapability('CAP_SYS_ADMIN')) {
    throw new BpfPermissionError(`${type} is not mounted at ${dir}, and mounting it needs root (CAP_SYS_ADMIN): have it mounted once as root (mount -t ${type} ${type} ${dir}, or at boot in /etc/fstab)`);
  }
  makeMountPoint(dir);
  try {
    execFileSync('mount', ['-t', type, type, dir], { stdio: 'pipe' });
  } catch (e) {
    const stderr = (e as { stderr?: Buffer }).stderr?.toString().trim().split('\n')[0];
    throw new BpfError(`cannot mount ${type} at ${dir}${stderr ? ` (${stderr})` : ''}: mount it as root: mount -t ${type} ${type} ${dir}`);
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

/**
 * Where tracefs is, and whether this process can read it. tracefs is mode 0700 (root only)
 * on current kernels: a process with capabilities but not root sees it mounted and cannot
 * read it, which is not the same as its being absent.
 */
export function tracefsStatus(): { state: 'readable' | 'unreadable'; dir: string } | { state: 'unmounted' } {
  for (const dir of TRACEFS_CANDIDATES) {
    if (fsTypeOf(dir) !== 'tracefs') continue;
    try {
      fs.accessSync(path.join(dir, 'events'), fs.constants.R_OK | fs.constants.X_OK);
      return { state: 'readable', dir };
    } catch {
      return { state: 'unreadable', dir };
    }
  }
  return { state: 'unmounted' };
}

/** Returns the tracefs mount, mounting it at /sys/kernel/tracing if nothing is mounted (as root). */
export function ensureTracefs(): string {
  const status = tracefsStatus();
  if (status.state === 'readable') return status.dir;
  if (status.state === 'unreadable') {
    throw new BpfPermissionError(`tracefs at ${status.dir} is not readable by this user (uid ${process.getuid?.() ?? '?'}; it is root-only): ` +
      `run as root, or let this user's group read it (mount -o remount,gid=GROUP,mode=750 ${status.dir})`);
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
  // Nothing mounted at /sys/fs/cgroup (a sysfs mounted afresh, as `ip netns exec` does:
  // its mount namespace is private, so the mount goes with it): mount cgroup2 there.
  // Otherwise beside a cgroup v1 hierarchy, at /sys/fs/cgroup/unified as systemd does.
  const top = '/sys/fs/cgroup';
  const free = fsTypeOf(top) === undefined && fs.existsSync(top) && fs.readdirSync(top).length === 0;
  const dir = free ? top : `${top}/unified`;
  mount('cgroup2', dir);
  return dir;
}

export { BPF_CAPABILITIES, hasCapability, missingBpfCapabilities } from './caps';
export type { Capability } from './caps';
/** True when this process can load BPF programs; otherwise the reason. */
export function bpfPrivilege(): { ok: true } | { ok: false; reason: string } {
  if (process.platform !== 'linux') return { ok: false, reason: 'eBPF needs Linux' };
  const missing = missingBpfCapabilities();
  if (!missing.length) return { ok: true };
  return { ok: false, reason: `this process lacks ${missing.join(', ')} (it needs root, or CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN)` };
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
  if (process.platform !== 'linux' || hasCapability('CAP_SYS_ADMIN')) return undefined;
  return kernelBtfPath();
}
