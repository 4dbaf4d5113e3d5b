// SPDX-License-Identifier: GPL-2.0
// The packet path bench/packet-cost measures: a tc program that parses Ethernet/IP/TCP and
// emits one 64-byte event per packet through tcpscope.h, and the same parse without the
// event (what the ring costs on top).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "tcpscope.h"

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define IPPROTO_TCP 6
#define AF_INET 2
#define AF_INET6 10

struct packet_event {
	__u64 ts_ns;
	__u8 saddr[16];
	__u8 daddr[16];
	__u32 seq;
	__u32 ack;
	__u32 len;
	__u32 ifindex;
	__u16 sport;
	__u16 dport;
	__u16 window;
	__u8 tcp_flags;
	__u8 family;
};

_Static_assert(sizeof(struct packet_event) == 64, "64-byte event");

TCPSCOPE_RINGBUF(packet_events, 1 << 22, struct packet_event);

__u64 parsed_packets = 0;

struct flow {
	__u8 saddr[16];
	__u8 daddr[16];
	__u32 seq;
	__u32 ack;
	__u16 sport;
	__u16 dport;
	__u16 window;
	__u8 tcp_flags;
	__u8 family;
};

/* Fills `f` from an Ethernet/IPv4|IPv6/TCP frame; -1 for anything else. */
static __always_inline int parse(struct __sk_buff *skb, struct flow *f)
{
	void *data = (void *)(long)skb->data, *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct tcphdr *tcp;

	if ((void *)(eth + 1) > data_end)
		return -1;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);
		if ((void *)(ip + 1) > data_end || ip->protocol != IPPROTO_TCP || ip->ihl < 5)
			return -1;
		tcp = (void *)ip + ip->ihl * 4;
		__builtin_memset(f->saddr, 0, 16);
		__builtin_memset(f->daddr, 0, 16);
		__builtin_memcpy(f->saddr, &ip->saddr, 4);
		__builtin_memcpy(f->daddr, &ip->daddr, 4);
		f->family = AF_INET;
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		if ((void *)(ip6 + 1) > data_end || ip6->nexthdr != IPPROTO_TCP)
			return -1;
		tcp = (void *)(ip6 + 1);
		__builtin_memcpy(f->saddr, &ip6->saddr, 16);
		__builtin_memcpy(f->daddr, &ip6->daddr, 16);
		f->family = AF_INET6;
	} else {
		return -1;
	}
	if ((void *)(tcp + 1) > data_end)
		return -1;
	f->seq = bpf_ntohl(tcp->seq);
	f->ack = bpf_ntohl(tcp->ack_seq);
	f->sport = bpf_ntohs(tcp->source);
	f->dport = bpf_ntohs(tcp->dest);
	f->window = bpf_ntohs(tcp->window);
	f->tcp_flags = ((__u8 *)tcp)[13];
	return 0;
}

SEC("tc")
int bench_parse_emit(struct __sk_buff *skb)
{
	struct flow f;
	if (parse(skb, &f))
		return 0; /* TC_ACT_OK */
	struct packet_event *e = tcpscope_reserve(packet_events, sizeof(*e));
	if (!e)
		return 0;
	e->ts_ns = bpf_ktime_get_ns();
	__builtin_memcpy(e->saddr, f.saddr, 16);
	__builtin_memcpy(e->daddr, f.daddr, 16);
	e->seq = f.seq;
	e->ack = f.ack;
	e->len = skb->len;
	e->ifindex = skb->ifindex;
	e->sport = f.sport;
	e->dport = f.dport;
	e->window = f.window;
	e->tcp_flags = f.tcp_flags;
	e->family = f.family;
	tcpscope_submit(packet_events, e);
	return 0;
}

/* The same parse and field loads, counted instead of emitted. */
SEC("tc")
int bench_parse_only(struct __sk_buff *skb)
{
	struct flow f;
	if (parse(skb, &f))
		return 0;
	__u64 ts = bpf_ktime_get_ns();
	__u32 mix = f.seq ^ f.ack ^ f.sport ^ f.dport ^ f.window ^ f.tcp_flags ^ f.family ^ f.saddr[0] ^ f.daddr[15] ^
		    skb->len ^ skb->ifindex ^ (__u32)ts;
	parsed_packets += (mix & 1) + 1;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
