/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * tp_btf twins of tracepoint programs. A tracepoint program needs the tracepoint's id from
 * tracefs, which is root-only (mode 0700): a process holding CAP_BPF and CAP_PERFMON but not
 * root cannot attach one. A tp_btf program attaches by BTF id instead. Its twin receives the
 * tracepoint's raw arguments, rebuilds the record the kernel's TP_fast_assign would have
 * written (only the fields the handler reads) on the stack, and calls the same handler, so
 * both paths share one implementation.
 *
 * The record is a CO-RE type: its fields are written at the running kernel's offsets, which
 * are also where the handler reads them. The slack keeps a kernel whose record is larger
 * than the compile-time one (an older vmlinux.h) inside the stack object.
 */
#ifndef TCPSCOPE_TP_BTF_TWIN_H
#define TCPSCOPE_TP_BTF_TWIN_H

#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

/* `type *name` pointing at zeroed stack room for the record (a byte buffer: a struct
 * wrapping the CO-RE type would be an anonymous type that CO-RE cannot relocate). */
#define TP_TWIN_RECORD(type, name)                                                                   \
	__u8 name##_room[sizeof(type) + 16] __attribute__((aligned(8))) = {};                         \
	type *name = (type *)name##_room

/* The saddr/daddr/saddr_v6/daddr_v6 + sport/dport (+ family) fields from a full socket, as
 * the tcp_event_sk*, inet_sock_set_state and tcp_retransmit_skb classes store them. */
#define TP_TWIN_FILL_SK_4_6(rec, sk)                                                                 \
	do {                                                                                         \
		const struct sock *__s = (const struct sock *)(sk);                                   \
		/* inet_sport, as the kernel's records: skc_num is already 0 at TCP_CLOSE */         \
		(rec)->sport = bpf_ntohs(BPF_CORE_READ((const struct inet_sock *)__s, inet_sport));    \
		(rec)->dport = bpf_ntohs(BPF_CORE_READ(__s, __sk_common.skc_dport));                  \
		if (bpf_core_field_exists((rec)->family))                                             \
			(rec)->family = BPF_CORE_READ(__s, __sk_common.skc_family);                   \
		bpf_probe_read_kernel((rec)->saddr, 4, &__s->__sk_common.skc_rcv_saddr);              \
		bpf_probe_read_kernel((rec)->daddr, 4, &__s->__sk_common.skc_daddr);                  \
		bpf_probe_read_kernel((rec)->saddr_v6, 16, &__s->__sk_common.skc_v6_rcv_saddr);       \
		bpf_probe_read_kernel((rec)->daddr_v6, 16, &__s->__sk_common.skc_v6_daddr);           \
	} while (0)

/* A `struct sockaddr_in/in6` in a __u8[28] field (tcp_probe, tcp_send_reset 6.10+), as
 * TP_STORE_ADDR_PORTS stores it: family, port (network order), address. */
static __always_inline void tp_twin_sockaddr(__u8 *field, __u16 family, __u16 port, const void *addr4, const void *addr6)
{
	/* The field is in the zeroed stack record: written in place. */
	field[0] = family & 0xff;
	field[1] = family >> 8;
	field[2] = port >> 8;
	field[3] = port & 0xff;
	if (family == AF_INET6)
		bpf_probe_read_kernel(field + 8, 16, addr6);
	else
		bpf_probe_read_kernel(field + 4, 4, addr4);
}

/* Local and remote sockaddr of a full socket. */
static __always_inline void tp_twin_sk_sockaddrs(__u8 *saddr, __u8 *daddr, const struct sock *sk)
{
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);

	tp_twin_sockaddr(saddr, family, bpf_ntohs(BPF_CORE_READ((const struct inet_sock *)sk, inet_sport)),
			 &sk->__sk_common.skc_rcv_saddr, &sk->__sk_common.skc_v6_rcv_saddr);
	tp_twin_sockaddr(daddr, family, bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport)),
			 &sk->__sk_common.skc_daddr, &sk->__sk_common.skc_v6_daddr);
}

#endif /* TCPSCOPE_TP_BTF_TWIN_H */
