// SPDX-License-Identifier: GPL-2.0
// The packets probe: every incoming TCP segment at XDP or tc ingress, filtered in the
// kernel by a small jump program (see struct filter_prog), sampled 1-in-N, sent as one
// ring record per packet (fixed header + optional frame or payload bytes). The same
// program keeps SYN counts per source address, source prefix and destination port in
// LRU maps when asked, and packets per interface and flag class (counters only, for
// metrics: no record per packet). All configuration lives in maps and can change while
// attached.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_core_read.h>
#include "tcpscope.h"
#include "tcp_parse.h"
#include "rate_cap.h"
#include "heavy_hitters.h"

#define HOOK_XDP 1
#define HOOK_TC 2

#define XDP_PASS_ 2
#define TC_ACT_UNSPEC_ (-1)

/* ---- configuration (user space writes; the program only reads) ---- */

#define FEATURE_EVENTS 0x1   /* emit ring records */
#define FEATURE_SYNS 0x2     /* count SYNs in the syn_by_* maps */
#define FEATURE_IF_COUNTS 0x4 /* count packets and bytes per interface and flag class (packets_by_if) */
#define FEATURE_SYN_PORTS_ONLY 0x8 /* with FEATURE_SYNS: per destination port only, no source tables */

struct packets_config {
	__u32 features;      /* FEATURE_* */
	__u32 sample_rate;   /* emit 1 in N matching packets (0 and 1: all) */
	__u32 snaplen;       /* frame bytes to copy after the header (0: none) */
	__u32 payload_bytes; /* TCP payload bytes to copy when snaplen is 0 (0: none) */
	__u32 filter_slot;   /* which of the two filter programs is active */
	__u32 events_per_slot; /* most records per 100 ms (rate_cap.h); beyond: sampled. 0: no cap */
	__u32 hh_min;        /* 0: count every source; else admit a source (prefix) to the
			      * syn_by_addr (syn_by_prefix) table once the sketch has seen this
			      * many of its SYNs in one epoch (heavy_hitters.h) */
	__u32 _pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct packets_config);
} packets_config SEC(".maps");

/*
 * The filter: a program of up to FILTER_MAX_INSNS tests, each with a jump target for
 * "matched" (jt) and "not matched" (jf), like classic BPF. Targets only go forward, so
 * the interpreter runs at most FILTER_MAX_INSNS steps. and/or/not compile to jumps with
 * no blow-up (not swaps the targets). Two slots: user space writes the idle one, then
 * flips packets_config.filter_slot, so a running packet never sees half a program.
 */
#define FILTER_MAX_INSNS 32
#define FILTER_ACCEPT 254
#define FILTER_REJECT 255

enum filter_op {
	FOP_SRC_NET = 1,  /* source address in family/addr/mask */
	FOP_DST_NET = 2,
	FOP_SPORT = 3,    /* lo <= sport <= hi */
	FOP_DPORT = 4,
	FOP_FLAGS_ANY = 5,/* (flags & lo) != 0 */
	FOP_FLAGS_EQ = 6, /* (flags & lo) == hi */
	FOP_FAMILY = 7,   /* family == family */
	FOP_TRUE = 8,
	/* (field & mask[0]) == addr[0] / > addr[0] (unsigned), field chosen by `family`:
	 * 0..3 the TCP header's fixed 16 bytes as big-endian words (tcp[0:4] ... tcp[12:4]),
	 * 4 the frame length (libpcap's len). */
	FOP_FIELD_EQ = 9,
	FOP_FIELD_GT = 10,
};

#define FIELD_FRAME_LEN 4

struct filter_insn {
	__u8 op;
	__u8 jt;
	__u8 jf;
	__u8 family;
	__u16 lo;
	__u16 hi;
	__u32 addr[4];
	__u32 mask[4];
};

struct filter_prog {
	__u32 len;         /* 0: accept everything */
	__u32 _pad;
	struct filter_insn insns[FILTER_MAX_INSNS];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct filter_prog);
} packets_filter SEC(".maps");

/* ---- counters ---- */

struct packets_stats {
	__u64 tcp;          /* TCP segments parsed */
	__u64 matched;      /* passed the filter */
	__u64 sampled_out;  /* matched but skipped by sampling */
	__u64 emitted;      /* records submitted */
	__u64 capture_errors;
	__u64 syns;         /* SYNs counted */
	__u64 synacks_out;  /* SYN-ACKs sent (tc egress, when attached) */
	__u64 rsts_out;     /* RSTs sent that answer a segment no socket took (tc egress) */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct packets_stats);
} packets_stats SEC(".maps");

/*
 * Packets and bytes per interface and flag class, for metrics that need every packet
 * counted but no packet itself (serve). Why this shape: a record per packet costs a ring
 * reservation, the option parse and user-space decoding for each one, which under a SYN
 * flood is most of the program's time; a counter costs one lookup and two adds. Per CPU,
 * so no atomics and no cache line shared between CPUs in the packet path. A hash keyed by
 * ifindex because interfaces come and go with any ifindex; user space creates each
 * interface's entry when it attaches, so the packet path only looks up (an insert takes
 * the bucket lock; it happens here only if that entry is missing). Counted before the
 * filter: every TCP packet, so a program filtered for its own events (the detector's) can
 * count for serve's metrics too, and serve needs no program of its own beside it.
 * Classes: the order of FLAG_CLASSES in lib/export/metrics.ts.
 */
#define FLAG_CLASS_SYN 0
#define FLAG_CLASS_SYNACK 1
#define FLAG_CLASS_RST 2
#define FLAG_CLASS_FIN 3
#define FLAG_CLASS_ACK 4
#define FLAG_CLASS_NONE 5
#define FLAG_CLASSES 6

struct if_counts {
	__u64 packets[FLAG_CLASSES];
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 1024);
	/* Memory for the interfaces counted only, not 1024 per CPU in every packet program:
	 * entries are made by user space (or, rarely, below), never per packet. */
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32);
	__type(value, struct if_counts);
} packets_by_if SEC(".maps");

static __always_inline __u32 flag_class(__u8 f)
{
	if (f & TCP_FLAG_RST)
		return FLAG_CLASS_RST;
	if (f & TCP_FLAG_SYN)
		return (f & TCP_FLAG_ACK) ? FLAG_CLASS_SYNACK : FLAG_CLASS_SYN;
	if (f & TCP_FLAG_FIN)
		return FLAG_CLASS_FIN;
	if (f & TCP_FLAG_ACK)
		return FLAG_CLASS_ACK;
	return FLAG_CLASS_NONE;
}

static __always_inline void count_if(__u32 ifindex, __u8 flags, __u32 frame_len)
{
	__u32 c = flag_class(flags);
	struct if_counts *v = bpf_map_lookup_elem(&packets_by_if, &ifindex);

	if (c >= FLAG_CLASSES)
		return;
	if (!v) {
		struct if_counts init = {};

		init.packets[c] = 1;
		init.bytes = frame_len;
		if (bpf_map_update_elem(&packets_by_if, &ifindex, &init, BPF_NOEXIST) == 0)
			return;
		v = bpf_map_lookup_elem(&packets_by_if, &ifindex); /* made meanwhile */
		if (!v)
			return;
	}
	v->packets[c]++;
	v->bytes += frame_len;
}

/* ---- SYN accounting ---- */

struct syn_addr_key {
	__u32 addr[4];     /* network order, host bits zeroed for prefixes */
	__u16 family;
	__u8 prefix_len;   /* 32/128 in syn_by_addr; 24/64 in syn_by_prefix */
	__u8 _pad;
};

struct syn_count {
	__u64 count;
	__u64 last_ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct syn_addr_key);
	__type(value, struct syn_count);
} syn_by_addr SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct syn_addr_key);
	__type(value, struct syn_count);
} syn_by_prefix SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct syn_count);
} syn_by_port SEC(".maps");

/* Sketches that admit sources and prefixes to the tables above (heavy_hitters.h); user
 * space shrinks them to one entry when every source is counted (hh_min 0). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, HH_LINES);
	__type(key, __u32);
	__type(value, struct hh_line);
} syn_sketch_addr SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, HH_LINES);
	__type(key, __u32);
	__type(value, struct hh_line);
} syn_sketch_prefix SEC(".maps");

/* Epochs of the sketches: 2^28 ns, about 268 ms. */
#define HH_EPOCH_SHIFT 28

/* ---- events ---- */

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rate_cap);
} packets_rate SEC(".maps");

#define CAP_NONE 0
#define CAP_FRAME 1    /* bytes from the start of the frame (link header) */
#define CAP_PAYLOAD 2  /* bytes from the start of the TCP payload */

struct packet_event {
	__u64 ts_ns;        /* bpf_ktime_get_ns (CLOCK_MONOTONIC) */
	__u32 ifindex;
	__u32 frame_len;    /* bytes of the frame as received (link header included) */
	__u8 saddr[16];     /* IPv4 in the first 4 bytes */
	__u8 daddr[16];
	__u32 seq;
	__u32 ack;
	__u16 family;
	__u16 sport;
	__u16 dport;
	__u16 window;
	__u16 ip_len;
	__u16 payload_len;  /* TCP payload bytes (from the IP length) */
	__u8 ttl;
	__u8 flags;
	__u8 doff;          /* TCP header length in bytes */
	__u8 hook;          /* 1 XDP, 2 tc */
	__u16 mss;
	__u8 wscale;
	__u8 opt_present;   /* TCP_OPT_HAS_* */
	__u32 ts_val;
	__u32 ts_ecr;
	__u32 opt_kinds_lo; /* option kinds in wire order, a nibble each (TCP_OK_*) */
	__u32 opt_kinds_hi;
	__u32 cap_len;      /* bytes following this header */
	__u8 cap_kind;      /* CAP_* */
	__u8 sack_blocks;
	__u16 l3_off;       /* offset of the IP header in the frame */
};

TCPSCOPE_RINGBUF(packets, 1 << 23, struct packet_event);

#define CAP_MAX 65536

/* The parsed packet: handle() parses into it, packets_filter_match() reads it. One slot
 * per CPU; XDP and tc programs do not nest on a CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tcp_packet);
} packets_scratch SEC(".maps");

/* A global function: the verifier checks it once, on its own, instead of once per path
 * of the caller (inlined, the filter loop pushes the tc/XDP programs past the 1M
 * instruction limit). Its only argument is a scalar: kernels before 5.12 accept nothing
 * but scalars and the ctx as arguments of a global function, and pointer arguments are
 * checked against the argument's BTF type on later ones. The filter program and the packet
 * are looked up from their maps here. */
/* The 32-bit word tcpdump's tcp[4*k:4] reads, rebuilt from the parsed header (the
 * reserved bits of byte 12 read as 0), or the frame length. */
static __always_inline __u32 filter_field(const struct tcp_packet *pkt, __u32 field, __u32 frame_len)
{
	switch (field) {
	case 0: return ((__u32)pkt->sport << 16) | pkt->dport;
	case 1: return pkt->seq;
	case 2: return pkt->ack;
	case 3: return ((__u32)(pkt->doff >> 2) << 28) | ((__u32)pkt->flags << 16) | pkt->window;
	case FIELD_FRAME_LEN: return frame_len;
	}
	return 0;
}

__attribute__((noinline)) int packets_filter_match(__u32 slot, __u32 frame_len)
{
	__u32 zero = 0;
	__u32 key = slot & 1;
	const struct filter_prog *prog = bpf_map_lookup_elem(&packets_filter, &key);
	const struct tcp_packet *pkt = bpf_map_lookup_elem(&packets_scratch, &zero);

	if (!prog || !pkt)
		return 0;
	__u32 pc = 0;
	__u32 len = prog->len;

	if (len == 0)
		return 1;
	for (int i = 0; i < FILTER_MAX_INSNS; i++) {
		if (pc >= FILTER_MAX_INSNS)
			break;
		const struct filter_insn *in = &prog->insns[pc];
		int m = 0;
		switch (in->op) {
		case FOP_SRC_NET:
			m = pkt->family == in->family && tcp_addr_match(pkt->saddr, in->addr, in->mask, in->family == AF_INET6);
			break;
		case FOP_DST_NET:
			m = pkt->family == in->family && tcp_addr_match(pkt->daddr, in->addr, in->mask, in->family == AF_INET6);
			break;
		case FOP_SPORT:
			m = pkt->sport >= in->lo && pkt->sport <= in->hi;
			break;
		case FOP_DPORT:
			m = pkt->dport >= in->lo && pkt->dport <= in->hi;
			break;
		case FOP_FLAGS_ANY:
			m = (pkt->flags & in->lo) != 0;
			break;
		case FOP_FLAGS_EQ:
			m = (pkt->flags & in->lo) == in->hi;
			break;
		case FOP_FAMILY:
			m = pkt->family == in->family;
			break;
		case FOP_TRUE:
			m = 1;
			break;
		case FOP_FIELD_EQ:
			m = (filter_field(pkt, in->family, frame_len) & in->mask[0]) == in->addr[0];
			break;
		case FOP_FIELD_GT:
			m = (filter_field(pkt, in->family, frame_len) & in->mask[0]) > in->addr[0];
			break;
		}
		pc = m ? in->jt : in->jf;
	}
	return pc == FILTER_ACCEPT;
}

/* TCP options, parsed by a global function over a per-CPU buffer (verified once, not once
 * per caller path: inline, the option loop alone exceeds the 1M instruction limit on 6.1's
 * verifier; and a scalar argument only, as for packets_filter_match). */
struct packets_opts_buf {
	__u8 raw[TCP_OPTS_BUF];
	struct tcp_opts opts;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct packets_opts_buf);
} packets_opts SEC(".maps");

/* Parses `end` (0..40) option bytes of packets_opts.raw into packets_opts.opts. */
__attribute__((noinline)) int packets_parse_opts(__u32 end)
{
	__u32 zero = 0;
	struct packets_opts_buf *b = bpf_map_lookup_elem(&packets_opts, &zero);

	if (!b)
		return 0;
	return tcp_parse_options_buf(b->raw, end, &b->opts);
}

static __always_inline void syn_bump(void *map, const void *key, __u64 now)
{
	struct syn_count *c = bpf_map_lookup_elem(map, key);
	if (c) {
		c->count++;
		c->last_ns = now;
		return;
	}
	struct syn_count init = { .count = 1, .last_ns = now };
	bpf_map_update_elem(map, key, &init, BPF_NOEXIST);
}

/* Counts a SYN of `key` in `table`, or, with a sketch threshold, only once the key is heavy:
 * keys already in the table count exactly; others go through the sketch, and enter the
 * table with the sketch's estimate when it reaches hh_min. */
static __always_inline void syn_bump_heavy(void *table, void *sketch, const struct syn_addr_key *key, __u64 now, __u32 hh_min)
{
	struct syn_count *c;
	__u32 est;

	if (hh_min == 0) {
		syn_bump(table, key, now);
		return;
	}
	c = bpf_map_lookup_elem(table, key);
	if (c) {
		c->count++;
		c->last_ns = now;
		return;
	}
	est = hh_sketch_add(sketch, key->addr, (__u32)(now >> HH_EPOCH_SHIFT));
	if (est >= hh_min) {
		struct syn_count init = { .count = est, .last_ns = now };
		bpf_map_update_elem(table, key, &init, BPF_NOEXIST);
	}
}

static __always_inline void count_syn(const struct tcp_packet *pkt, __u64 now, __u32 hh_min, int ports_only)
{
	struct syn_addr_key key = {};
	__u32 port = pkt->dport;

	/* Per port only (serve's tcpscope_syns_total): a random-source flood makes every SYN a
	 * new source, and an LRU insert per SYN (bucket lock, eviction) is the dearest thing
	 * this program could do; skipped when nobody reads the source tables. */
	if (ports_only) {
		syn_bump(&syn_by_port, &port, now);
		return;
	}
	key.family = pkt->family;
	key.addr[0] = pkt->saddr[0];
	if (pkt->family == AF_INET6) {
		key.addr[1] = pkt->saddr[1];
		key.addr[2] = pkt->saddr[2];
		key.addr[3] = pkt->saddr[3];
		key.prefix_len = 128;
	} else {
		key.prefix_len = 32;
	}
	syn_bump_heavy(&syn_by_addr, &syn_sketch_addr, &key, now, hh_min);
	if (pkt->family == AF_INET6) {
		key.addr[2] = key.addr[3] = 0;
		key.prefix_len = 64;
	} else {
		key.addr[0] &= bpf_htonl(0xffffff00);
		key.prefix_len = 24;
	}
	syn_bump_heavy(&syn_by_prefix, &syn_sketch_prefix, &key, now, hh_min);
	syn_bump(&syn_by_port, &port, now);
}

/* `want` (1..size here) in a form every verifier bounds to [1, size]: the copy helpers
 * take no zero length, and before 6.8 the verifier does not narrow a range on `want != 0`
 * (the caller's test), so it saw [0, size]. The barrier keeps clang from folding the mask
 * away. */
static __always_inline __u64 class_len(__u64 want, const __u64 size)
{
	asm volatile("" : "+r"(want));
	return ((want - 1) & (size - 1)) + 1;
}

/* Copies `len` bytes at `off` of the packet to `to`; `len` is already bounded. */
static __always_inline long load_bytes(void *ctx, const int hook, __u64 off, void *to, __u64 len)
{
	if (hook == HOOK_TC)
		return bpf_skb_load_bytes(ctx, off, to, len);
	/* bpf_xdp_load_bytes came in 5.18: before, XDP records carry no captured bytes. */
	if (bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_xdp_load_bytes))
		return bpf_xdp_load_bytes(ctx, off, to, len);
	return -1;
}

/* Copies the TCP option bytes to `raw`; returns how many were copied (optlen: 1..40). Both
 * hooks read the linear data directly (a helper call costs more than the copy); tc falls
 * back to bpf_skb_load_bytes when the header runs past it. */
static __always_inline __u32 copy_opts(void *ctx, const int hook, const struct tcp_packet *pkt, void *data, void *data_end,
				       __u8 *raw, __u64 optlen)
{
	__u32 n = tcp_copy_options(pkt, data, data_end, raw);

	if (n >= optlen || hook != HOOK_TC)
		return n;
	return bpf_skb_load_bytes(ctx, pkt->l4_off + 20, raw, class_len(optlen, 64)) == 0 ? optlen : 0;
}

/* Reserves a record with room for `want` captured bytes, in power-of-two size classes so
 * every reservation has a constant size; copies the bytes. */
#define CAPTURE_CLASS(size)                                                               \
	else if (want <= (size)) {                                                        \
		e = tcpscope_reserve(packets, sizeof(*e) + (size));                      \
		if (!e)                                                                   \
			return 0;                                                         \
		if (load_bytes(ctx, hook, cap_off, (void *)(e + 1), class_len(want, size)) < 0) \
			e->cap_kind = 0xff;                                               \
	}

static __always_inline int emit(void *ctx, const int hook, const struct tcp_packet *pkt, void *data, void *data_end,
				 const struct packets_config *cfg, __u32 frame_len, __u32 ifindex, __u64 now)
{
	struct packet_event *e;
	__u32 zero = 0;
	struct packets_opts_buf *ob = bpf_map_lookup_elem(&packets_opts, &zero);
	__u64 want = 0, cap_off = 0; /* 64-bit so clang bounds-checks the register it passes */
	__u8 cap_kind = CAP_NONE;

	if (!ob)
		return 0;
	{
		__u64 optlen = pkt->doff > 20 ? pkt->doff - 20 : 0;

		if (optlen > TCP_OPTS_MAX)
			optlen = TCP_OPTS_MAX;
		if (optlen)
			optlen = copy_opts(ctx, hook, pkt, data, data_end, ob->raw, optlen);
		if (optlen)
			packets_parse_opts(optlen);
		else
			__builtin_memset(&ob->opts, 0, sizeof(ob->opts));
	}
	const struct tcp_opts *opts = &ob->opts;

	if (cfg->snaplen) {
		want = cfg->snaplen < frame_len ? cfg->snaplen : frame_len;
		cap_kind = CAP_FRAME;
	} else if (cfg->payload_bytes && pkt->payload_len) {
		__u64 avail = pkt->payload_len;
		cap_off = pkt->l4_off + pkt->doff;
		if (cap_off + avail > frame_len)
			avail = frame_len > cap_off ? frame_len - cap_off : 0;
		want = cfg->payload_bytes < avail ? cfg->payload_bytes : avail;
		cap_kind = CAP_PAYLOAD;
	}
	if (want > CAP_MAX)
		want = CAP_MAX;

	if (want == 0) {
		e = tcpscope_reserve(packets, sizeof(*e));
		if (!e)
			return 0;
	}
	CAPTURE_CLASS(64)
	CAPTURE_CLASS(128)
	CAPTURE_CLASS(256)
	CAPTURE_CLASS(512)
	CAPTURE_CLASS(1024)
	CAPTURE_CLASS(2048)
	CAPTURE_CLASS(4096)
	CAPTURE_CLASS(8192)
	CAPTURE_CLASS(16384)
	CAPTURE_CLASS(32768)
	CAPTURE_CLASS(65536)
	else
		return 0;

	if (e->cap_kind == 0xff) { /* the copy failed: keep the header, drop the bytes */
		want = 0;
		cap_kind = CAP_NONE;
	}
	e->ts_ns = now;
	e->ifindex = ifindex;
	e->frame_len = frame_len;
	__builtin_memcpy(e->saddr, pkt->saddr, 16);
	__builtin_memcpy(e->daddr, pkt->daddr, 16);
	e->seq = pkt->seq;
	e->ack = pkt->ack;
	e->family = pkt->family;
	e->sport = pkt->sport;
	e->dport = pkt->dport;
	e->window = pkt->window;
	e->ip_len = pkt->ip_len;
	e->payload_len = pkt->payload_len;
	e->ttl = pkt->ttl;
	e->flags = pkt->flags;
	e->doff = pkt->doff;
	e->hook = hook;
	e->mss = opts->mss;
	e->wscale = opts->wscale;
	e->opt_present = opts->present;
	e->ts_val = opts->ts_val;
	e->ts_ecr = opts->ts_ecr;
	e->opt_kinds_lo = opts->kinds_lo;
	e->opt_kinds_hi = opts->kinds_hi;
	e->cap_len = want;
	e->cap_kind = cap_kind;
	e->sack_blocks = opts->sack_blocks;
	e->l3_off = pkt->l3_off;
	tcpscope_submit(packets, e);
	return 1;
}

/* wire_len: the packet's length for the filter's `len` (libpcap's: on the wire). */
static __always_inline void handle(void *ctx, const int hook, void *data, void *data_end, __u32 frame_len, __u32 ifindex, __u32 wire_len)
{
	__u32 zero = 0;
	/* Parsed straight into the slot the filter reads: no copy of the packet. */
	struct tcp_packet *pkt = bpf_map_lookup_elem(&packets_scratch, &zero);

	if (!pkt || tcp_parse(data, data_end, pkt) < 0)
		return;
	struct packets_config *cfg = bpf_map_lookup_elem(&packets_config, &zero);
	struct packets_stats *st = bpf_map_lookup_elem(&packets_stats, &zero);
	if (!cfg || !st)
		return;
	st->tcp++;
	if (cfg->features & FEATURE_IF_COUNTS)
		count_if(ifindex, pkt->flags, frame_len);
	if (!packets_filter_match(cfg->filter_slot, wire_len))
		return;
	st->matched++;

	__u64 now = bpf_ktime_get_ns();
	if ((cfg->features & FEATURE_SYNS) && (pkt->flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == TCP_FLAG_SYN) {
		count_syn(pkt, now, cfg->hh_min, cfg->features & FEATURE_SYN_PORTS_ONLY);
		st->syns++;
	}
	if (!(cfg->features & FEATURE_EVENTS))
		return;
	__u32 rate = cfg->sample_rate;
	if (rate > 1 && st->matched % rate != 0) {
		st->sampled_out++;
		return;
	}
	if (!rate_cap_take(&packets_rate, now, cfg->events_per_slot)) {
		st->sampled_out++;
		return;
	}
	if (emit(ctx, hook, pkt, data, data_end, cfg, frame_len, ifindex, now))
		st->emitted++;
}

SEC("xdp")
int packets_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;

	handle(ctx, HOOK_XDP, data, data_end, (__u32)(data_end - data), ctx->ingress_ifindex, (__u32)(data_end - data));
	return XDP_PASS_;
}

SEC("tc")
int packets_tc(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;

	/* Headers beyond the linear part (rare after GRO): pull them in once. */
	if (data + TCP_PARSE_HEADROOM > data_end && skb->len > (__u32)(data_end - data)) {
		bpf_skb_pull_data(skb, skb->len < TCP_PARSE_HEADROOM ? skb->len : TCP_PARSE_HEADROOM);
		data = (void *)(long)skb->data;
		data_end = (void *)(long)skb->data_end;
	}
	/* At ingress wire_len is skb->len (the kernel sets it before tc runs); a test run of a
	 * file's frame (packets -r) sets it to the length on the wire when the frame handed
	 * to the program is cut to what a test run takes. */
	__u32 len = skb->len, wire = skb->wire_len;

	/* Two plain loads: a select between two ctx fields becomes a moved ctx pointer, which
	 * the verifier refuses to dereference. */
	asm volatile("" : "+r"(wire));
	asm volatile("" : "+r"(len));
	if (wire < len)
		wire = len;
	handle(skb, HOOK_TC, data, data_end, len, skb->ifindex, wire);
	return TC_ACT_UNSPEC_;
}

/* Outgoing segments, for the replies a flood or a scan draws: SYN-ACKs, and RSTs that
 * answer a segment no socket took (the kernel's reply to a SYN, FIN, NULL or XMAS probe of a
 * closed port has ACK set and sequence 0; to an ACK probe, no ACK). Counters only. */
SEC("tc")
int packets_tc_egress(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	__u32 zero = 0;
	struct tcp_packet *pkt = bpf_map_lookup_elem(&packets_scratch, &zero);
	struct packets_stats *st;

	if (!pkt || tcp_parse(data, data_end, pkt) < 0)
		return TC_ACT_UNSPEC_;
	st = bpf_map_lookup_elem(&packets_stats, &zero);
	if (!st)
		return TC_ACT_UNSPEC_;
	if ((pkt->flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == (TCP_FLAG_SYN | TCP_FLAG_ACK))
		st->synacks_out++;
	else if ((pkt->flags & TCP_FLAG_RST) && (!(pkt->flags & TCP_FLAG_ACK) || pkt->seq == 0))
		st->rsts_out++;
	return TC_ACT_UNSPEC_;
}

/* Types user space encodes into the maps (BTF keeps them). */
struct packets_config *packets__config_type __attribute__((unused));
struct filter_prog *packets__filter_type __attribute__((unused));

char LICENSE[] SEC("license") = "GPL";
