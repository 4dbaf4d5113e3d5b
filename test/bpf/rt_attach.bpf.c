// SPDX-License-Identifier: GPL-2.0
// Programs for the runtime's integration tests: one per attach type this kernel supports,
// each counting what it sees for a port chosen by the test, so traffic the test makes
// is told apart from the machine's own.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "tcpscope.h"

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define IPPROTO_TCP 6
#define AF_INET 2
#define AF_INET6 10

const volatile __u16 target_port = 0;   /* host order */
const volatile __u8 trace_printk_enabled = 0;
__u64 tracepoint_hits = 0;
__u64 raw_tracepoint_hits = 0;
__u64 tp_btf_hits = 0;
__u64 cgroup_skb_hits = 0;
__u64 sock_create_hits = 0;
__u64 sock_ops_hits = 0;
__u64 socket_filter_bytes = 0;
__u64 uprobe_hits = 0;
__u64 bytes_seen = 0;

enum hook_kind { HOOK_XDP = 1, HOOK_TC = 2, HOOK_TRACEPOINT = 3 };

struct state_event {
	__u64 ts_ns;
	__u32 pid;
	__s32 oldstate;
	__s32 newstate;
	__u16 sport;
	__u16 dport;
	__u16 family;
	__u8 saddr[16];
	__u8 daddr[16];
	char comm[16];
};

TCPSCOPE_RINGBUF(state_events, 1 << 16, struct state_event);

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} perf_events SEC(".maps");

struct syn_key {
	__u32 hook; /* enum hook_kind */
	__u16 dport;
	__u16 family;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct syn_key);
	__type(value, __u64);
} syn_count SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} percpu_packets SEC(".maps");

struct lpm_v4_key {
	__u32 prefixlen;
	__u8 addr[4];
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1024);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct lpm_v4_key);
	__type(value, __u32);
} v4_prefixes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 128);
	__type(key, __u32);
	__type(value, __u64);
} lru_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} array_map SEC(".maps");

/* Parses an Ethernet frame; returns the TCP header or NULL, and the IP family. */
static __always_inline struct tcphdr *parse_tcp(void *data, void *data_end, __u16 *family)
{
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > data_end)
		return NULL;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);
		if ((void *)(ip + 1) > data_end || ip->protocol != IPPROTO_TCP)
			return NULL;
		struct tcphdr *tcp = (void *)ip + ip->ihl * 4;
		if ((void *)(tcp + 1) > data_end)
			return NULL;
		*family = AF_INET;
		return tcp;
	}
	if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		if ((void *)(ip6 + 1) > data_end || ip6->nexthdr != IPPROTO_TCP)
			return NULL;
		struct tcphdr *tcp = (void *)(ip6 + 1);
		if ((void *)(tcp + 1) > data_end)
			return NULL;
		*family = AF_INET6;
		return tcp;
	}
	return NULL;
}

static __always_inline void count_syn(__u32 hook, struct tcphdr *tcp, __u16 family)
{
	if (!tcp->syn || tcp->ack || bpf_ntohs(tcp->dest) != target_port)
		return;
	struct syn_key key = { .hook = hook, .dport = bpf_ntohs(tcp->dest), .family = family };
	__u64 one = 1, *count = bpf_map_lookup_elem(&syn_count, &key);
	if (count)
		__sync_fetch_and_add(count, 1);
	else
		bpf_map_update_elem(&syn_count, &key, &one, BPF_NOEXIST);
}

SEC("xdp")
int xdp_count_syn(struct xdp_md *ctx)
{
	__u16 family = 0;
	struct tcphdr *tcp = parse_tcp((void *)(long)ctx->data, (void *)(long)ctx->data_end, &family);
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(&percpu_packets, &zero);
	if (n)
		*n += 1;
	if (tcp)
		count_syn(HOOK_XDP, tcp, family);
	return XDP_PASS;
}

SEC("tc")
int tc_count_syn(struct __sk_buff *skb)
{
	__u16 family = 0;
	struct tcphdr *tcp = parse_tcp((void *)(long)skb->data, (void *)(long)skb->data_end, &family);
	if (tcp)
		count_syn(HOOK_TC, tcp, family);
	return 0; /* TC_ACT_OK */
}

/* Emits one fixed event per run: the producer for ring buffer tests and benchmarks,
 * driven by BPF_PROG_TEST_RUN with `repeat`. */
SEC("tc")
int tc_emit_event(struct __sk_buff *skb)
{
	struct state_event *e = tcpscope_reserve(state_events, sizeof(*e));
	if (!e)
		return 0;
	e->ts_ns = bpf_ktime_get_ns();
	e->pid = 42;
	e->oldstate = 1;
	e->newstate = 2;
	e->sport = 1234;
	e->dport = target_port;
	e->family = AF_INET;
	__builtin_memset(e->saddr, 0, sizeof(e->saddr));
	__builtin_memset(e->daddr, 0, sizeof(e->daddr));
	__builtin_memcpy(e->comm, "test-run", 9);
	tcpscope_submit(state_events, e);
	return 0;
}

SEC("tc")
int tc_emit_perf(struct __sk_buff *skb)
{
	struct state_event e = {};
	e.pid = 43;
	e.dport = target_port;
	bpf_perf_event_output(skb, &perf_events, BPF_F_CURRENT_CPU, &e, sizeof(e));
	return 0;
}

static __always_inline void copy_addrs(struct state_event *e, const struct trace_event_raw_inet_sock_set_state *ctx)
{
	if (e->family == AF_INET) {
		__builtin_memset(e->saddr, 0, 16);
		__builtin_memset(e->daddr, 0, 16);
		bpf_core_read(e->saddr, 4, &ctx->saddr);
		bpf_core_read(e->daddr, 4, &ctx->daddr);
	} else {
		BPF_CORE_READ_INTO(&e->saddr, ctx, saddr_v6);
		BPF_CORE_READ_INTO(&e->daddr, ctx, daddr_v6);
	}
}

SEC("tracepoint/sock/inet_sock_set_state")
int tp_state(struct trace_event_raw_inet_sock_set_state *ctx)
{
	__u16 sport = BPF_CORE_READ(ctx, sport), dport = BPF_CORE_READ(ctx, dport);
	if (BPF_CORE_READ(ctx, protocol) != IPPROTO_TCP || (sport != target_port && dport != target_port))
		return 0;
	__sync_fetch_and_add(&tracepoint_hits, 1);
	struct state_event *e = tcpscope_reserve(state_events, sizeof(*e));
	if (!e)
		return 0;
	e->ts_ns = bpf_ktime_get_ns();
	e->pid = bpf_get_current_pid_tgid() >> 32;
	e->oldstate = BPF_CORE_READ(ctx, oldstate);
	e->newstate = BPF_CORE_READ(ctx, newstate);
	e->sport = sport;
	e->dport = dport;
	e->family = BPF_CORE_READ(ctx, family);
	copy_addrs(e, ctx);
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	if (trace_printk_enabled)
		bpf_printk("tcpscope-test state %d->%d port %d", e->oldstate, e->newstate, dport);
	tcpscope_submit(state_events, e);
	return 0;
}

SEC("raw_tracepoint/inet_sock_set_state")
int raw_tp_state(struct bpf_raw_tracepoint_args *ctx)
{
	struct sock *sk = (struct sock *)ctx->args[0];
	__u16 sport = BPF_CORE_READ(sk, __sk_common.skc_num);
	if (sport == target_port)
		__sync_fetch_and_add(&raw_tracepoint_hits, 1);
	return 0;
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(btf_tp_state, const struct sock *sk, int oldstate, int newstate)
{
	if (sk->__sk_common.skc_num == target_port)
		__sync_fetch_and_add(&tp_btf_hits, 1);
	return 0;
}

SEC("cgroup_skb/ingress")
int cgroup_ingress(struct __sk_buff *skb)
{
	if (skb->local_port == target_port)
		__sync_fetch_and_add(&cgroup_skb_hits, 1);
	return 1;
}

SEC("cgroup/sock_create")
int cgroup_sock_create(struct bpf_sock *sk)
{
	if (sk->protocol == IPPROTO_TCP)
		__sync_fetch_and_add(&sock_create_hits, 1);
	return 1;
}

SEC("sockops")
int sockops_count(struct bpf_sock_ops *skops)
{
	if (skops->local_port == target_port &&
	    (skops->op == BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB || skops->op == BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB))
		__sync_fetch_and_add(&sock_ops_hits, 1);
	return 1;
}

SEC("socket")
int socket_count(struct __sk_buff *skb)
{
	__sync_fetch_and_add(&socket_filter_bytes, skb->len);
	return skb->len; /* keep the whole packet */
}

SEC("uprobe")
int BPF_KPROBE(uprobe_hit)
{
	__sync_fetch_and_add(&uprobe_hits, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
