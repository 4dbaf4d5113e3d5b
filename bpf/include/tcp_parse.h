/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Packet parsing shared by every tcpscope packet program (XDP and tc): Ethernet (with
 * one or two VLAN tags), IPv4 (with options, first fragments only), IPv6 (with up to
 * four hop-by-hop / routing / destination-options / fragment extension headers), TCP
 * header and TCP options. Needs vmlinux.h and bpf_endian.h included before it.
 *
 *   struct tcp_packet pkt;
 *   if (tcp_parse(data, data_end, &pkt) < 0)
 *           return XDP_PASS;                // not TCP, or truncated
 *   if (pkt.flags & TCP_FLAG_SYN) ...
 *   // options: copy, then parse the copy (see tcp_parse_options_buf for where `raw` lives)
 *   __u32 n = tcp_copy_options(&pkt, data, data_end, raw);
 *   tcp_parse_options_buf(raw, n, &opts);
 *
 * Addresses are kept in network byte order as four 32-bit words (IPv4 in word 0, the
 * rest zero), so a CIDR test is a masked compare of at most four words. Everything else
 * is converted to host byte order.
 */
#ifndef TCPSCOPE_TCP_PARSE_H
#define TCPSCOPE_TCP_PARSE_H

#ifndef ETH_P_IP
#define ETH_P_IP 0x0800
#endif
#ifndef ETH_P_IPV6
#define ETH_P_IPV6 0x86DD
#endif
#ifndef ETH_P_8021Q
#define ETH_P_8021Q 0x8100
#endif
#ifndef ETH_P_8021AD
#define ETH_P_8021AD 0x88A8
#endif
#ifndef IPPROTO_TCP
#define IPPROTO_TCP 6
#endif
#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef AF_INET6
#define AF_INET6 10
#endif

#define TCP_FLAG_FIN 0x01
#define TCP_FLAG_SYN 0x02
#define TCP_FLAG_RST 0x04
#define TCP_FLAG_PSH 0x08
#define TCP_FLAG_ACK 0x10
#define TCP_FLAG_URG 0x20
#define TCP_FLAG_ECE 0x40
#define TCP_FLAG_CWR 0x80

/* Bytes a parser may need in the linear part of an skb: Ethernet + 2 VLAN tags + the
 * largest IPv4 header + a full TCP header. IPv6 extension headers past this are pulled
 * on demand by callers that care (see tcp_pull_headers). */
#define TCP_PARSE_HEADROOM (14 + 8 + 60 + 60)

struct tcp_packet {
	__u32 saddr[4];   /* network order; IPv4 in saddr[0] */
	__u32 daddr[4];
	__u32 seq;        /* host order */
	__u32 ack;
	__u16 family;     /* AF_INET or AF_INET6 */
	__u16 sport;      /* host order */
	__u16 dport;
	__u16 window;     /* raw, unscaled */
	__u16 ip_len;     /* IP datagram length: IPv4 total length, IPv6 40 + payload length */
	__u16 l3_off;     /* offset of the IP header from the frame start */
	__u16 l4_off;     /* offset of the TCP header */
	__u16 payload_len;/* TCP payload bytes according to the IP length */
	__u8 ttl;         /* TTL or hop limit */
	__u8 flags;       /* TCP_FLAG_* */
	__u8 doff;        /* TCP header length in bytes (20..60) */
	__u8 _pad;
};
/* No pointers in struct tcp_packet: it can be handed to global (separately verified)
 * functions. tcp_header() gives the header back. */

/* TCP options as found, in wire order where order matters. */
#define TCP_OPT_HAS_MSS 0x01
#define TCP_OPT_HAS_WSCALE 0x02
#define TCP_OPT_HAS_SACK_OK 0x04
#define TCP_OPT_HAS_TS 0x08
#define TCP_OPT_HAS_SACK 0x10
#define TCP_OPT_MALFORMED 0x80

/* Compact option kinds for tcp_opts.kinds: one nibble per option, first option in the
 * lowest nibble of kinds_lo, up to 16 options. */
#define TCP_OK_END 0    /* no more options (also EOL) */
#define TCP_OK_NOP 1
#define TCP_OK_MSS 2
#define TCP_OK_WSCALE 3
#define TCP_OK_SACK_OK 4
#define TCP_OK_SACK 5
#define TCP_OK_TS 6
#define TCP_OK_EOL 7
#define TCP_OK_OTHER 15

struct tcp_opts {
	__u32 ts_val;
	__u32 ts_ecr;
	__u32 kinds_lo;   /* options 0..7, a nibble each (TCP_OK_*) */
	__u32 kinds_hi;   /* options 8..15 */
	__u16 mss;
	__u8 wscale;
	__u8 present;     /* TCP_OPT_HAS_* */
	__u8 sack_blocks;
	__u8 count;
	__u16 _pad;
};

static __always_inline int tcp__parse_l4(void *data, void *data_end, void *l4, struct tcp_packet *pkt)
{
	struct tcphdr *tcp = l4;
	__u8 *raw = l4;

	if ((void *)(tcp + 1) > data_end)
		return -1;
	pkt->l4_off = (__u16)(l4 - data);
	pkt->sport = bpf_ntohs(tcp->source);
	pkt->dport = bpf_ntohs(tcp->dest);
	pkt->seq = bpf_ntohl(tcp->seq);
	pkt->ack = bpf_ntohl(tcp->ack_seq);
	pkt->window = bpf_ntohs(tcp->window);
	pkt->doff = (raw[12] >> 4) * 4;
	pkt->flags = raw[13];
	return 0;
}

/* Parses an Ethernet frame up to and including the fixed TCP header. 0 on success, -1
 * when the frame is not TCP over IPv4/IPv6 or too short to tell. */
static __always_inline int tcp_parse(void *data, void *data_end, struct tcp_packet *pkt)
{
	struct ethhdr *eth = data;
	void *l3;
	__u16 proto;

	if ((void *)(eth + 1) > data_end)
		return -1;
	proto = eth->h_proto;
	l3 = eth + 1;
#pragma unroll
	for (int i = 0; i < 2; i++) {
		if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD))
			break;
		struct vlan_hdr *vlan = l3;
		if ((void *)(vlan + 1) > data_end)
			return -1;
		proto = vlan->h_vlan_encapsulated_proto;
		l3 = vlan + 1;
	}
	pkt->l3_off = (__u16)(l3 - data);

	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = l3;
		if ((void *)(ip + 1) > data_end)
			return -1;
		if (ip->protocol != IPPROTO_TCP || ip->ihl < 5)
			return -1;
		if (ip->frag_off & bpf_htons(0x1fff)) /* not the first fragment: no TCP header */
			return -1;
		pkt->family = AF_INET;
		pkt->saddr[0] = ip->saddr;
		pkt->saddr[1] = pkt->saddr[2] = pkt->saddr[3] = 0;
		pkt->daddr[0] = ip->daddr;
		pkt->daddr[1] = pkt->daddr[2] = pkt->daddr[3] = 0;
		pkt->ttl = ip->ttl;
		pkt->ip_len = bpf_ntohs(ip->tot_len);
		if (tcp__parse_l4(data, data_end, l3 + ip->ihl * 4, pkt) < 0)
			return -1;
		__s32 payload = (__s32)pkt->ip_len - ip->ihl * 4 - pkt->doff;
		pkt->payload_len = payload > 0 ? payload : 0;
		return 0;
	}
	if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = l3;
		if ((void *)(ip6 + 1) > data_end)
			return -1;
		pkt->family = AF_INET6;
		__builtin_memcpy(pkt->saddr, &ip6->saddr, 16);
		__builtin_memcpy(pkt->daddr, &ip6->daddr, 16);
		pkt->ttl = ip6->hop_limit;
		pkt->ip_len = 40 + bpf_ntohs(ip6->payload_len);
		__u8 next = ip6->nexthdr;
		void *l4 = ip6 + 1;
		for (int i = 0; i < 4; i++) {
			if (next == IPPROTO_TCP)
				break;
			__u8 *ext = l4;
			if ((void *)(ext + 8) > data_end)
				return -1;
			if (next == 0 || next == 43 || next == 60) { /* hop-by-hop, routing, dest opts */
				next = ext[0];
				l4 += (ext[1] + 1) * 8;
			} else if (next == 44) {                    /* fragment */
				if ((ext[2] << 8 | ext[3]) & 0xfff8)   /* offset != 0 */
					return -1;
				next = ext[0];
				l4 += 8;
			} else {
				return -1;
			}
		}
		if (next != IPPROTO_TCP)
			return -1;
		if (tcp__parse_l4(data, data_end, l4, pkt) < 0)
			return -1;
		__s32 payload = (__s32)pkt->ip_len - (pkt->l4_off - pkt->l3_off) - pkt->doff;
		pkt->payload_len = payload > 0 ? payload : 0;
		return 0;
	}
	return -1;
}

static __always_inline struct tcphdr *tcp_header(const struct tcp_packet *pkt, void *data, void *data_end)
{
	struct tcphdr *tcp;
	__u64 off = pkt->l4_off;

	if (off > 2047)
		return NULL;
	/* The mask is what bounds the pointer for the verifier; clang would drop it after the
	 * test above, which the verifier may have learnt on another copy of the register. */
	asm volatile("" : "+r"(off));
	tcp = data + (off & 2047);
	if ((void *)(tcp + 1) > data_end)
		return NULL;
	return tcp;
}

/* TCP options are parsed from a copy in a buffer, never from the packet: the parser's
 * loop then has one bounded offset to track instead of a packet range per caller path.
 * Keep the buffer in map memory (a per-CPU array) and call the parser from a global
 * function taking only scalars, as packets.bpf.c does: verified once, that loads from
 * 5.10 on. Parsed inline from a stack buffer, a small test program was rejected by the
 * 5.10 and 6.1 verifiers (accepted on 6.18). The buffer holds the 40 option bytes plus room
 * for the longest read past a masked offset (63 + 10). */
#define TCP_OPTS_MAX 40
#define TCP_OPTS_BUF 80

/* Copies the option bytes of a packet parsed by tcp_parse into `raw` (TCP_OPTS_BUF bytes)
 * with direct packet access; returns how many were copied: all of them (doff - 20), or
 * fewer when the header runs past the linear data (tc callers can then use
 * bpf_skb_load_bytes). Options are whole 32-bit words (doff counts words), so the copy
 * goes a word at a time. */
static __always_inline __u32 tcp_copy_options(const struct tcp_packet *pkt, void *data, void *data_end, __u8 *raw)
{
	struct tcphdr *tcp = tcp_header(pkt, data, data_end);
	__u32 optlen = pkt->doff > 20 ? pkt->doff - 20 : 0;
	__u32 n = 0;

	if (!tcp)
		return 0;
	__u8 *base = (__u8 *)(tcp + 1);
	for (int i = 0; i < TCP_OPTS_MAX; i += 4) {
		if (i >= optlen || (void *)(base + i + 4) > data_end)
			break;
		__builtin_memcpy(raw + i, base + i, 4);
		n = i + 4;
	}
	return n;
}

/* Parses `end` (0..40) option bytes of `raw` (TCP_OPTS_BUF bytes). Stops at EOL, at
 * `end`, or after 16 options; a bad length sets TCP_OPT_MALFORMED. Returns the number of
 * options seen. */
static __always_inline int tcp_parse_options_buf(const __u8 *raw, __u32 end, struct tcp_opts *o)
{
	__u32 off = 0;
	__u64 kinds = 0;
	int n;

	__builtin_memset(o, 0, sizeof(*o));
	if (end > TCP_OPTS_MAX)
		end = TCP_OPTS_MAX;
	for (n = 0; n < 16; n++) {
		if (off >= end)
			break;
		off &= 0x3f;  /* bounds the reads below for the verifier (off < 40 here) */
		const __u8 *p = raw + off;
		__u8 kind = p[0];
		if (kind == 0) {
			kinds |= (__u64)TCP_OK_EOL << (n * 4);
			n++;
			break;
		}
		if (kind == 1) {
			kinds |= (__u64)TCP_OK_NOP << (n * 4);
			off++;
			continue;
		}
		__u8 len = p[1];
		if (len < 2 || off + len > end) {
			o->present |= TCP_OPT_MALFORMED;
			break;
		}
		__u64 code = TCP_OK_OTHER;
		if (kind == 2 && len == 4) {
			o->mss = (__u16)p[2] << 8 | p[3];
			o->present |= TCP_OPT_HAS_MSS;
			code = TCP_OK_MSS;
		} else if (kind == 3 && len == 3) {
			o->wscale = p[2];
			o->present |= TCP_OPT_HAS_WSCALE;
			code = TCP_OK_WSCALE;
		} else if (kind == 4 && len == 2) {
			o->present |= TCP_OPT_HAS_SACK_OK;
			code = TCP_OK_SACK_OK;
		} else if (kind == 5) {
			o->sack_blocks = (len - 2) / 8;
			o->present |= TCP_OPT_HAS_SACK;
			code = TCP_OK_SACK;
		} else if (kind == 8 && len == 10) {
			o->ts_val = (__u32)p[2] << 24 | (__u32)p[3] << 16 | (__u32)p[4] << 8 | p[5];
			o->ts_ecr = (__u32)p[6] << 24 | (__u32)p[7] << 16 | (__u32)p[8] << 8 | p[9];
			o->present |= TCP_OPT_HAS_TS;
			code = TCP_OK_TS;
		}
		kinds |= code << (n * 4);
		off += len;
	}
	o->kinds_lo = (__u32)kinds;
	o->kinds_hi = (__u32)(kinds >> 32);
	o->count = n;
	return n;
}

/* True when the address words of a packet match addr/mask (network order). */
static __always_inline int tcp_addr_match(const __u32 *a, const __u32 *addr, const __u32 *mask, int v6)
{
	if (!v6)
		return (a[0] & mask[0]) == addr[0];
	return ((a[0] & mask[0]) == addr[0]) & ((a[1] & mask[1]) == addr[1]) &
	       ((a[2] & mask[2]) == addr[2]) & ((a[3] & mask[3]) == addr[3]);
}

#endif /* TCPSCOPE_TCP_PARSE_H */
