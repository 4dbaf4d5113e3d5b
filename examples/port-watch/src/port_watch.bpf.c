// SPDX-License-Identifier: GPL-2.0
// port-watch: counts incoming TCP segments per destination port at tc ingress and reports
// each new connection (SYN) to one watched port through a ring buffer.
// Built with `tcpscope compile src/port_watch.bpf.c` (npm run build:bpf), which also writes
// the typed skeleton src/port_watch.skel.ts.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "tcpscope.h" /* TCPSCOPE_RINGBUF: a ring whose lost records are counted */

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define IPPROTO_TCP 6
#define TC_ACT_UNSPEC (-1)

enum watch_family { WATCH_IPV4 = 4, WATCH_IPV6 = 6 };

/* Per destination port: what arrived. */
struct port_hits {
	__u64 segments;
	__u64 bytes;
	__u64 syns;
};

/* One new connection to the watched port. */
struct syn_event {
	__u8 saddr[16]; /* IPv4 in the first 4 bytes */
	__u16 sport;
	__u16 dport;
	enum watch_family family;
	__u32 window;
};

/* Set before load: the port whose SYNs are reported (0: none). */
const volatile __u16 watched_port = 0;
/* Read after load: every TCP segment seen, any port. */
__u64 segments_total = 0;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u16);
	__type(value, struct port_hits);
} hits_by_port SEC(".maps");

TCPSCOPE_RINGBUF(syns, 1 << 18, struct syn_event);

SEC("tc")
int watch_port(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct tcphdr *tcp;
	struct syn_event ev = {};

	if ((void *)(eth + 1) > end)
		return TC_ACT_UNSPEC;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);
		if ((void *)(ip + 1) > end || ip->protocol != IPPROTO_TCP)
			return TC_ACT_UNSPEC;
		tcp = (void *)ip + ip->ihl * 4;
		__builtin_memcpy(ev.saddr, &ip->saddr, 4);
		ev.family = WATCH_IPV4;
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		if ((void *)(ip6 + 1) > end || ip6->nexthdr != IPPROTO_TCP)
			return TC_ACT_UNSPEC;
		tcp = (void *)(ip6 + 1);
		__builtin_memcpy(ev.saddr, &ip6->saddr, 16);
		ev.family = WATCH_IPV6;
	} else {
		return TC_ACT_UNSPEC;
	}
	if ((void *)(tcp + 1) > end)
		return TC_ACT_UNSPEC;

	__sync_fetch_and_add(&segments_total, 1);
	__u16 dport = bpf_ntohs(tcp->dest);
	int syn = tcp->syn && !tcp->ack;
	struct port_hits *st = bpf_map_lookup_elem(&hits_by_port, &dport);
	if (!st) {
		struct port_hits zero = {};
		bpf_map_update_elem(&hits_by_port, &dport, &zero, BPF_NOEXIST);
		st = bpf_map_lookup_elem(&hits_by_port, &dport);
		if (!st)
			return TC_ACT_UNSPEC;
	}
	__sync_fetch_and_add(&st->segments, 1);
	__sync_fetch_and_add(&st->bytes, skb->len);
	if (syn)
		__sync_fetch_and_add(&st->syns, 1);

	if (syn && watched_port && dport == watched_port) {
		ev.sport = bpf_ntohs(tcp->source);
		ev.dport = dport;
		ev.window = bpf_ntohs(tcp->window);
		tcpscope_output(syns, &ev, sizeof(ev));
	}
	/* UNSPEC: later tc programs (and the stack) still see the packet. */
	return TC_ACT_UNSPEC;
}

char LICENSE[] SEC("license") = "GPL";
