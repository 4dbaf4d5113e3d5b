/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Which process owns a TCP socket, for events that happen in softirq (a passive open is
 * completed by the network stack while some unrelated task is `current`).
 *
 * `listen_owners` maps (netns, local port) of listening sockets to the process that called
 * listen(): filled in process context by the CLOSE->LISTEN transition of
 * sock:inet_sock_set_state, and seeded by user space at start from /proc/net/tcp{,6} and
 * /proc/PID/fd for sockets that were listening already.
 */
#ifndef TCPSCOPE_SOCK_OWNER_H
#define TCPSCOPE_SOCK_OWNER_H

#include <bpf/bpf_helpers.h>

struct listen_key {
	__u32 netns;
	__u16 port;   /* host order */
	__u16 pad;
};

struct sock_owner {
	__u32 pid;    /* tgid */
	__u32 tid;
	char comm[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, struct listen_key);
	__type(value, struct sock_owner);
} listen_owners SEC(".maps");

/* The current task as an owner; false in contexts with no task (idle, pid 0). */
static __always_inline int sock_owner_current(struct sock_owner *owner)
{
	__u64 id = bpf_get_current_pid_tgid();

	owner->pid = id >> 32;
	owner->tid = (__u32)id;
	bpf_get_current_comm(owner->comm, sizeof(owner->comm));
	return owner->pid != 0;
}

static __always_inline void sock_owner_set_listener(__u32 netns, __u16 port)
{
	struct listen_key key = { .netns = netns, .port = port };
	struct sock_owner owner = {};

	if (sock_owner_current(&owner))
		bpf_map_update_elem(&listen_owners, &key, &owner, BPF_ANY);
}

static __always_inline struct sock_owner *sock_owner_listener(__u32 netns, __u16 port)
{
	struct listen_key key = { .netns = netns, .port = port };

	return bpf_map_lookup_elem(&listen_owners, &key);
}

#endif /* TCPSCOPE_SOCK_OWNER_H */
