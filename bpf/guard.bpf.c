// SPDX-License-Identifier: GPL-2.0
// The guard: an XDP program that drops or rate-limits incoming TCP from sources listed in
// two LPM tries (IPv4 and IPv6), and passes everything else: unlisted sources, allow-listed
// sources, non-TCP and non-IP frames. Longest prefix wins, so an allow entry inside a
// denied range exempts it. Each entry counts what it dropped and let through; a rate
// entry is a token bucket refilled from bpf_ktime_get_ns with lock-free atomics, so all
// CPUs share one bucket per entry. User space adds, changes and expires entries while the
// program runs.
//
// Two programs share the maps: guard_xdp uses compare-and-swap and fetch-and-add (BPF_ATOMIC
// with BPF_FETCH, kernels 5.12 and later); guard_xdp_xadd, for older kernels (5.10), uses
// only the atomic add without result (BPF_XADD) they have. User space loads one of them.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "tcp_parse.h"

#define XDP_PASS_ 2
#define XDP_DROP_ 1

#define GUARD_DROP 1   /* drop every matching packet */
#define GUARD_RATE 2   /* token bucket: pass `rate` packets/s with bursts of `capacity` */
#define GUARD_ALLOW 3  /* pass (an exception inside a denied prefix) */

#define GUARD_SYN_ONLY 0x1 /* act on connection attempts (SYN without ACK) only */

#define NANO 1000000000ULL

struct guard_config {
	__u32 flags; /* GUARD_* flags */
	__u32 _pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct guard_config);
} guard_config SEC(".maps");

struct guard_v4_key {
	__u32 prefixlen;
	__u8 addr[4];
};

struct guard_v6_key {
	__u32 prefixlen;
	__u8 addr[16];
};

/* One listed prefix. User space writes action/rate/capacity/fill_ns; the program owns
 * the bucket and the counters (updated atomically: several CPUs hit one entry). */
struct guard_rule {
	__u32 action;          /* GUARD_DROP, GUARD_RATE, GUARD_ALLOW */
	__u32 prefixlen;       /* the key's: an LPM lookup returns covering entries too, so
				* user space tells an exact match by this */
	__u64 rate;            /* GUARD_RATE: tokens (packets) per second */
	__u64 capacity;        /* bucket size in nanotokens (burst * 1e9) */
	__u64 fill_ns;         /* time an empty bucket takes to fill: elapsed*rate is bounded */
	__s64 tokens;          /* nanotokens in the bucket */
	__u64 last_ns;         /* last refill */
	__u64 dropped_packets;
	__u64 dropped_bytes;
	__u64 passed_packets;  /* let through by the bucket or the allow entry */
	__u64 passed_bytes;
};

/* No preallocation: memory follows the number of entries, up to max_entries (set by the
 * loader). */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1 << 24);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct guard_v4_key);
	__type(value, struct guard_rule);
} guard_v4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1 << 24);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct guard_v6_key);
	__type(value, struct guard_rule);
} guard_v6 SEC(".maps");

struct guard_stats {
	__u64 packets;       /* frames seen */
	__u64 passed;
	__u64 passed_bytes;
	__u64 dropped;
	__u64 dropped_bytes;
	__u64 matched;       /* TCP packets whose source is listed (any action) */
	__u64 rate_passed;   /* let through by a token bucket */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct guard_stats);
} guard_stats SEC(".maps");

/* Takes one token from the entry's bucket: 1 when the packet may pass. The CPU that wins
 * the compare-and-swap on last_ns adds the tokens for the elapsed time (capped at the
 * bucket size); every CPU then takes its token with a fetch-and-add, and gives it back
 * when the bucket was empty. */
static __always_inline int take_token(struct guard_rule *r, __u64 now)
{
	__u64 last = r->last_ns;
	__s64 cap = (__s64)r->capacity;

	if (now > last && __sync_val_compare_and_swap(&r->last_ns, last, now) == last) {
		__u64 elapsed = now - last;
		__s64 add = elapsed >= r->fill_ns ? cap : (__s64)(elapsed * r->rate);
		__s64 before = __sync_fetch_and_add(&r->tokens, add);
		if (before + add > cap)
			__sync_fetch_and_add(&r->tokens, cap - (before + add));
	}
	__s64 had = __sync_fetch_and_add(&r->tokens, -(__s64)NANO);
	if (had >= (__s64)NANO)
		return 1;
	__sync_fetch_and_add(&r->tokens, (__s64)NANO);
	return 0;
}

/* take_token for kernels without BPF_FETCH atomics (before 5.12: "BPF_STX uses reserved
 * fields"), with atomic adds whose result is not used. Credit and time move together: a
 * refill adds `elapsed` to last_ns and the tokens for it to the bucket, so two CPUs refilling
 * at once both add, last_ns runs ahead of the clock by the overlap and the next refill waits
 * for it: over time the bucket never gets more than rate * time (plus the burst). A token is
 * taken after reading that one is there; CPUs racing for the last token may both take it,
 * the bucket goes below zero and the refills pay the debt back. On one CPU at a time this
 * is exactly take_token. */
static __always_inline int take_token_xadd(struct guard_rule *r, __u64 now)
{
	__u64 last = *(volatile __u64 *)&r->last_ns;
	__s64 cap = (__s64)r->capacity;

	if (now > last) {
		__u64 elapsed = now - last;
		__s64 tokens = *(volatile __s64 *)&r->tokens;
		__s64 add = elapsed >= r->fill_ns ? cap : (__s64)(elapsed * r->rate);
		if (tokens + add > cap)
			add = cap - tokens;
		__sync_fetch_and_add(&r->last_ns, elapsed);
		__sync_fetch_and_add(&r->tokens, add);
	}
	if (*(volatile __s64 *)&r->tokens < (__s64)NANO)
		return 0;
	__sync_fetch_and_add(&r->tokens, -(__s64)NANO);
	return 1;
}

/* The program; `xadd` (a constant once inlined) picks the bucket's atomics. */
static __always_inline int guard(struct xdp_md *ctx, const int xadd)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u64 len = data_end - data;
	struct guard_rule *r = NULL;
	struct tcp_packet pkt;
	__u32 zero = 0;

	struct guard_stats *st = bpf_map_lookup_elem(&guard_stats, &zero);
	struct guard_config *cfg = bpf_map_lookup_elem(&guard_config, &zero);
	if (!st || !cfg)
		return XDP_PASS_;
	st->packets++;

	if (tcp_parse(data, data_end, &pkt) < 0)
		goto pass;
	if ((cfg->flags & GUARD_SYN_ONLY) && (pkt.flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) != TCP_FLAG_SYN)
		goto pass;
	if (pkt.family == AF_INET) {
		struct guard_v4_key k = { .prefixlen = 32 };
		__builtin_memcpy(k.addr, pkt.saddr, 4);
		r = bpf_map_lookup_elem(&guard_v4, &k);
	} else {
		struct guard_v6_key k = { .prefixlen = 128 };
		__builtin_memcpy(k.addr, pkt.saddr, 16);
		r = bpf_map_lookup_elem(&guard_v6, &k);
	}
	if (!r)
		goto pass;
	st->matched++;

	if (r->action == GUARD_ALLOW ||
	    (r->action == GUARD_RATE &&
	     (xadd ? take_token_xadd(r, bpf_ktime_get_ns()) : take_token(r, bpf_ktime_get_ns())))) {
		if (r->action == GUARD_RATE)
			st->rate_passed++;
		__sync_fetch_and_add(&r->passed_packets, 1);
		__sync_fetch_and_add(&r->passed_bytes, len);
		goto pass;
	}
	if (r->action != GUARD_DROP && r->action != GUARD_RATE)
		goto pass; /* unknown action: never block by mistake */
	__sync_fetch_and_add(&r->dropped_packets, 1);
	__sync_fetch_and_add(&r->dropped_bytes, len);
	st->dropped++;
	st->dropped_bytes += len;
	return XDP_DROP_;
pass:
	st->passed++;
	st->passed_bytes += len;
	return XDP_PASS_;
}

SEC("xdp")
int guard_xdp(struct xdp_md *ctx)
{
	return guard(ctx, 0);
}

SEC("xdp")
int guard_xdp_xadd(struct xdp_md *ctx)
{
	return guard(ctx, 1);
}

/* Types user space encodes (BTF keeps them). */
struct guard_config *guard__config_type __attribute__((unused));

char LICENSE[] SEC("license") = "GPL";
