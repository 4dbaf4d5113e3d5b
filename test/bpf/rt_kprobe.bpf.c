// SPDX-License-Identifier: GPL-2.0
// kprobe and fentry programs: this host's kernel has neither (the tests assert the clear
// error); the VM kernels have both (the tests attach and count there).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

__u64 kprobe_hits = 0;
__u64 kretprobe_hits = 0;
__u64 fentry_hits = 0;
__u64 fexit_hits = 0;

SEC("kprobe/tcp_v4_connect")
int BPF_KPROBE(kprobe_connect)
{
	__sync_fetch_and_add(&kprobe_hits, 1);
	return 0;
}

SEC("kretprobe/tcp_v4_connect")
int BPF_KRETPROBE(kretprobe_connect)
{
	__sync_fetch_and_add(&kretprobe_hits, 1);
	return 0;
}

SEC("fentry/tcp_v4_connect")
int BPF_PROG(fentry_connect)
{
	__sync_fetch_and_add(&fentry_hits, 1);
	return 0;
}

SEC("fexit/tcp_v4_connect")
int BPF_PROG(fexit_connect)
{
	__sync_fetch_and_add(&fexit_hits, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
