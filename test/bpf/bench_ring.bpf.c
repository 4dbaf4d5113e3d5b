// SPDX-License-Identifier: GPL-2.0
// Producers for bench/ringbuf: each BPF_PROG_TEST_RUN iteration emits `burst` records of
// 64 or 256 bytes into a 4 MiB TCPSCOPE_RINGBUF. Kept cheap on purpose (no helpers but the
// ring's own) so the producer, not the consumer under test, is the faster side.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "tcpscope.h"

/* The same 11 fields in both sizes; the rest of the record is tail padding, which the BTF
 * decoder skips. */
#define BENCH_FIELDS       \
	__u64 ts_ns;       \
	__u32 pid;         \
	__u32 seq;         \
	__u32 ack;         \
	__u32 saddr;       \
	__u32 daddr;       \
	__u32 len;         \
	__u16 sport;       \
	__u16 dport;       \
	__u8 tcp_flags;    \
	__u8 state;

struct bench_event64 {
	BENCH_FIELDS
} __attribute__((aligned(64)));

struct bench_event256 {
	BENCH_FIELDS
} __attribute__((aligned(256)));

TCPSCOPE_RINGBUF(ring64, 1 << 22, struct bench_event64);
TCPSCOPE_RINGBUF(ring256, 1 << 22, struct bench_event256);

/* Records per program run (1..64). */
const volatile __u32 burst = 1;
/* Sequence number of the next record: consumers check it for gaps. */
__u64 next_seq = 0;

#define EMIT(ring, type)                                                      \
	do {                                                                  \
		__u64 seq = next_seq;                                         \
		for (__u32 i = 0; i < 64; i++) {                              \
			if (i >= burst)                                       \
				break;                                        \
			struct type *e = tcpscope_reserve(ring, sizeof(*e));  \
			if (!e)                                               \
				break;                                        \
			e->ts_ns = seq;                                       \
			e->pid = 4242;                                        \
			e->seq = (__u32)seq;                                  \
			e->ack = 7;                                           \
			e->saddr = 0x0100007f;                                \
			e->daddr = 0x0200007f;                                \
			e->len = sizeof(*e);                                  \
			e->sport = 40000;                                     \
			e->dport = 443;                                       \
			e->tcp_flags = 0x02;                                  \
			e->state = 1;                                         \
			tcpscope_submit(ring, e);                             \
			seq++;                                                \
		}                                                             \
		next_seq = seq;                                               \
	} while (0)

SEC("tc")
int bench_emit64(struct __sk_buff *skb)
{
	EMIT(ring64, bench_event64);
	return 0;
}

SEC("tc")
int bench_emit256(struct __sk_buff *skb)
{
	EMIT(ring256, bench_event256);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
