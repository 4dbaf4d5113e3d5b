// SPDX-License-Identifier: GPL-2.0
// TCP connection lifecycle from sock:inet_sock_set_state (no kprobes, no fentry):
// open (reached ESTABLISHED), every state transition, close with duration and bytes.
//
// Connections are tracked in-kernel by their struct sock pointer (the tracepoint's skaddr):
// tracepoint programs may not call bpf_get_socket_cookie (only BPF_PROG_TYPE_TRACING has
// it, 5.12+), so the cookie is read from the socket (sk_cookie) with CO-RE. A socket only
// has a cookie once someone asked for it: `conns_sockops` asks on connect() and on passive
// establishment, before the ESTABLISHED transition, so every open/close event carries one.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "tcpscope.h"
#include "tp_compat.h"
#include "sock_owner.h"
#include "port_filter.h"
#include "sock_cookie.h"
#include "tp_btf_twin.h"

#define TCP_ESTABLISHED 1
#define TCP_SYN_SENT 2
#define TCP_SYN_RECV 3
#define TCP_FIN_WAIT1 4
#define TCP_FIN_WAIT2 5
#define TCP_CLOSE 7
#define TCP_CLOSE_WAIT 8
#define TCP_LAST_ACK 9
#define TCP_LISTEN 10
#define TCP_CLOSING 11

/* conn_info.seq_flags: control flags that tcp_sock bytes_received/bytes_acked count as
 * one byte of sequence space each, subtracted at close so the totals are payload bytes. */
#define SEEN_FIN_IN 1     /* the peer's FIN arrived */
#define SEEN_FIN_ACKED 2  /* our FIN was acknowledged */
#define SEEN_SYN_ACKED 4  /* our SYN was acknowledged (active opens) */

enum conn_event_type { CONN_OPEN = 1, CONN_STATE = 2, CONN_CLOSE = 3 };
enum conn_direction { DIR_UNKNOWN = 0, DIR_PASSIVE = 1, DIR_ACTIVE = 2 };
/* Where the owner came from. */
enum owner_source { OWNER_NONE = 0, OWNER_CONNECT = 1, OWNER_LISTENER = 2, OWNER_SYSCALL = 3 };

/* Which event types reach the ring: bit (1 << type). */
const volatile __u32 event_mask = (1 << CONN_OPEN) | (1 << CONN_STATE) | (1 << CONN_CLOSE);

struct conn_info {
	__u64 start_ns;
	__u64 cookie;
	struct sock_owner owner;
	__u8 direction;
	__u8 owner_source;
	__u8 opened;
	__u8 seq_flags;
};

struct conn_event {
	__u64 ts_ns;
	__u64 cookie;
	__u64 duration_ns;
	__u64 bytes_received;
	__u64 bytes_acked;
	__u32 pid;
	__u32 tid;
	__u32 netns;
	__s32 oldstate;
	__s32 newstate;
	__u16 sport;
	__u16 dport;
	__u16 family;
	__u8 type;
	__u8 direction;
	__u8 owner_source;
	__u8 pad[3];
	__u8 saddr[16];
	__u8 daddr[16];
	char comm[16];
};

TCPSCOPE_RINGBUF(conn_events, 1 << 22, struct conn_event);

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct conn_info);
} conns SEC(".maps");

/* Handshakes completed on this host (a passive child SYN_RECV -> ESTABLISHED), per CPU: the
 * counter a SYN-flood detector weighs SYNs against, exact even when events are lost. */
struct conns_counters {
	__u64 passive_established;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct conns_counters);
} conns_counters SEC(".maps");

static __always_inline void emit(struct trace_event_raw_inet_sock_set_state *ctx, const struct sock *sk,
				 struct conn_info *info, __u8 type, __u64 now, __u32 netns)
{
	struct conn_event *e;

	if (!(event_mask & (1 << type)))
		return;
	e = tcpscope_reserve(conn_events, sizeof(*e));
	if (!e)
		return;
	__builtin_memset(e, 0, sizeof(*e));
	e->ts_ns = now;
	e->type = type;
	e->oldstate = ctx->oldstate;
	e->newstate = ctx->newstate;
	e->sport = ctx->sport;
	e->dport = ctx->dport;
	e->family = ctx->family;
	e->netns = netns;
	if (e->family == AF_INET6) {
		bpf_probe_read_kernel(e->saddr, 16, &ctx->saddr_v6);
		bpf_probe_read_kernel(e->daddr, 16, &ctx->daddr_v6);
	} else {
		bpf_probe_read_kernel(e->saddr, 4, &ctx->saddr);
		bpf_probe_read_kernel(e->daddr, 4, &ctx->daddr);
	}
	e->cookie = info->cookie ? info->cookie : tp_sk_cookie(sk);
	e->pid = info->owner.pid;
	e->tid = info->owner.tid;
	__builtin_memcpy(e->comm, info->owner.comm, sizeof(e->comm));
	e->direction = info->direction;
	e->owner_source = info->owner_source;
	if (type == CONN_CLOSE) {
		const struct tcp_sock *tp = (const struct tcp_sock *)sk;

		e->duration_ns = info->start_ns ? now - info->start_ns : 0;
		__u64 received = BPF_CORE_READ(tp, bytes_received);
		__u64 acked = BPF_CORE_READ(tp, bytes_acked);

		if ((info->seq_flags & SEEN_FIN_IN) && received)
			received--;
		if ((info->seq_flags & SEEN_FIN_ACKED) && acked)
			acked--;
		if ((info->seq_flags & SEEN_SYN_ACKED) && acked)
			acked--;
		e->bytes_received = received;
		e->bytes_acked = acked;
	}
	tcpscope_submit(conn_events, e);
}

/* Which SYN/FIN the kernel's byte counters include, from the transitions seen. Closing from
 * FIN_WAIT2/CLOSING/LAST_ACK without a socket error is the normal path, taken when the
 * FIN arrived (FIN_WAIT2) or our FIN was acked (CLOSING, LAST_ACK); a reset sets sk_err. */
static __always_inline void track_seq_flags(struct conn_info *info, const struct sock *sk, int oldstate, int newstate)
{
	int err = 0;

	if (newstate == TCP_CLOSE)
		err = BPF_CORE_READ(sk, sk_err);
	if (newstate == TCP_CLOSE_WAIT || newstate == TCP_CLOSING)
		info->seq_flags |= SEEN_FIN_IN;
	if (oldstate == TCP_FIN_WAIT1 && newstate == TCP_FIN_WAIT2)
		info->seq_flags |= SEEN_FIN_ACKED;
	if (oldstate == TCP_SYN_SENT && newstate == TCP_ESTABLISHED)
		info->seq_flags |= SEEN_SYN_ACKED;
	if (newstate == TCP_CLOSE && !err) {
		if (oldstate == TCP_FIN_WAIT2)
			info->seq_flags |= SEEN_FIN_IN;
		if (oldstate == TCP_CLOSING || oldstate == TCP_LAST_ACK)
			info->seq_flags |= SEEN_FIN_ACKED;
	}
}

static __always_inline int set_state(struct trace_event_raw_inet_sock_set_state *ctx)
{
	const struct sock *sk = ctx->skaddr;
	__u64 key = (__u64)sk;
	int oldstate = ctx->oldstate, newstate = ctx->newstate;
	struct conn_info *info, cur = {};
	__u64 now;
	__u32 netns;

	if (ctx->protocol != IPPROTO_TCP)
		return 0;
	netns = tp_sk_netns(sk);
	if (newstate == TCP_LISTEN) {
		/* listen() runs in process context: remember who listens on this port. */
		sock_owner_set_listener(netns, ctx->sport);
		return 0;
	}
	if (oldstate == TCP_LISTEN && newstate == TCP_CLOSE)
		return 0; /* a listener closing is not a connection */
	if (!port_filter_pass(ctx->family, ctx->sport, ctx->dport))
		return 0;
	if (oldstate == TCP_SYN_RECV && newstate == TCP_ESTABLISHED) {
		__u32 zero = 0;
		struct conns_counters *k = bpf_map_lookup_elem(&conns_counters, &zero);

		if (k)
			k->passive_established++;
	}

	now = bpf_ktime_get_ns();
	info = bpf_map_lookup_elem(&conns, &key);
	if (info) {
		cur = *info;
	} else {
		struct sock_owner *listener;

		if (newstate == TCP_CLOSE && oldstate == TCP_CLOSE)
			return 0;
		if (newstate == TCP_SYN_SENT) {
			/* connect(): process context, the caller owns the socket. */
			cur.direction = DIR_ACTIVE;
			if (sock_owner_current(&cur.owner))
				cur.owner_source = OWNER_CONNECT;
			cur.start_ns = now;
		} else {
			/* A passive child (LISTEN->SYN_RECV in softirq), or a connection that existed
			 * before the probe started: the listener on the local port owns it. */
			listener = sock_owner_listener(netns, ctx->sport);
			if (listener) {
				cur.owner = *listener;
				cur.owner_source = OWNER_LISTENER;
				cur.direction = DIR_PASSIVE;
			}
			if (newstate == TCP_SYN_RECV) {
				cur.direction = DIR_PASSIVE;
				cur.start_ns = now;
			}
		}
	}
	if (!cur.cookie)
		cur.cookie = tp_sk_cookie(sk);
	track_seq_flags(&cur, sk, oldstate, newstate);

	if (newstate == TCP_CLOSE) {
		emit(ctx, sk, &cur, CONN_STATE, now, netns);
		emit(ctx, sk, &cur, CONN_CLOSE, now, netns);
		if (info)
			bpf_map_delete_elem(&conns, &key);
		return 0;
	}
	emit(ctx, sk, &cur, CONN_STATE, now, netns);
	if (newstate == TCP_ESTABLISHED && !cur.opened) {
		cur.opened = 1;
		emit(ctx, sk, &cur, CONN_OPEN, now, netns);
	}
	bpf_map_update_elem(&conns, &key, &cur, BPF_ANY);
	return 0;
}

/* recvmsg()/sendmsg() run in the process that uses the socket: it becomes the owner (a
 * worker that accepted from a listener inherited from its parent, a passed fd...).
 * sock:sock_recv_length / sock_send_length exist from Linux 6.5; skipped before. */
static __always_inline int refine_owner(struct trace_event_raw_sock_msg_length___compat *ctx)
{
	__u64 key = (__u64)ctx->sk;
	struct conn_info *info;

	if (ctx->protocol != IPPROTO_TCP)
		return 0;
	info = bpf_map_lookup_elem(&conns, &key);
	if (!info || info->owner_source == OWNER_SYSCALL)
		return 0;
	if (sock_owner_current(&info->owner))
		info->owner_source = OWNER_SYSCALL;
	return 0;
}

SEC("tracepoint/sock/sock_recv_length")
int conns_recv_length(struct trace_event_raw_sock_msg_length___compat *ctx)
{
	return refine_owner(ctx);
}

SEC("tracepoint/sock/sock_send_length")
int conns_send_length(struct trace_event_raw_sock_msg_length___compat *ctx)
{
	return refine_owner(ctx);
}

SEC("tracepoint/sock/inet_sock_set_state")
int conns_set_state(struct trace_event_raw_inet_sock_set_state *ctx)
{
	return set_state(ctx);
}

/* tp_btf twins (see tp_btf_twin.h): the same handlers without tracefs. */
SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(conns_set_state_btf, const struct sock *sk, int oldstate, int newstate)
{
	TP_TWIN_RECORD(struct trace_event_raw_inet_sock_set_state, rec);

	if (!sk)
		return 0;
	rec->skaddr = sk;
	rec->oldstate = oldstate;
	rec->newstate = newstate;
	rec->protocol = BPF_CORE_READ(sk, sk_protocol);
	TP_TWIN_FILL_SK_4_6(rec, sk);
	return set_state(rec);
}

static __always_inline int refine_owner_btf(const struct sock *sk)
{
	TP_TWIN_RECORD(struct trace_event_raw_sock_msg_length___compat, rec);

	if (!sk)
		return 0;
	rec->sk = (void *)sk;
	rec->protocol = BPF_CORE_READ(sk, sk_protocol);
	return refine_owner(rec);
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(conns_recv_length_btf, const struct sock *sk)
{
	return refine_owner_btf(sk);
}

SEC("tp_btf/sock_send_length")
int BPF_PROG(conns_send_length_btf, const struct sock *sk)
{
	return refine_owner_btf(sk);
}

/* Gives sockets a cookie before they reach ESTABLISHED: tracepoints can only read it. */
TCPSCOPE_COOKIE_SOCKOPS(conns_sockops)

char LICENSE[] SEC("license") = "GPL";
