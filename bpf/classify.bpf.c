// SPDX-License-Identifier: GPL-2.0
// Flow classification: the first payload bytes of each new incoming TCP flow, once per
// flow, for user space to identify (HTTP/1.x, HTTP/2 preface, TLS ClientHello + SNI).
// A SYN (without ACK) enters the flow's 5-tuple in an LRU map as pending; the first data
// segment in that direction that starts the byte stream (seq = ISN + 1) flips it to
// sampled with a compare-and-swap, and only that segment's payload is copied to the ring.
// Every other packet costs one parse and one hash lookup: the cost stays flat however
// long the flow. Flows whose SYN was not seen (started before attach, or the reverse
// direction of a connection) are not classified.
//
// Two programs share the maps: classify_tc claims a flow with compare-and-swap (BPF_ATOMIC
// with BPF_FETCH, kernels 5.12 and later); classify_xadd, for older kernels (5.10), with the
// atomic add without result (BPF_XADD) they have. User space loads one of them.
//
// Payload bytes leave the kernel only here, and only when the user runs this probe.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "tcpscope.h"
#include "tcp_parse.h"
#include "port_filter.h"

#define TC_ACT_UNSPEC_ (-1)
#define CLASSIFY_MAX 2048

/* Payload bytes copied from the first data segment (1..CLASSIFY_MAX); set before load. */
const volatile __u32 capture_bytes = 1024;

struct flow_key {
	__u32 saddr[4]; /* network order; IPv4 in word 0 */
	__u32 daddr[4];
	__u16 sport;    /* host order */
	__u16 dport;
	__u16 family;
	__u16 _pad;
};

#define FLOW_PENDING 0
#define FLOW_SAMPLED 1

struct flow_state {
	__u64 state;    /* FLOW_PENDING, FLOW_SAMPLED (64-bit: compare-and-swap) */
	__u64 syn_ns;
	__u32 next_seq; /* ISN + 1: where the byte stream starts */
	__u32 _pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct flow_key);
	__type(value, struct flow_state);
} classify_flows SEC(".maps");

struct flow_record {
	__u64 ts_ns;        /* bpf_ktime_get_ns of the sampled segment */
	__u64 syn_ns;       /* of the SYN */
	__u8 saddr[16];
	__u8 daddr[16];
	__u32 ifindex;
	__u32 seq;
	__u16 family;
	__u16 sport;
	__u16 dport;
	__u16 payload_len;  /* payload bytes of the segment */
	__u16 cap_len;      /* bytes following this header */
	__u8 tcp_flags;
	__u8 _pad[5];
};

TCPSCOPE_RINGBUF(flow_records, 1 << 22, struct flow_record);

struct flow_scratch {
	struct flow_record hdr;
	__u8 data[CLASSIFY_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct flow_scratch);
} classify_scratch SEC(".maps");

struct classify_stats {
	__u64 tcp;           /* TCP segments parsed (after the port filter) */
	__u64 syns;          /* flows entered as pending */
	__u64 sampled;       /* first data segments copied out */
	__u64 not_tracked;   /* data segments of flows whose SYN was not seen */
	__u64 out_of_order;  /* data of a pending flow not at the start of the stream */
	__u64 capture_errors;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct classify_stats);
} classify_stats SEC(".maps");

/* Claims a pending flow for this CPU: 1 for exactly one caller. Without BPF_FETCH each
 * caller adds 1 and reads the state back; only the first adder can read FLOW_SAMPLED (1).
 * Two CPUs that both add before either reads both give up: the flow is not classified,
 * never twice (it takes the same first segment on two CPUs at once). */
static __always_inline int claim_flow(struct flow_state *fs, const int xadd)
{
	if (!xadd)
		return __sync_val_compare_and_swap(&fs->state, FLOW_PENDING, FLOW_SAMPLED) == FLOW_PENDING;
	__sync_fetch_and_add(&fs->state, 1);
	return *(volatile __u64 *)&fs->state == FLOW_SAMPLED;
}

/* The program; `xadd` (a constant once inlined) picks the atomics of claim_flow. */
static __always_inline int classify(struct __sk_buff *skb, const int xadd)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct tcp_packet pkt;
	__u32 zero = 0;

	/* Headers beyond the linear part (rare after GRO): pull them in once. */
	if (data + TCP_PARSE_HEADROOM > data_end && skb->len > (__u32)(data_end - data)) {
		bpf_skb_pull_data(skb, skb->len < TCP_PARSE_HEADROOM ? skb->len : TCP_PARSE_HEADROOM);
		data = (void *)(long)skb->data;
		data_end = (void *)(long)skb->data_end;
	}
	if (tcp_parse(data, data_end, &pkt) < 0)
		return TC_ACT_UNSPEC_;
	if (!port_filter_pass(pkt.family, pkt.sport, pkt.dport))
		return TC_ACT_UNSPEC_;
	struct classify_stats *st = bpf_map_lookup_elem(&classify_stats, &zero);
	if (!st)
		return TC_ACT_UNSPEC_;
	st->tcp++;

	struct flow_key key = {};
	__builtin_memcpy(key.saddr, pkt.saddr, 16);
	__builtin_memcpy(key.daddr, pkt.daddr, 16);
	key.sport = pkt.sport;
	key.dport = pkt.dport;
	key.family = pkt.family;

	__u32 data_seq = pkt.seq;
	if ((pkt.flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == TCP_FLAG_SYN) {
		struct flow_state init = { .state = FLOW_PENDING, .syn_ns = bpf_ktime_get_ns(), .next_seq = pkt.seq + 1 };
		bpf_map_update_elem(&classify_flows, &key, &init, BPF_ANY);
		st->syns++;
		if (pkt.payload_len == 0)
			return TC_ACT_UNSPEC_;
		data_seq = pkt.seq + 1; /* TCP Fast Open: data in the SYN */
	}
	if (pkt.payload_len == 0)
		return TC_ACT_UNSPEC_;

	struct flow_state *fs = bpf_map_lookup_elem(&classify_flows, &key);
	if (!fs) {
		st->not_tracked++;
		return TC_ACT_UNSPEC_;
	}
	if (fs->state != FLOW_PENDING)
		return TC_ACT_UNSPEC_;
	if (data_seq != fs->next_seq) {
		st->out_of_order++; /* wait for the segment that starts the stream */
		return TC_ACT_UNSPEC_;
	}
	if (!claim_flow(fs, xadd))
		return TC_ACT_UNSPEC_; /* another CPU took it */

	struct flow_scratch *s = bpf_map_lookup_elem(&classify_scratch, &zero);
	if (!s)
		return TC_ACT_UNSPEC_;
	__u64 off = (__u64)pkt.l4_off + pkt.doff;
	__u64 avail = skb->len > off ? skb->len - off : 0;
	__u64 len = pkt.payload_len;
	if (len > avail)
		len = avail;
	if (len > capture_bytes)
		len = capture_bytes;
	if (len > CLASSIFY_MAX)
		len = CLASSIFY_MAX;
	/* The helper takes 1..CLASSIFY_MAX bytes. Verifiers before 6.7 learn nothing from
	 * len != 0 (they keep len's minimum at 0 and reject the call): pass (len - 1) masked
	 * into 0..CLASSIFY_MAX-1, plus 1. The barrier keeps clang from dropping the mask it can
	 * prove redundant. */
	__u64 len_m1 = len - 1;
	asm volatile("" : "+r"(len_m1));
	len_m1 &= CLASSIFY_MAX - 1;
	if (len == 0 || bpf_skb_load_bytes(skb, off, s->data, len_m1 + 1) < 0) {
		st->capture_errors++;
		len = 0;
	}
	s->hdr.ts_ns = bpf_ktime_get_ns();
	s->hdr.syn_ns = fs->syn_ns;
	__builtin_memcpy(s->hdr.saddr, pkt.saddr, 16);
	__builtin_memcpy(s->hdr.daddr, pkt.daddr, 16);
	s->hdr.ifindex = skb->ifindex;
	s->hdr.seq = pkt.seq;
	s->hdr.family = pkt.family;
	s->hdr.sport = pkt.sport;
	s->hdr.dport = pkt.dport;
	s->hdr.payload_len = pkt.payload_len;
	s->hdr.cap_len = len;
	s->hdr.tcp_flags = pkt.flags;
	if (tcpscope_output(flow_records, s, sizeof(struct flow_record) + len) == 0)
		st->sampled++;
	return TC_ACT_UNSPEC_;
}

SEC("tc")
int classify_tc(struct __sk_buff *skb)
{
	return classify(skb, 0);
}

SEC("tc")
int classify_xadd(struct __sk_buff *skb)
{
	return classify(skb, 1);
}

char LICENSE[] SEC("license") = "GPL";
