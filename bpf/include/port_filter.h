/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * In-kernel port filter shared by tcpscope's TCP probes: when `filter_ports` is set, only
 * events whose local or remote port is a key of `port_filter` (host order) pass.
 */
#ifndef TCPSCOPE_PORT_FILTER_H
#define TCPSCOPE_PORT_FILTER_H

#include <bpf/bpf_helpers.h>

const volatile __u8 filter_ports = 0;
/* Only this address family (2 or 10) when non-zero. */
const volatile __u16 filter_family = 0;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u16);
	__type(value, __u8);
} port_filter SEC(".maps");

static __always_inline int port_filter_pass(__u16 family, __u16 sport, __u16 dport)
{
	if (filter_family && family != filter_family)
		return 0;
	if (!filter_ports)
		return 1;
	return bpf_map_lookup_elem(&port_filter, &sport) || bpf_map_lookup_elem(&port_filter, &dport);
}

#endif /* TCPSCOPE_PORT_FILTER_H */
