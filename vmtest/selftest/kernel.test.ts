// SPDX-License-Identifier: MIT
// Placeholder integration test for the VM machinery (vmtest/README.md): it
// checks that the guest runs the kernel vmtest/run booted and that the BPF
// environment the real suite expects is set up. Outside a vmtest guest
// (VMTEST_KERNEL_RELEASE unset) every test is skipped.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { describe, expect, it } from 'vitest';

const expected = process.env.VMTEST_KERNEL_RELEASE;

describe.skipIf(!expected)('vmtest guest', () => {
  it('runs the expected kernel', () => {
    expect(execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim()).toBe(expected);
    expect(os.release()).toBe(expected);
  });

  it('is root with BTF, bpffs, tracefs and the kprobe PMU', () => {
    expect(process.getuid?.()).toBe(0);
    expect(existsSync('/sys/kernel/btf/vmlinux')).toBe(true);
    const mounts = readFileSync('/proc/mounts', 'utf8');
    expect(mounts).toMatch(/ \/sys\/fs\/bpf bpf /);
    expect(mounts).toMatch(/ \/sys\/kernel\/tracing tracefs /);
    expect(mounts).toMatch(/ \/sys\/fs\/cgroup cgroup2 /);
    expect(existsSync('/sys/bus/event_source/devices/kprobe')).toBe(true);
  });

  it('gets TCPSCOPE_* from the host', () => {
    expect(process.env.TCPSCOPE_REQUIRE_BPF).toBe('1');
  });
});
