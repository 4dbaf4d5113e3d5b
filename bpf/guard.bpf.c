// SPDX-License-Identifier: GPL-2.0
// The guard: an XDP program that drops or rate-limits incoming TCP from sources listed in
// two LPM tries (IPv4 and IPv6), and passes everything else: unlisted sources, allow-listed
// sources, non-TCP and non-IP frames. Longest prefix wins, so an allow entry inside a
// denied range exempts it. Each entry counts what it dropped and let through; a rate
// entry is a token bucket refilled from bpf_ktime_get_ns with lock-free atomics, so all
// CPUs share one bucket per entry. User space adds, changes and expires entries while the
// program runs.
//
//
// Protected ports (a hash keyed by destination port, 0 = every port) answer a SYN flood
// with no source to list: SYNs without ACK from unlisted sources to a protected port take a
// token from the port's bucket and go to the kernel while there are tokens; beyond that they
// are answered here with a SYN cookie (GUARD_COOKIE) or dropped (GUARD_RATE). Everything
// else (established traffic, the client's final ACK) passes: the kernel checks the cookie in
// the ACK as it checks its own, with the same helper and secret (net.ipv4.tcp_syncookies).
//
// Three programs share the maps: guard_xdp answers cookies (bpf_tcp_raw_gen_syncookie_*,
// kernels 6.0 and later) and uses compare-and-swap and fetch-and-add (BPF_ATOMIC with
// BPF_FETCH, 5.12 and later); guard_xdp_nocookie is the same without cookies (over-budget
// SYNs are dropped); guard_xdp_xadd, for kernels before 5.12, uses only the atomic add
// without result (BPF_XADD) they have, and no cookies. User space loads the first that the
// kernel accepts.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "tcp_parse.h"

#define XDP_PASS_ 2
#define XDP_DROP_ 1
#define XDP_TX_ 3
#ifndef ETH_ALEN
#define ETH_ALEN 6
#endif

#define GUARD_DROP 1   /* drop every matching packet */
#define GUARD_RATE 2   /* token bucket: pass `rate` packets/s with bursts of `capacity` */
#define GUARD_ALLOW 3  /* pass (an exception inside a denied prefix) */
#define GUARD_COOKIE 4 /* protected port: pass `rate` SYNs/s, answer the rest with SYN cookies */

#define GUARD_SYN_ONLY 0x1 /* act on connection attempts (SYN without ACK) only */
#define GUARD_PORTS 0x2    /* guard_ports has entries: look SYNs up there */

#define NANO 1000000000ULL

struct guard_config {
	__u32 flags; /* GUARD_* flags */
	__u16 mss4;  /* MSS a SYN cookie's SYN-ACK advertises (IPv4, IPv6): the interfaces' MTU */
	__u16 mss6;  /* less the headers */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct guard_config);
} guard_config SEC(".maps");

/* The trie keeps a value right after its key's data (lpm_trie_node.data + data_size), which
 * is 8-aligned only when the data is: with 4 bytes of address the rule's 64-bit counters sat
 * at 4 mod 8, and arm64's atomics (LDXR/STXR, LSE) fault on them: a kernel oops on the first
 * matched packet. `pad` (always zero, beyond every prefixlen used) makes the data 8 bytes. */
struct guard_v4_key {
	__u32 prefixlen;
	__u8 addr[4];
	__u8 pad[4];
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
	__u64 cookies;         /* GUARD_COOKIE: SYNs answered with a SYN cookie */
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

/* Protected destination ports, key: port in host order, 0 for every port. The value's
 * action is GUARD_COOKIE or GUARD_RATE (over-budget SYNs dropped). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct guard_rule);
} guard_ports SEC(".maps");

struct guard_stats {
	__u64 packets;       /* frames seen */
	__u64 passed;
	__u64 passed_bytes;
	__u64 dropped;
	__u64 dropped_bytes;
	__u64 matched;       /* TCP packets whose source is listed (any action) */
	__u64 rate_passed;   /* let through by a token bucket */
	__u64 port_matched;  /* SYNs to a protected port from unlisted sources */
	__u64 port_passed;   /* of those, within the port's budget: passed to the kernel */
	__u64 port_dropped;  /* over the budget and dropped (no cookies, or a frame they cannot answer) */
	__u64 cookies;       /* over the budget and answered with a SYN cookie (XDP_TX) */
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

/* Ones' complement sum of `n` 16-bit words as loaded (network order stays network order:
 * the folded complement is stored back the same way). */
static __always_inline __u32 csum_words(const __u16 *w, const int n, __u32 sum)
{
#pragma unroll
	for (int i = 0; i < n; i++)
		sum += w[i];
	return sum;
}

static __always_inline __u16 csum_fold(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

/* The SYN's options are copied to a per-CPU buffer and scanned there by a global function
 * (verified once, on its own), as packets.bpf.c does; only the client's MSS is needed, and a
 * scan that tracks nothing else keeps the verifier's states few. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u8[TCP_OPTS_BUF]);
} guard_opts SEC(".maps");

/* The MSS option among the `end` (0..40) option bytes in guard_opts; 536, the default
 * without one (RFC 9293), when there is none or the options are malformed. */
__attribute__((noinline)) int guard_parse_mss(__u32 end)
{
	__u32 zero = 0, off = 0;
	__u8 *raw = bpf_map_lookup_elem(&guard_opts, &zero);

	if (!raw)
		return 536;
	if (end > TCP_OPTS_MAX)
		end = TCP_OPTS_MAX;
	for (int i = 0; i < TCP_OPTS_MAX; i++) {
		if (off + 4 > end)
			break;
		off &= 0x3f; /* bounds the reads for the verifier (off < 40 here) */
		__u8 kind = raw[off];
		if (kind == 0)
			break;
		if (kind == 1) {
			off++;
			continue;
		}
		__u8 len = raw[off + 1];
		if (kind == 2 && len == 4) {
			__u32 mss = (__u32)raw[off + 2] << 8 | raw[off + 3];
			return mss ? mss : 536;
		}
		if (len < 2)
			break;
		off += len;
	}
	return 536;
}

/* Turns the SYN in the frame into the SYN-ACK carrying a SYN cookie, in place; 0 when the
 * frame is ready for XDP_TX.
 *
 * The cookie is the kernel's (bpf_tcp_raw_gen_syncookie_*: same secret and encoding), so the
 * kernel accepts the client's ACK as one of its own cookies. The helper reads the MSS from
 * the header it is given: it gets a copy of the fixed header with the client's MSS as its
 * only option, so it never reads a variable-length part of the packet. The frame is only
 * shrunk (growing needs tailroom that veth and generic XDP often lack).
 *
 * The SYN-ACK carries our MSS when the SYN had room for it (any option), no option
 * otherwise. No timestamp: it would have to include the kernel's per-connection timestamp
 * offset, which the program cannot compute, and without timestamps a cookie cannot carry
 * window scaling or SACK, so a connection opened through a cookie has neither (as with the
 * kernel's own cookies when timestamps are off). Handles untagged frames, IPv4 without
 * options and IPv6 without extension headers; -1 for the others (the caller drops them). */
static __always_inline int syn_cookie(struct xdp_md *ctx, const struct tcp_packet *pkt, const struct guard_config *cfg)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct {
		struct tcphdr th;
		__be32 mss;
	} syn;
	struct tcphdr *th;
	__u32 zero = 0, iplen;
	__s64 cookie;

	if (pkt->l3_off != sizeof(struct ethhdr))
		return -1;
	__u8 *raw = bpf_map_lookup_elem(&guard_opts, &zero);
	if (!raw)
		return -1;
	__u32 client_mss = guard_parse_mss(tcp_copy_options(pkt, data, data_end, raw));

	if (pkt->family == AF_INET) {
		struct iphdr *ip = data + sizeof(struct ethhdr);
		iplen = sizeof(struct iphdr);
		th = (void *)(ip + 1);
		if ((void *)th + sizeof(struct tcphdr) > data_end || pkt->l4_off != sizeof(struct ethhdr) + iplen)
			return -1;
		__builtin_memcpy(&syn.th, th, sizeof(struct tcphdr));
		((__u8 *)&syn.th)[12] = (sizeof(syn) / 4) << 4;
		syn.mss = bpf_htonl((2 << 24) | (4 << 16) | (client_mss & 0xffff));
		cookie = bpf_tcp_raw_gen_syncookie_ipv4(ip, &syn.th, sizeof(syn));
	} else {
		struct ipv6hdr *ip6 = data + sizeof(struct ethhdr);
		iplen = sizeof(struct ipv6hdr);
		th = (void *)(ip6 + 1);
		if ((void *)th + sizeof(struct tcphdr) > data_end || pkt->l4_off != sizeof(struct ethhdr) + iplen)
			return -1;
		__builtin_memcpy(&syn.th, th, sizeof(struct tcphdr));
		((__u8 *)&syn.th)[12] = (sizeof(syn) / 4) << 4;
		syn.mss = bpf_htonl((2 << 24) | (4 << 16) | (client_mss & 0xffff));
		cookie = bpf_tcp_raw_gen_syncookie_ipv6(ip6, &syn.th, sizeof(syn));
	}
	if (cookie < 0)
		return -1;

	/* Our MSS goes where the SYN's options were; a SYN without options gets none. */
	const int with_mss = pkt->doff >= sizeof(struct tcphdr) + 4;
	__u32 tcplen = sizeof(struct tcphdr) + (with_mss ? 4 : 0);
	__u32 sum = bpf_htons(IPPROTO_TCP) + bpf_htons(tcplen);

	if (pkt->family == AF_INET) {
		struct iphdr *ip = data + sizeof(struct ethhdr);
		if ((void *)(ip + 1) > data_end)
			return -1;
		__be32 a = ip->saddr;
		ip->saddr = ip->daddr;
		ip->daddr = a;
		ip->tos = 0;
		ip->tot_len = bpf_htons(sizeof(struct iphdr) + tcplen);
		ip->id = 0;
		ip->frag_off = bpf_htons(0x4000); /* DF */
		ip->ttl = 64;
		ip->check = 0;
		ip->check = csum_fold(csum_words((const __u16 *)ip, 10, 0));
		sum = csum_words((const __u16 *)&ip->saddr, 4, sum);
	} else {
		struct ipv6hdr *ip6 = data + sizeof(struct ethhdr);
		if ((void *)(ip6 + 1) > data_end)
			return -1;
		struct in6_addr a = ip6->saddr;
		ip6->saddr = ip6->daddr;
		ip6->daddr = a;
		*(__be32 *)ip6 = bpf_htonl(0x60000000); /* version 6, no traffic class or flow label */
		ip6->payload_len = bpf_htons(tcplen);
		ip6->hop_limit = 64;
		sum = csum_words((const __u16 *)&ip6->saddr, 16, sum);
	}

	th = data + sizeof(struct ethhdr) + (pkt->family == AF_INET ? sizeof(struct iphdr) : sizeof(struct ipv6hdr));
	if ((void *)th + sizeof(struct tcphdr) > data_end)
		return -1;
	__u32 seq = bpf_ntohl(th->seq);
	__be16 port = th->source;
	th->source = th->dest;
	th->dest = port;
	th->ack_seq = bpf_htonl(seq + 1);
	th->seq = bpf_htonl((__u32)cookie);
	((__u8 *)th)[12] = (tcplen / 4) << 4;
	((__u8 *)th)[13] = TCP_FLAG_SYN | TCP_FLAG_ACK;
	th->window = bpf_htons(65535);
	th->check = 0;
	th->urg_ptr = 0;
	sum = csum_words((const __u16 *)th, sizeof(struct tcphdr) / 2, sum);
	if (with_mss) {
		__be32 *opt = (void *)(th + 1);
		if ((void *)(opt + 1) > data_end)
			return -1;
		__u16 mss = pkt->family == AF_INET6 ? (cfg->mss6 ? cfg->mss6 : 1440) : (cfg->mss4 ? cfg->mss4 : 1460);
		*opt = bpf_htonl((2 << 24) | (4 << 16) | mss); /* kind 2 (MSS), length 4 */
		sum = csum_words((const __u16 *)opt, 2, sum);
	}
	th->check = csum_fold(sum);

	__u8 mac[ETH_ALEN];
	__builtin_memcpy(mac, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, mac, ETH_ALEN);

	/* Cut what followed the header (the SYN's options beyond ours, payload, padding). */
	int delta = (int)(sizeof(struct ethhdr) + iplen + tcplen) - (int)(data_end - data);
	if (delta < 0 && bpf_xdp_adjust_tail(ctx, delta))
		return -1;
	return 0;
}

/* The program; `xadd` and `cookies` (constants once inlined) pick the bucket's atomics and
 * whether over-budget SYNs to a GUARD_COOKIE port are answered or dropped. */
static __always_inline int guard(struct xdp_md *ctx, const int xadd, const int cookies)
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
	const int syn = (pkt.flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == TCP_FLAG_SYN;
	if ((cfg->flags & GUARD_SYN_ONLY) && !syn)
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
	if (!r) {
		if (syn && (cfg->flags & GUARD_PORTS))
			goto port;
		goto pass;
	}
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
	goto drop;

port: {
	/* A SYN from an unlisted source: the destination port's budget, then a cookie. */
	__u32 key = pkt.dport;
	r = bpf_map_lookup_elem(&guard_ports, &key);
	if (!r) {
		key = 0;
		r = bpf_map_lookup_elem(&guard_ports, &key);
	}
	if (!r || (r->action != GUARD_RATE && r->action != GUARD_COOKIE))
		goto pass;
	st->port_matched++;
	if (xadd ? take_token_xadd(r, bpf_ktime_get_ns()) : take_token(r, bpf_ktime_get_ns())) {
		st->port_passed++;
		__sync_fetch_and_add(&r->passed_packets, 1);
		__sync_fetch_and_add(&r->passed_bytes, len);
		goto pass;
	}
	if (cookies && r->action == GUARD_COOKIE && syn_cookie(ctx, &pkt, cfg) == 0) {
		st->cookies++;
		__sync_fetch_and_add(&r->cookies, 1);
		return XDP_TX_;
	}
	st->port_dropped++;
	/* syn_cookie may have resized the frame before failing: it is dropped either way. */
	goto drop;
	}
drop:
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
	return guard(ctx, 0, 1);
}

SEC("xdp")
int guard_xdp_nocookie(struct xdp_md *ctx)
{
	return guard(ctx, 0, 0);
}

SEC("xdp")
int guard_xdp_xadd(struct xdp_md *ctx)
{
	return guard(ctx, 1, 0);
}

/* Types user space encodes (BTF keeps them). */
struct guard_config *guard__config_type __attribute__((unused));

char LICENSE[] SEC("license") = "GPL";
