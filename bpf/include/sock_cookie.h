/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Tracepoint programs may not call bpf_get_socket_cookie (only BPF_PROG_TYPE_TRACING may,
 * from 5.12), and a socket has no cookie until something asks for one: they read
 * sk->__sk_common.skc_cookie with CO-RE (tp_sk_cookie in tp_compat.h) and get 0 for a
 * socket nobody asked about. TCPSCOPE_COOKIE_SOCKOPS defines a sock_ops program, attached
 * to the root cgroup, that asks on connect() (TCP_CONNECT_CB, before SYN_SENT->ESTABLISHED)
 * and when a passive connection completes (PASSIVE_ESTABLISHED_CB, before
 * SYN_RECV->ESTABLISHED), so every connection made while it is attached has a cookie.
 */
#ifndef TCPSCOPE_SOCK_COOKIE_H
#define TCPSCOPE_SOCK_COOKIE_H

#include <bpf/bpf_helpers.h>

#define TCPSCOPE_COOKIE_SOCKOPS(name)                                      \
	SEC("sockops")                                                     \
	int name(struct bpf_sock_ops *skops)                               \
	{                                                                  \
		switch (skops->op) {                                       \
		case BPF_SOCK_OPS_TCP_CONNECT_CB:                          \
		case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:                  \
			bpf_get_socket_cookie(skops);                      \
			break;                                             \
		}                                                          \
		return 1;                                                  \
	}

#endif /* TCPSCOPE_SOCK_COOKIE_H */
