// SPDX-License-Identifier: GPL-2.0
// Test helper: a tc program that drops the first `drop_budget` TCP segments carrying data
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
__u32 drop_budget = 0;
__u32 dropped = 0;

SEC("tc")
int lossy_egress(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct tcphdr *tcp;
	__u32 payload;

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
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > end || ip6->nexthdr != 6)
			return TC_ACT_OK;
		tcp = (void *)(ip6 + 1);
		if ((void *)(tcp + 1) > end)
			return TC_ACT_OK;
		payload = bpf_ntohs(ip6->payload_len) - tcp->doff * 4;
	} else {
		return TC_ACT_OK;
	}
	if (tcp->dest != bpf_htons(target_port) || payload == 0)
		return TC_ACT_OK;
	if (drop_budget == 0)
		return TC_ACT_OK;
	__sync_fetch_and_add(&drop_budget, -1);
	__sync_fetch_and_add(&dropped, 1);
	return TC_ACT_SHOT;
}

char LICENSE[] SEC("license") = "GPL";
