// SPDX-License-Identifier: MIT
// Architecture-specific paths of BPF tracing, run on every architecture of the kernel
// matrix (x86-64 and arm64): PT_REGS argument and return-value access in kprobes, ksyscall
// programs and uprobes, and the syscall tracepoints' layouts and syscall numbers. One
// connect() of this process to a loopback server is seen through each of them.
import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import net from 'node:net';
import { once } from 'node:events';
import { BpfObject, NotSupportedError } from '../lib/bpf';
import { bpfAvailable, BUILD_BPF, libcPath, objectPath } from './helpers/bpf';
import { listen } from './helpers/listen';

const enabled = bpfAvailable('arch');
const hasKprobes = fs.existsSync('/sys/bus/event_source/devices/kprobe');

/** connect(2)'s number on this architecture (arch/x86/entry/syscalls, include/uapi/asm-generic/unistd.h). */
const CONNECT_NR: Record<string, number> = { x64: 42, arm64: 203 };

/** Connects, returns the socket's fd, closes. */
async function connect(port: number): Promise<number> {
  const socket = net.connect({ port, host: '127.0.0.1' });
  await once(socket, 'connect');
  const fd = (socket as unknown as { _handle: { fd: number } })._handle.fd;
  socket.end();
  socket.resume();
  await once(socket, 'close');
  return fd;
}

describe.skipIf(!enabled)(`architecture-specific tracing (${process.arch})`, () => {
  it('syscall tracepoints: struct layouts and the syscall number; uprobe arguments and return value through PT_REGS', async () => {
    const server = await listen();
    const port = (server.address() as net.AddressInfo).port;
    try {
      using obj = BpfObject.open(objectPath('arch_probe'), { globals: { target_tgid: process.pid, target_port: port } });
      for (const p of ['kprobe_connect', 'ksyscall_connect']) obj.program(p).autoload = false;
      obj.load();
      obj.program('tp_enter_connect').attach();
      obj.program('raw_enter').attach();
      const libc = libcPath();
      obj.program('uprobe_connect').attachUprobe(libc, { function: 'connect', pid: process.pid });
      obj.program('uretprobe_connect').attachUprobe(libc, { function: 'connect', pid: process.pid, retprobe: true });
      const fd = await connect(port);

      const nr = CONNECT_NR[process.arch];
      expect(nr, `connect's number on ${process.arch}`).toBeDefined();
      expect(obj.global<bigint>('tp_nr')).toBe(BigInt(nr!));
      expect(obj.global<bigint>('tp_fd')).toBe(BigInt(fd));
      expect(obj.global<bigint>('tp_addrlen')).toBe(16n);
      expect(obj.global<bigint>('raw_id')).toBe(BigInt(nr!));
      expect(obj.global<bigint>('uprobe_fd')).toBe(BigInt(fd));
      expect(obj.global<bigint>('uprobe_addrlen')).toBe(16n);
      // A non-blocking connect: 0, or -1 with EINPROGRESS.
      expect(obj.global<bigint>('uretprobe_calls')).toBe(1n);
      expect([0n, -1n]).toContain(obj.global<bigint>('uretprobe_ret'));
    } finally {
      server.close();
    }
  });

  it.runIf(hasKprobes)('kprobe and ksyscall arguments through PT_REGS (syscall wrappers included)', async () => {
    const server = await listen();
    const port = (server.address() as net.AddressInfo).port;
    try {
      using obj = BpfObject.open(objectPath('arch_probe'), { globals: { target_tgid: process.pid, target_port: port } });
      for (const p of ['tp_enter_connect', 'raw_enter', 'uprobe_connect', 'uretprobe_connect']) obj.program(p).autoload = false;
      obj.load();
      obj.program('kprobe_connect').attach();
      obj.program('ksyscall_connect').attach();
      const fd = await connect(port);
      expect(obj.global<bigint>('kprobe_addrlen')).toBe(16n);
      expect(obj.global<bigint>('kprobe_port')).toBe(BigInt(port));
      expect(obj.global<bigint>('ksyscall_fd')).toBe(BigInt(fd));
      expect(obj.global<bigint>('ksyscall_addrlen')).toBe(16n);
    } finally {
      server.close();
    }
  });

  it.runIf(!hasKprobes)('kprobes: a clear error on a kernel without them', () => {
    using obj = BpfObject.open(objectPath('arch_probe'), { globals: { target_tgid: process.pid } });
    for (const p of ['tp_enter_connect', 'raw_enter', 'uprobe_connect', 'uretprobe_connect']) obj.program(p).autoload = false;
    obj.load();
    expect(() => obj.program('kprobe_connect').attach()).toThrow(NotSupportedError);
    expect(() => obj.program('ksyscall_connect').attach()).toThrow(/no kprobes/);
  });
});

// An LPM trie keeps each value right after its key's data (lpm_trie_node.data + key size - 4),
// so 64-bit fields of the value are 8-aligned only when that data is. arm64's atomics
// (LDXR/STXR, LSE) fault on a misaligned address, x86-64's do not: the guard's IPv4 trie had
// 4 bytes of data and oopsed arm64 kernels on its first matched packet. Checked in every
// object the build makes (opening an object needs no privilege).
describe('map layouts that arm64 atomics need', () => {
  it('every LPM trie with 8-byte value fields has key data of a multiple of 8 bytes', () => {
    const objects = fs.readdirSync(BUILD_BPF).filter((f) => f.endsWith('.bpf.o'));
    const tries: string[] = [];
    for (const file of objects) {
      using obj = BpfObject.open(`${BUILD_BPF}/${file}`);
      for (const m of obj.mapInfos().filter((i) => i.typeName === 'lpm_trie')) {
        tries.push(`${file}:${m.name}`);
        if (m.valueSize >= 8) expect((m.keySize - 4) % 8, `${file}: map ${m.name} has ${m.keySize - 4} bytes of key data`).toBe(0);
      }
    }
    expect(tries).toContain('guard.bpf.o:guard_v4');
  });
});
