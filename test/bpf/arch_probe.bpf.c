// SPDX-License-Identifier: GPL-2.0
// The architecture-specific paths of BPF tracing, for test/arch.test.ts on every
// architecture of the matrix: function arguments through PT_REGS in kprobes and uprobes
// (registers differ per arch), syscall arguments of a ksyscall program (arch syscall
// wrappers keep them in the inner pt_regs), and the syscall tracepoints' layouts and
// numbers. Each program records what it saw of one connect() by the test's process.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

const volatile __u32 target_tgid = 0;
const volatile __u16 target_port = 0; /* host order */

/* kprobe/tcp_v4_connect(struct sock *sk, struct sockaddr *uaddr, int addr_len) */
__u64 kprobe_addrlen = 0, kprobe_port = 0;
/* ksyscall/connect(int fd, struct sockaddr *uaddr, int addrlen) */
__u64 ksyscall_fd = ~0ULL, ksyscall_addrlen = 0;
/* uprobe on libc's connect(): the same arguments in user-space registers; its return value */
__u64 uprobe_fd = ~0ULL, uprobe_addrlen = 0, uretprobe_calls = 0;
__s64 uretprobe_ret = 1;
/* tracepoint/syscalls/sys_enter_connect: struct syscall_trace_enter { nr, args[] } */
__u64 tp_nr = 0, tp_fd = ~0ULL, tp_addrlen = 0;
/* tracepoint/raw_syscalls/sys_enter: struct trace_event_raw_sys_enter { id, args[6] } */
__u64 raw_id = 0;

static __always_inline int ours(void)
{
	return (bpf_get_current_pid_tgid() >> 32) == target_tgid;
}

/* The destination port of a struct sockaddr_in, from user or kernel memory. */
static __always_inline int to_target(const void *addr, int user)
{
	struct sockaddr_in sin = {};
	if (user)
		bpf_probe_read_user(&sin, sizeof(sin), addr);
	else
		bpf_probe_read_kernel(&sin, sizeof(sin), addr);
	return sin.sin_family == 2 /* AF_INET */ && sin.sin_port == bpf_htons(target_port);
}

SEC("kprobe/tcp_v4_connect")
int BPF_KPROBE(kprobe_connect, struct sock *sk, struct sockaddr *uaddr, int addr_len)
{
	if (!ours() || !to_target(uaddr, 0))
		return 0;
	struct sockaddr_in sin = {};
	bpf_probe_read_kernel(&sin, sizeof(sin), uaddr);
	kprobe_addrlen = addr_len;
	kprobe_port = bpf_ntohs(sin.sin_port);
	return 0;
}

SEC("ksyscall/connect")
int BPF_KSYSCALL(ksyscall_connect, int fd, struct sockaddr *uaddr, int addrlen)
{
	if (!ours() || !to_target(uaddr, 1))
		return 0;
	ksyscall_fd = fd;
	ksyscall_addrlen = addrlen;
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(uprobe_connect, int fd, struct sockaddr *uaddr, int addrlen)
{
	if (!ours() || !to_target(uaddr, 1))
		return 0;
	uprobe_fd = fd;
	uprobe_addrlen = addrlen;
	return 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(uretprobe_connect, int ret)
{
	if (!ours() || uprobe_fd == ~0ULL || uretprobe_calls)
		return 0;
	uretprobe_ret = ret;
	uretprobe_calls = 1;
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_connect")
int tp_enter_connect(struct syscall_trace_enter *ctx)
{
	if (!ours() || !to_target((const void *)ctx->args[1], 1))
		return 0;
	tp_nr = ctx->nr;
	tp_fd = ctx->args[0];
	tp_addrlen = ctx->args[2];
	return 0;
}

SEC("tracepoint/raw_syscalls/sys_enter")
int raw_enter(struct trace_event_raw_sys_enter *ctx)
{
	/* The first syscall of ours given a 16-byte sockaddr_in of the port after the test's
	 * server listens: its connect(). */
	if (!ours() || raw_id || ctx->args[2] != 16 || !to_target((const void *)ctx->args[1], 1))
		return 0;
	raw_id = ctx->id;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
