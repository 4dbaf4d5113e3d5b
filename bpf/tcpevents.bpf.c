// SPDX-License-Identifier: GPL-2.0
// TCP trouble events from tracepoints only: retransmissions (tcp:tcp_retransmit_skb,
// tcp:tcp_retransmit_synack), RTT (tcp:tcp_probe, events and log2 histograms), resets sent
// and received (tcp:tcp_send_reset, tcp:tcp_receive_reset), drops (skb:kfree_skb, TCP only,
// with the drop reason) and bad checksums (tcp:tcp_bad_csum).
//
// One object, one ring: each probe loads only its programs (the others get autoload off),
// and user space turns programs off whose tracepoint the running kernel lacks.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>
#include "tcpscope.h"
#include "tp_compat.h"
#include "port_filter.h"
#include "sock_cookie.h"
#include "rate_cap.h"
#include "tp_btf_twin.h"

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD

enum tcp_event_kind {
	EV_RETRANSMIT = 1,
	EV_RETRANSMIT_SYNACK = 2,
	EV_RTT = 3,
	EV_RESET_SENT = 4,
	EV_RESET_RECEIVED = 5,
	EV_DROP = 6,
	EV_BAD_CSUM = 7,
};

/* Flags of struct tcp_event */
#define TEV_REASON_KNOWN 1   /* the kernel's tracepoint carries a reason */
#define TEV_PORTS_KNOWN 2    /* a packet event whose headers were parsed */

struct tcp_event {
	__u64 ts_ns;
	__u64 cookie;
	__u32 kind;
	__u32 flags;
	__s32 state;
	__u32 reason;
	__u32 seq;
	__u32 srtt_us;
	__u32 snd_cwnd;
	__u32 pid;
	__s32 err;
	__u16 sport;
	__u16 dport;
	__u16 family;
	__u8 tcp_flags;
	__u8 pad;
	__u16 segs;         /* retransmits: TCP segments the skb carried (tcp_skb_pcount) */
	__u16 pad2;
	__u8 saddr[16];
	__u8 daddr[16];
	char comm[16];
};

TCPSCOPE_RINGBUF(tcp_events, 1 << 22, struct tcp_event);

/* RTT: emit one event per tcp_probe sample (else only histograms are kept). */
const volatile __u8 rtt_events = 1;
/* RTT histograms: 0 none, 1 per local port, 2 per remote address, 3 one for everything. */
const volatile __u8 rtt_hist_by = 0;

#define RTT_SLOTS 32

struct rtt_hist_key {
	__u8 addr[16];
	__u16 port;
	__u16 family;
};

struct rtt_hist {
	__u64 slots[RTT_SLOTS];
	__u64 count;
	__u64 sum_us;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct rtt_hist_key);
	__type(value, struct rtt_hist);
} rtt_hists SEC(".maps");

/* Most records per 100 ms (rate_cap.h), set before load; beyond it events are counted in
 * tcp_events_sampled instead of sent. 0: no cap. */
const volatile __u32 tcp_events_per_slot = 0;
__u64 tcp_events_sampled = 0;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rate_cap);
} tcp_events_rate SEC(".maps");

static __always_inline struct tcp_event *new_event(__u32 kind)
{
	struct tcp_event *e;

	if (!rate_cap_take(&tcp_events_rate, bpf_ktime_get_ns(), tcp_events_per_slot)) {
		__sync_fetch_and_add(&tcp_events_sampled, 1);
		return NULL;
	}
	e = tcpscope_reserve(tcp_events, sizeof(*e));
	if (!e)
		return NULL;
	__builtin_memset(e, 0, sizeof(*e));
	e->ts_ns = bpf_ktime_get_ns();
	e->kind = kind;
	return e;
}

static __always_inline void fill_endpoints(struct tcp_event *e, const struct tp_endpoints *ep)
{
	e->family = ep->family;
	e->sport = ep->sport;
	e->dport = ep->dport;
	__builtin_memcpy(e->saddr, ep->saddr, 16);
	__builtin_memcpy(e->daddr, ep->daddr, 16);
}

static __always_inline void fill_current(struct tcp_event *e)
{
	e->pid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
}

/* --- retransmissions --------------------------------------------------------------- */

static __always_inline __u32 skb_seq(const struct sk_buff *skb)
{
	/* TCP_SKB_CB(skb)->seq: the first word of skb->cb. */
	__u32 seq = 0;

	if (skb)
		bpf_probe_read_kernel(&seq, sizeof(seq), &skb->cb[0]);
	return seq;
}

static __always_inline __u16 skb_pcount(const struct sk_buff *skb)
{
	/* tcp_skb_pcount(): TCP_SKB_CB(skb)->tcp_gso_segs, the u16 after seq and end_seq in
	 * skb->cb (the same place since before 5.10). A GSO skb carries several segments and
	 * the kernel counts each (TcpRetransSegs, tcp_info.total_retrans). */
	__u16 segs = 0;

	if (skb)
		bpf_probe_read_kernel(&segs, sizeof(segs), &skb->cb[8]);
	return segs ? segs : 1;
}

static __always_inline int retransmit(void *raw)
{
	struct tp_endpoints ep = {};
	const void *sk, *skb;
	struct tcp_event *e;
	int state, err = 0;

	if (bpf_core_type_exists(struct trace_event_raw_tcp_retransmit_skb___new)) {
		struct trace_event_raw_tcp_retransmit_skb___new *ctx = raw;

		TP_READ_ENDPOINTS_4_6(ctx, &ep);
		sk = ctx->skaddr;
		skb = ctx->skbaddr;
		state = ctx->state;
		if (bpf_core_field_exists(ctx->err))
			err = ctx->err;
	} else {
		struct trace_event_raw_tcp_event_sk_skb___old *ctx = raw;

		TP_READ_ENDPOINTS_4_6(ctx, &ep);
		sk = ctx->skaddr;
		skb = ctx->skbaddr;
		state = ctx->state;
	}
	if (!port_filter_pass(ep.family, ep.sport, ep.dport))
		return 0;
	e = new_event(EV_RETRANSMIT);
	if (!e)
		return 0;
	fill_endpoints(e, &ep);
	e->state = state;
	e->err = err;
	e->cookie = tp_sk_cookie(sk);
	e->seq = skb_seq(skb);
	e->segs = skb_pcount(skb);
	e->snd_cwnd = BPF_CORE_READ((struct tcp_sock *)sk, snd_cwnd);
	tcpscope_submit(tcp_events, e);
	return 0;
}

static __always_inline int retransmit_synack(struct trace_event_raw_tcp_retransmit_synack *ctx)
{
	struct tp_endpoints ep = {};
	struct tcp_event *e;

	TP_READ_ENDPOINTS_4_6(ctx, &ep);
	if (!port_filter_pass(ep.family, ep.sport, ep.dport))
		return 0;
	e = new_event(EV_RETRANSMIT_SYNACK);
	if (!e)
		return 0;
	fill_endpoints(e, &ep);
	e->state = 12; /* TCP_NEW_SYN_RECV: the request socket */
	e->segs = 1;
	/* The SYN-ACK's sequence number: the request's initial send sequence. */
	e->seq = BPF_CORE_READ((struct tcp_request_sock *)ctx->req, snt_isn);
	tcpscope_submit(tcp_events, e);
	return 0;
}

/* --- RTT --------------------------------------------------------------------------- */

static __always_inline __u32 log2_slot(__u32 v)
{
	__u32 slot = 0;

	/* floor(log2(v)) + 1 for v > 0: slot s holds [2^(s-1), 2^s) */
	while (v && slot < RTT_SLOTS - 1) {
		v >>= 1;
		slot++;
	}
	return slot;
}

static __always_inline int rtt(struct trace_event_raw_tcp_probe___compat *ctx)
{
	struct tp_endpoints ep = {};
	__u16 family2 = 0;
	__u32 srtt = ctx->srtt;
	struct tcp_event *e;

	tp_read_sockaddr(&ctx->saddr, &ep.family, &ep.sport, ep.saddr);
	tp_read_sockaddr(&ctx->daddr, &family2, &ep.dport, ep.daddr);
	if (srtt == 0 || !port_filter_pass(ep.family, ep.sport, ep.dport))
		return 0;

	if (rtt_hist_by) {
		struct rtt_hist_key key = {};
		struct rtt_hist *h;

		key.family = ep.family;
		if (rtt_hist_by == 1)
			key.port = ep.sport;
		else if (rtt_hist_by == 2)
			__builtin_memcpy(key.addr, ep.daddr, 16);
		else
			key.family = 0;
		h = bpf_map_lookup_elem(&rtt_hists, &key);
		if (!h) {
			struct rtt_hist zero = {};

			bpf_map_update_elem(&rtt_hists, &key, &zero, BPF_NOEXIST);
			h = bpf_map_lookup_elem(&rtt_hists, &key);
		}
		if (h) {
			__u32 slot = log2_slot(srtt);

			if (slot < RTT_SLOTS)
				__sync_fetch_and_add(&h->slots[slot], 1);
			__sync_fetch_and_add(&h->count, 1);
			__sync_fetch_and_add(&h->sum_us, srtt);
		}
	}
	if (!rtt_events)
		return 0;
	e = new_event(EV_RTT);
	if (!e)
		return 0;
	fill_endpoints(e, &ep);
	e->srtt_us = srtt;
	e->snd_cwnd = ctx->snd_cwnd;
	if (bpf_core_field_exists(ctx->sock_cookie))
		e->cookie = ctx->sock_cookie;
	if (!e->cookie && bpf_core_field_exists(ctx->skaddr))
		e->cookie = tp_sk_cookie(ctx->skaddr);
	tcpscope_submit(tcp_events, e);
	return 0;
}

/* --- resets ------------------------------------------------------------------------ */

static __always_inline int send_reset(void *raw)
{
	struct tp_endpoints ep = {};
	struct tcp_event *e;
	const void *sk;
	__u32 reason = 0, flags = 0;
	int state;

	if (bpf_core_type_exists(struct trace_event_raw_tcp_send_reset___new)) {
		/* 6.10+: own layout, sockaddr fields, a reason, fires without a socket too. */
		struct trace_event_raw_tcp_send_reset___new *ctx = raw;
		__u16 family2 = 0;

		tp_read_sockaddr(&ctx->saddr, &ep.family, &ep.sport, ep.saddr);
		tp_read_sockaddr(&ctx->daddr, &family2, &ep.dport, ep.daddr);
		sk = ctx->skaddr;
		state = ctx->state;
		if (bpf_core_field_exists(ctx->reason)) {
			reason = ctx->reason;
			flags |= TEV_REASON_KNOWN;
		}
	} else {
		struct trace_event_raw_tcp_event_sk_skb___old *ctx = raw;

		TP_READ_ENDPOINTS_4_6(ctx, &ep);
		sk = ctx->skaddr;
		state = ctx->state;
	}
	if (!port_filter_pass(ep.family, ep.sport, ep.dport))
		return 0;
	e = new_event(EV_RESET_SENT);
	if (!e)
		return 0;
	fill_endpoints(e, &ep);
	e->flags = flags;
	e->reason = reason;
	e->state = state;
	e->cookie = tp_sk_cookie(sk);
	fill_current(e);
	tcpscope_submit(tcp_events, e);
	return 0;
}

static __always_inline int receive_reset(struct trace_event_raw_tcp_event_sk___compat *ctx)
{
	struct tp_endpoints ep = {};
	struct tcp_event *e;
	const void *sk = ctx->skaddr;

	TP_READ_ENDPOINTS_4_6(ctx, &ep);
	if (!port_filter_pass(ep.family, ep.sport, ep.dport))
		return 0;
	e = new_event(EV_RESET_RECEIVED);
	if (!e)
		return 0;
	fill_endpoints(e, &ep);
	e->state = BPF_CORE_READ((struct sock *)sk, __sk_common.skc_state);
	if (bpf_core_field_exists(ctx->sock_cookie))
		e->cookie = ctx->sock_cookie;
	if (!e->cookie)
		e->cookie = tp_sk_cookie(sk);
	fill_current(e);
	tcpscope_submit(tcp_events, e);
	return 0;
}

/* --- drops and bad checksums ------------------------------------------------------- */

/* Parses the IP and TCP headers of an skb with CO-RE reads of its offsets. Returns 1 when
 * the packet is TCP (ports filled when the TCP header could be read), 0 otherwise. */
static __always_inline int parse_skb(const struct sk_buff *skb, __u16 protocol, struct tp_endpoints *ep, __u8 *tcp_flags, __u32 *seq, __u32 *flags)
{
	unsigned char *head = BPF_CORE_READ(skb, head);
	__u16 nh = BPF_CORE_READ(skb, network_header);
	__u16 th = BPF_CORE_READ(skb, transport_header);
	__u32 th_off;

	if (!head || nh == (__u16)~0U)
		return 0;
	if (protocol == ETH_P_IP) {
		struct iphdr ip;

		if (bpf_probe_read_kernel(&ip, sizeof(ip), head + nh))
			return 0;
		if (ip.version != 4 || ip.protocol != IPPROTO_TCP)
			return 0;
		ep->family = AF_INET;
		__builtin_memcpy(ep->saddr, &ip.saddr, 4);
		__builtin_memcpy(ep->daddr, &ip.daddr, 4);
		th_off = nh + ip.ihl * 4;
	} else if (protocol == ETH_P_IPV6) {
		struct ipv6hdr ip6;

		if (bpf_probe_read_kernel(&ip6, sizeof(ip6), head + nh))
			return 0;
		if (ip6.version != 6 || ip6.nexthdr != IPPROTO_TCP)
			return 0;
		ep->family = AF_INET6;
		bpf_probe_read_kernel(ep->saddr, 16, &ip6.saddr);
		bpf_probe_read_kernel(ep->daddr, 16, &ip6.daddr);
		th_off = nh + sizeof(ip6);
	} else {
		return 0;
	}
	if (th != (__u16)~0U && th > nh)
		th_off = th;
	{
		struct tcphdr tcp;

		if (bpf_probe_read_kernel(&tcp, sizeof(tcp), head + th_off) == 0) {
			ep->sport = bpf_ntohs(tcp.source);
			ep->dport = bpf_ntohs(tcp.dest);
			*seq = bpf_ntohl(tcp.seq);
			*tcp_flags = ((__u8 *)&tcp)[13];
			*flags |= TEV_PORTS_KNOWN;
		}
	}
	return 1;
}

/* drops({ reasons }): with drop_reasons_only set, only reasons marked 1 here are sent, so
 * drops of other reasons (a flood's) do not use up the events cap. Set before load. */
#define DROP_REASONS_MAX 1024
const volatile __u8 drop_reasons_only = 0;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, DROP_REASONS_MAX);
	__type(key, __u32);
	__type(value, __u8);
} drop_reasons SEC(".maps");

/* drops({ countOnly }): TCP drops counted per reason here (slot 0: reason unknown or out of
 * range), no event. For metrics (serve), which only count: an event per drop costs a ring
 * record and user-space decoding, and a flood's drops come one per packet. A per-CPU
 * array indexed by the reason: no lock, no atomic, no entry to create. Set before load. */
const volatile __u8 drop_counts_only = 0;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DROP_REASONS_MAX);
	__type(key, __u32);
	__type(value, __u64);
} drop_counts SEC(".maps");

static __always_inline int drop(struct trace_event_raw_kfree_skb___compat *ctx)
{
	__u16 protocol = ctx->protocol;
	struct tp_endpoints ep = {};
	__u32 flags = 0, seq = 0, reason = 0;
	__u8 tcp_flags = 0;
	struct tcp_event *e;

	if (protocol != ETH_P_IP && protocol != ETH_P_IPV6)
		return 0;
	if (bpf_core_field_exists(ctx->reason)) {
		reason = ctx->reason;
		flags |= TEV_REASON_KNOWN;
	}
	/* The reason first: it is in the tracepoint's arguments, while the headers take
	 * several probe reads. A flood's drops (every forged SYN's answer, in a namespace's
	 * blackhole) are of reasons the detectors do not want, and end here. */
	if (drop_reasons_only) {
		__u8 *wanted = bpf_map_lookup_elem(&drop_reasons, &reason);

		if (!wanted || !*wanted)
			return 0;
	}
	if (!parse_skb(ctx->skbaddr, protocol, &ep, &tcp_flags, &seq, &flags))
		return 0;
	if (!port_filter_pass(ep.family, ep.sport, ep.dport))
		return 0;
	if (drop_counts_only) {
		__u32 slot = reason < DROP_REASONS_MAX ? reason : 0;
		__u64 *n = bpf_map_lookup_elem(&drop_counts, &slot);

		if (n)
			(*n)++;
		return 0;
	}
	e = new_event(EV_DROP);
	if (!e)
		return 0;
	fill_endpoints(e, &ep);
	e->flags = flags;
	e->reason = reason;
	e->seq = seq;
	e->tcp_flags = tcp_flags;
	if (bpf_core_field_exists(ctx->rx_sk) && ctx->rx_sk)
		e->cookie = tp_sk_cookie(ctx->rx_sk);
	tcpscope_submit(tcp_events, e);
	return 0;
}

static __always_inline int bad_csum(struct trace_event_raw_tcp_event_skb___compat *ctx)
{
	struct tp_endpoints ep = {};
	__u16 family2 = 0;
	__u32 flags = TEV_PORTS_KNOWN, seq = 0, pflags = 0;
	__u8 tcp_flags = 0;
	struct tcp_event *e;
	const struct sk_buff *skb = ctx->skbaddr;

	/* saddr/daddr are the packet's source and destination. */
	tp_read_sockaddr(&ctx->saddr, &ep.family, &ep.sport, ep.saddr);
	tp_read_sockaddr(&ctx->daddr, &family2, &ep.dport, ep.daddr);
	if (!port_filter_pass(ep.family, ep.sport, ep.dport))
		return 0;
	e = new_event(EV_BAD_CSUM);
	if (!e)
		return 0;
	{
		struct tp_endpoints parsed = {};
		__u16 proto = bpf_ntohs(BPF_CORE_READ(skb, protocol));

		if (parse_skb(skb, proto, &parsed, &tcp_flags, &seq, &pflags)) {
			e->seq = seq;
			e->tcp_flags = tcp_flags;
		}
	}
	fill_endpoints(e, &ep);
	e->flags = flags;
	tcpscope_submit(tcp_events, e);
	return 0;
}

/* --- entry points: tracepoints, and their tp_btf twins (see tp_btf_twin.h) ---------- */

SEC("tracepoint/tcp/tcp_retransmit_skb")
int tev_retransmit(void *raw)
{
	return retransmit(raw);
}

SEC("tracepoint/tcp/tcp_retransmit_synack")
int tev_retransmit_synack(struct trace_event_raw_tcp_retransmit_synack *ctx)
{
	return retransmit_synack(ctx);
}

SEC("tracepoint/tcp/tcp_probe")
int tev_rtt(struct trace_event_raw_tcp_probe___compat *ctx)
{
	return rtt(ctx);
}

SEC("tracepoint/tcp/tcp_send_reset")
int tev_send_reset(void *raw)
{
	return send_reset(raw);
}

SEC("tracepoint/tcp/tcp_receive_reset")
int tev_receive_reset(struct trace_event_raw_tcp_event_sk___compat *ctx)
{
	return receive_reset(ctx);
}

SEC("tracepoint/skb/kfree_skb")
int tev_drop(struct trace_event_raw_kfree_skb___compat *ctx)
{
	return drop(ctx);
}

SEC("tracepoint/tcp/tcp_bad_csum")
int tev_bad_csum(struct trace_event_raw_tcp_event_skb___compat *ctx)
{
	return bad_csum(ctx);
}

/* The tcp_event_sk_skb-style fields (and skbaddr/skaddr/state) of either layout. */
#define TWIN_FILL_SK_SKB(rec, sk, skb)                                                               \
	do {                                                                                         \
		(rec)->skaddr = (sk);                                                                \
		(rec)->skbaddr = (skb);                                                              \
		(rec)->state = BPF_CORE_READ((sk), __sk_common.skc_state);                           \
		TP_TWIN_FILL_SK_4_6(rec, sk);                                                        \
	} while (0)

static __always_inline int retransmit_twin(const struct sock *sk, const struct sk_buff *skb, int err)
{
	if (!sk)
		return 0;
	if (bpf_core_type_exists(struct trace_event_raw_tcp_retransmit_skb___new)) {
		TP_TWIN_RECORD(struct trace_event_raw_tcp_retransmit_skb___new, rec);

		TWIN_FILL_SK_SKB(rec, sk, skb);
		if (bpf_core_field_exists(rec->err))
			rec->err = err;
		return retransmit(rec);
	} else {
		TP_TWIN_RECORD(struct trace_event_raw_tcp_event_sk_skb___old, rec);

		TWIN_FILL_SK_SKB(rec, sk, skb);
		return retransmit(rec);
	}
}

SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(tev_retransmit_btf, const struct sock *sk, const struct sk_buff *skb)
{
	return retransmit_twin(sk, skb, 0);
}

/* 6.13+: the transmit's error is the third argument. */
SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(tev_retransmit_btf3, const struct sock *sk, const struct sk_buff *skb, int err)
{
	return retransmit_twin(sk, skb, err);
}

SEC("tp_btf/tcp_retransmit_synack")
int BPF_PROG(tev_retransmit_synack_btf, const struct sock *sk, const struct request_sock *req)
{
	if (!sk)
		return 0;
	TP_TWIN_RECORD(struct trace_event_raw_tcp_retransmit_synack, rec);

	/* The request socket's addresses and ports, as the kernel's record has them. */
	rec->skaddr = sk;
	rec->req = req;
	rec->sport = BPF_CORE_READ(req, __req_common.skc_num);
	rec->dport = bpf_ntohs(BPF_CORE_READ(req, __req_common.skc_dport));
	if (bpf_core_field_exists(rec->family))
		rec->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	bpf_probe_read_kernel(rec->saddr, 4, &req->__req_common.skc_rcv_saddr);
	bpf_probe_read_kernel(rec->daddr, 4, &req->__req_common.skc_daddr);
	bpf_probe_read_kernel(rec->saddr_v6, 16, &req->__req_common.skc_v6_rcv_saddr);
	bpf_probe_read_kernel(rec->daddr_v6, 16, &req->__req_common.skc_v6_daddr);
	return retransmit_synack(rec);
}

/* rtt()'s own stack (a zeroed histogram) leaves no room for a tcp_probe record beside it. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u8[sizeof(struct trace_event_raw_tcp_probe___compat) + 16]);
} tev_twin_scratch SEC(".maps");

SEC("tp_btf/tcp_probe")
int BPF_PROG(tev_rtt_btf, const struct sock *sk, const struct sk_buff *skb)
{
	const struct tcp_sock *tp = (const struct tcp_sock *)sk;
	struct trace_event_raw_tcp_probe___compat *rec;
	__u32 zero = 0;
	void *room = bpf_map_lookup_elem(&tev_twin_scratch, &zero);

	if (!room || !sk)
		return 0;
	__builtin_memset(room, 0, sizeof(struct trace_event_raw_tcp_probe___compat) + 16);
	rec = room;

	tp_twin_sk_sockaddrs(rec->saddr, rec->daddr, sk);
	rec->srtt = BPF_CORE_READ(tp, srtt_us) >> 3;
	rec->snd_cwnd = BPF_CORE_READ(tp, snd_cwnd);
	if (bpf_core_field_exists(rec->skaddr))
		rec->skaddr = sk;
	return rtt(rec);
}

/* A reset sent without a socket (6.10+): the addresses of the reply, from the packet
 * being answered (its destination is our side). */
static __always_inline void twin_reply_sockaddrs(__u8 *saddr, __u8 *daddr, const struct sk_buff *skb)
{
	struct tp_endpoints pkt = {};
	__u32 seq = 0, pflags = 0;
	__u8 tcp_flags = 0;

	if (!skb || !parse_skb(skb, bpf_ntohs(BPF_CORE_READ(skb, protocol)), &pkt, &tcp_flags, &seq, &pflags))
		return;
	tp_twin_sockaddr(saddr, pkt.family, pkt.dport, pkt.daddr, pkt.daddr);
	tp_twin_sockaddr(daddr, pkt.family, pkt.sport, pkt.saddr, pkt.saddr);
}

static __always_inline int send_reset_twin(const struct sock *sk, const struct sk_buff *skb, __u32 reason)
{
	if (bpf_core_type_exists(struct trace_event_raw_tcp_send_reset___new)) {
		TP_TWIN_RECORD(struct trace_event_raw_tcp_send_reset___new, rec);

		rec->skaddr = sk;
		rec->skbaddr = skb;
		if (sk) {
			rec->state = BPF_CORE_READ(sk, __sk_common.skc_state);
			tp_twin_sk_sockaddrs(rec->saddr, rec->daddr, sk);
		} else {
			twin_reply_sockaddrs(rec->saddr, rec->daddr, skb);
		}
		if (bpf_core_field_exists(rec->reason))
			rec->reason = reason;
		return send_reset(rec);
	} else {
		TP_TWIN_RECORD(struct trace_event_raw_tcp_event_sk_skb___old, rec);

		if (!sk)
			return 0;
		TWIN_FILL_SK_SKB(rec, sk, skb);
		return send_reset(rec);
	}
}

SEC("tp_btf/tcp_send_reset")
int BPF_PROG(tev_send_reset_btf, const struct sock *sk, const struct sk_buff *skb)
{
	return send_reset_twin(sk, skb, 0);
}

/* 6.10+: the reason is the third argument. */
SEC("tp_btf/tcp_send_reset")
int BPF_PROG(tev_send_reset_btf3, const struct sock *sk, const struct sk_buff *skb, int reason)
{
	return send_reset_twin(sk, skb, reason);
}

SEC("tp_btf/tcp_receive_reset")
int BPF_PROG(tev_receive_reset_btf, const struct sock *sk)
{
	if (!sk)
		return 0;
	TP_TWIN_RECORD(struct trace_event_raw_tcp_event_sk___compat, rec);

	rec->skaddr = sk;
	TP_TWIN_FILL_SK_4_6(rec, sk);
	return receive_reset(rec);
}

static __always_inline int drop_twin(const struct sk_buff *skb, __u32 reason, const struct sock *rx_sk)
{
	TP_TWIN_RECORD(struct trace_event_raw_kfree_skb___compat, rec);

	if (!skb)
		return 0;
	rec->skbaddr = (void *)skb;
	rec->protocol = bpf_ntohs(BPF_CORE_READ(skb, protocol));
	if (bpf_core_field_exists(rec->reason))
		rec->reason = reason;
	if (bpf_core_field_exists(rec->rx_sk))
		rec->rx_sk = (void *)rx_sk;
	return drop(rec);
}

/* kfree_skb's arguments grew: (skb, location), + reason in 5.17, + rx_sk in 6.11. */
SEC("tp_btf/kfree_skb")
int BPF_PROG(tev_drop_btf2, const struct sk_buff *skb, void *location)
{
	return drop_twin(skb, 0, 0);
}

SEC("tp_btf/kfree_skb")
int BPF_PROG(tev_drop_btf3, const struct sk_buff *skb, void *location, int reason)
{
	return drop_twin(skb, reason, 0);
}

SEC("tp_btf/kfree_skb")
int BPF_PROG(tev_drop_btf4, const struct sk_buff *skb, void *location, int reason, const struct sock *rx_sk)
{
	return drop_twin(skb, reason, rx_sk);
}

SEC("tp_btf/tcp_bad_csum")
int BPF_PROG(tev_bad_csum_btf, const struct sk_buff *skb)
{
	TP_TWIN_RECORD(struct trace_event_raw_tcp_event_skb___compat, rec);
	struct tp_endpoints pkt = {};
	__u32 seq = 0, pflags = 0;
	__u8 tcp_flags = 0;

	if (!skb)
		return 0;
	rec->skbaddr = skb;
	if (parse_skb(skb, bpf_ntohs(BPF_CORE_READ(skb, protocol)), &pkt, &tcp_flags, &seq, &pflags)) {
		tp_twin_sockaddr(rec->saddr, pkt.family, pkt.sport, pkt.saddr, pkt.saddr);
		tp_twin_sockaddr(rec->daddr, pkt.family, pkt.dport, pkt.daddr, pkt.daddr);
	}
	return bad_csum(rec);
}

/* Cookies for connections made while a probe runs (see sock_cookie.h). */
TCPSCOPE_COOKIE_SOCKOPS(tev_sockops)

char LICENSE[] SEC("license") = "GPL";
