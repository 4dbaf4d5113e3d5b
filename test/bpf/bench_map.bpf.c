// SPDX-License-Identifier: GPL-2.0
// bench/map-dump: a 100k-entry hash map of per-flow counters, filled by test runs of
// bench_fill (one new flow per run), read back whole by JavaScript and by C.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#define FLOWS 100000

struct bench_flow_key {
	__u32 saddr;
	__u32 daddr;
	__u16 sport;
	__u16 dport;
	__u32 proto;
};

struct bench_flow_stats {
	__u64 packets;
	__u64 bytes;
	__u64 first_ns;
	__u64 last_ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, FLOWS);
	__type(key, struct bench_flow_key);
	__type(value, struct bench_flow_stats);
} flows SEC(".maps");

__u32 next_flow = 0;

SEC("tc")
int bench_fill(struct __sk_buff *skb)
{
	__u32 i = next_flow++;
	struct bench_flow_key key = {
		.saddr = 0x0a000000 | (i >> 8),
		.daddr = 0xc0a80001,
		.sport = 1024 + (i & 0xff) * 32,
		.dport = 443,
		.proto = 6,
	};
	struct bench_flow_stats stats = {
		.packets = i + 1,
		.bytes = (__u64)(i + 1) * 1500,
		.first_ns = 1000000000ULL + i,
		.last_ns = 2000000000ULL + i,
	};
	bpf_map_update_elem(&flows, &key, &stats, BPF_ANY);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
