/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Reading TCP tracepoints whose layouts changed between kernels 5.10 and 7.x, with CO-RE.
 *
 * Every tracepoint context is read through `struct trace_event_raw_*` with
 * preserve_access_index, so field offsets are relocated against the running kernel's BTF.
 * Where a tracepoint moved to another event class (tcp_retransmit_skb got its own struct in
 * 6.13, tcp_send_reset in 6.10) the old class is declared here as a `___old` flavour and the
 * program picks the one the kernel has with bpf_core_type_exists(). Fields added later
 * (family, reason, rx_sk, err) are read only when bpf_core_field_exists() says so.
 * Enum-typed fields are declared with their enum type: CO-RE does not match an int field
 * against an enum one.
 */
#ifndef TCPSCOPE_TP_COMPAT_H
#define TCPSCOPE_TP_COMPAT_H

#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef AF_INET6
#define AF_INET6 10
#endif
#ifndef IPPROTO_TCP
#define IPPROTO_TCP 6
#endif

/* The event class tcp_retransmit_skb and tcp_send_reset shared before 6.10/6.13. */
struct trace_event_raw_tcp_event_sk_skb___old {
	struct trace_entry ent;
	const void *skbaddr;
	const void *skaddr;
	int state;
	__u16 sport;
	__u16 dport;
	__u16 family;
	__u8 saddr[4];
	__u8 daddr[4];
	__u8 saddr_v6[16];
	__u8 daddr_v6[16];
} __attribute__((preserve_access_index));

/* Layouts as the kernel this was compiled against has them; fields missing elsewhere are
 * guarded with bpf_core_field_exists. Re-declared as flavours so vmlinux.h from an older
 * kernel still compiles this file. */
struct trace_event_raw_tcp_retransmit_skb___new {
	struct trace_entry ent;
	const void *skbaddr;
	const void *skaddr;
	int state;
	__u16 sport;
	__u16 dport;
	__u16 family;
	__u8 saddr[4];
	__u8 daddr[4];
	__u8 saddr_v6[16];
	__u8 daddr_v6[16];
	int err;
} __attribute__((preserve_access_index));

struct trace_event_raw_tcp_send_reset___new {
	struct trace_entry ent;
	const void *skbaddr;
	const void *skaddr;
	int state;
	enum sk_rst_reason reason;
	__u8 saddr[28];
	__u8 daddr[28];
} __attribute__((preserve_access_index));

struct trace_event_raw_tcp_event_sk___compat {
	struct trace_entry ent;
	const void *skaddr;
	__u16 sport;
	__u16 dport;
	__u16 family;
	__u8 saddr[4];
	__u8 daddr[4];
	__u8 saddr_v6[16];
	__u8 daddr_v6[16];
	__u64 sock_cookie;
} __attribute__((preserve_access_index));

struct trace_event_raw_tcp_probe___compat {
	struct trace_entry ent;
	__u8 saddr[28];
	__u8 daddr[28];
	__u16 sport;
	__u16 dport;
	__u16 family;
	__u32 mark;
	__u16 data_len;
	__u32 snd_nxt;
	__u32 snd_una;
	__u32 snd_cwnd;
	__u32 ssthresh;
	__u32 snd_wnd;
	__u32 srtt;
	__u32 rcv_wnd;
	__u64 sock_cookie;
	const void *skbaddr;
	const void *skaddr;
} __attribute__((preserve_access_index));

struct trace_event_raw_kfree_skb___compat {
	struct trace_entry ent;
	void *skbaddr;
	void *location;
	void *rx_sk;
	unsigned short protocol;
	enum skb_drop_reason reason;
} __attribute__((preserve_access_index));

struct trace_event_raw_tcp_event_skb___compat {
	struct trace_entry ent;
	const void *skbaddr;
	__u8 saddr[28];
	__u8 daddr[28];
} __attribute__((preserve_access_index));

struct trace_event_raw_sock_msg_length___compat {
	struct trace_entry ent;
	void *sk;
	__u16 family;
	__u16 protocol;
	int ret;
	int flags;
} __attribute__((preserve_access_index));

/* Where one side of a connection is: family, address (IPv4 in the first 4 bytes), port. */
struct tp_endpoints {
	__u16 family;
	__u16 sport;
	__u16 dport;
	__u8 saddr[16];
	__u8 daddr[16];
};

/* The socket's own family, for layouts without a family field. */
static __always_inline __u16 tp_sk_family(const void *sk)
{
	if (!sk)
		return 0;
	return BPF_CORE_READ((struct sock *)sk, __sk_common.skc_family);
}

/* The kernel's socket cookie, or 0 when none was ever generated for this socket. */
static __always_inline __u64 tp_sk_cookie(const void *sk)
{
	if (!sk)
		return 0;
	return (__u64)BPF_CORE_READ((struct sock *)sk, __sk_common.skc_cookie.counter);
}

/* Network namespace inode number of a socket (what /proc/PID/ns/net's inode is). */
static __always_inline __u32 tp_sk_netns(const void *sk)
{
	if (!sk)
		return 0;
	return BPF_CORE_READ((struct sock *)sk, __sk_common.skc_net.net, ns.inum);
}

/* Reads a `struct sockaddr_in/in6` stored in a __u8[28] tracepoint field. */
static __always_inline void tp_read_sockaddr(const void *field, __u16 *family, __u16 *port, __u8 *addr)
{
	__u8 raw[28] = {};

	bpf_probe_read_kernel(raw, sizeof(raw), field);
	*family = *(__u16 *)raw;
	*port = (__u16)((raw[2] << 8) | raw[3]);
	if (*family == AF_INET6)
		__builtin_memcpy(addr, raw + 8, 16);
	else
		__builtin_memcpy(addr, raw + 4, 4);
}

/* Copies the saddr/daddr/saddr_v6/daddr_v6 style of address fields. */
#define TP_READ_ADDRS_4_6(ctx, ep)                                                                   \
	do {                                                                                         \
		if ((ep)->family == AF_INET6) {                                                      \
			bpf_probe_read_kernel((ep)->saddr, 16, &(ctx)->saddr_v6);                     \
			bpf_probe_read_kernel((ep)->daddr, 16, &(ctx)->daddr_v6);                     \
		} else {                                                                             \
			bpf_probe_read_kernel((ep)->saddr, 4, &(ctx)->saddr);                         \
			bpf_probe_read_kernel((ep)->daddr, 4, &(ctx)->daddr);                         \
		}                                                                                    \
	} while (0)

/* sport/dport/family (if the layout has it, else from the socket) and the addresses. */
#define TP_READ_ENDPOINTS_4_6(ctx, ep)                                                               \
	do {                                                                                         \
		(ep)->sport = (ctx)->sport;                                                          \
		(ep)->dport = (ctx)->dport;                                                          \
		if (bpf_core_field_exists((ctx)->family))                                            \
			(ep)->family = (ctx)->family;                                                \
		else                                                                                 \
			(ep)->family = tp_sk_family((ctx)->skaddr);                                   \
		TP_READ_ADDRS_4_6(ctx, ep);                                                          \
	} while (0)

#endif /* TCPSCOPE_TP_COMPAT_H */
