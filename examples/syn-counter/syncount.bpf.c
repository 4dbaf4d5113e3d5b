// SPDX-License-Identifier: GPL-2.0
// Example custom probe: counts incoming TCP SYNs per source address at tc ingress.
// Build: `npm run build` compiles it to build/bpf/syncount.bpf.o (CO-RE, vmlinux.h).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define IPPROTO_TCP 6

/* Count only SYNs to this port (host order); 0 counts every port. Set by the loader. */
const volatile __u16 only_port = 0;

struct source {
	__u8 addr[16]; /* IPv4 in the first 4 bytes */
	__u16 family;  /* 4 or 6 */
	__u16 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct source);
	__type(value, __u64);
} syns_by_source SEC(".maps");

static __always_inline void count(struct source *src, struct tcphdr *tcp, void *end)
{
	if ((void *)(tcp + 1) > end || !tcp->syn || tcp->ack)
		return;
	if (only_port && bpf_ntohs(tcp->dest) != only_port)
		return;
	__u64 one = 1, *n = bpf_map_lookup_elem(&syns_by_source, src);
	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&syns_by_source, src, &one, BPF_ANY);
}

SEC("tc")
int count_syns(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct source src = {};

	if ((void *)(eth + 1) > end)
		return 0;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);
		if ((void *)(ip + 1) > end || ip->protocol != IPPROTO_TCP)
			return 0;
		__builtin_memcpy(src.addr, &ip->saddr, 4);
		src.family = 4;
		count(&src, (void *)ip + ip->ihl * 4, end);
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		if ((void *)(ip6 + 1) > end || ip6->nexthdr != IPPROTO_TCP)
			return 0;
		__builtin_memcpy(src.addr, &ip6->saddr, 16);
		src.family = 6;
		count(&src, (void *)(ip6 + 1), end);
	}
	return -1; /* TC_ACT_UNSPEC: observe, never drop, and let the next tc program run */
}

char LICENSE[] SEC("license") = "GPL";
