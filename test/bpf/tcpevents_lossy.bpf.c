// SPDX-License-Identifier: GPL-2.0
// Test helper: a tc program that drops the first lossy_counts[0] TCP segments carrying data
// to `target_port`, so the sender must retransmit. Attached by the tests to a veth they
// create (netem is not available on every test kernel).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define TC_ACT_OK 0
#define TC_ACT_SHOT 2

const volatile __u16 target_port = 0;
/* [0]: segments still to drop (set by the test), [1]: segments dropped */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u32);
} lossy_counts SEC(".maps");

SEC("tc")
int lossy_egress(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct tcphdr *tcp;
	__u32 payload;
	__u16 dest;

	if ((void *)(eth + 1) > end)
		return TC_ACT_OK;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) > end || ip->protocol != 6)
			return TC_ACT_OK;
		tcp = (void *)ip + ip->ihl * 4;
		if ((void *)(tcp + 1) > end)
			return TC_ACT_OK;
		payload = bpf_ntohs(ip->tot_len) - ip->ihl * 4 - tcp->doff * 4;
		dest = tcp->dest;
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > end || ip6->nexthdr != 6)
			return TC_ACT_OK;
		tcp = (void *)(ip6 + 1);
		if ((void *)(tcp + 1) > end)
			return TC_ACT_OK;
		payload = bpf_ntohs(ip6->payload_len) - tcp->doff * 4;
		dest = tcp->dest;
	} else {
		return TC_ACT_OK;
	}
	if (dest != bpf_htons(target_port) || payload == 0)
		return TC_ACT_OK;
	{
		__u32 k0 = 0, k1 = 1;
		__u32 *budget = bpf_map_lookup_elem(&lossy_counts, &k0);
		__u32 *dropped = bpf_map_lookup_elem(&lossy_counts, &k1);

		if (!budget || !dropped || *budget == 0)
			return TC_ACT_OK;
		__sync_fetch_and_add(budget, -1);
		__sync_fetch_and_add(dropped, 1);
	}
	return TC_ACT_SHOT;
}

char LICENSE[] SEC("license") = "GPL";
