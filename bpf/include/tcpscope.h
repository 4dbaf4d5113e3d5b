/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * What every tcpscope BPF program shares: ring buffers whose failed reservations are
 * always counted, and submits that wake the reader only when enough data is waiting.
 *
 *   TCPSCOPE_RINGBUF(events, 1 << 22, struct my_event);
 *   struct my_event *e = tcpscope_reserve(events, sizeof(*e));
 *   if (!e) return 0;            // counted in events_lost, read by the loader
 *   ...
 *   tcpscope_submit(events, e);
 *
 * The reader also wakes itself on a short timer, so a quiet ring still reaches user space
 * within the configured latency even when no submit crossed the threshold.
 */
#ifndef TCPSCOPE_H
#define TCPSCOPE_H

#include <bpf/bpf_helpers.h>

/* Bytes waiting in a ring before a submit wakes the reader. 0 wakes on every submit
 * (libbpf's default behaviour). Set from user space before load. */
const volatile __u32 tcpscope_wakeup_bytes = 0;

/* A ring buffer map plus globals the loader finds by name: its loss counter `<name>_lost`
 * (.bss), reported as `lost`; `<name>_record_type`, a pointer whose BTF type tells the
 * loader how to decode records (clang emits BTF only for types that globals or function
 * signatures use); and `<name>_reader_idle`, set by a reader that found the ring empty and
 * sleeps without a timer, cleared by the next submit, which wakes it. */
#define TCPSCOPE_RINGBUF(name, bytes, record_type)   \
	struct {                                     \
		__uint(type, BPF_MAP_TYPE_RINGBUF);  \
		__uint(max_entries, bytes);          \
	} name SEC(".maps");                         \
	__u64 name##_lost = 0;                       \
	__u64 name##_woken_at = ~0ULL;               \
	__u32 name##_reader_idle = 0;                \
	TCPSCOPE_RECORD_TYPE(name, record_type)

/* Declares the type of the records a ring or perf buffer carries, for the loader's decoder
 * and the typed skeleton `tcpscope compile` generates. */
#define TCPSCOPE_RECORD_TYPE(map, record_type) \
	record_type *map##_record_type __attribute__((unused)) = 0

/* A perf event array whose records (bpf_perf_event_output) are `record_type`. */
#define TCPSCOPE_PERFBUF(name, record_type)                   \
	struct {                                              \
		__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);  \
		__uint(key_size, sizeof(__u32));              \
		__uint(value_size, sizeof(__u32));            \
	} name SEC(".maps");                                  \
	TCPSCOPE_RECORD_TYPE(name, record_type)

static __always_inline void *tcpscope__reserve(void *ring, __u64 size, __u64 *lost)
{
	void *record = bpf_ringbuf_reserve(ring, size, 0);

	if (!record)
		__sync_fetch_and_add(lost, 1);
	return record;
}

/* Forces a wake-up once per consumer position: while the reader has not consumed since
 * the last forced wake-up, another one would only cost an IPI per record (microseconds
 * in a VM) without waking anybody new. */
static __always_inline __u64 tcpscope__wakeup_flags(void *ring, __u64 *woken_at, __u32 *reader_idle)
{
	__u32 threshold = tcpscope_wakeup_bytes;

	if (*reader_idle) {
		*reader_idle = 0;
		return BPF_RB_FORCE_WAKEUP;
	}
	if (threshold == 0)
		return 0;
	if (bpf_ringbuf_query(ring, BPF_RB_AVAIL_DATA) < threshold)
		return BPF_RB_NO_WAKEUP;
	__u64 cons = bpf_ringbuf_query(ring, BPF_RB_CONS_POS);
	if (*woken_at == cons)
		return BPF_RB_NO_WAKEUP;
	*woken_at = cons;
	return BPF_RB_FORCE_WAKEUP;
}

#define tcpscope_reserve(ring, size) tcpscope__reserve(&ring, size, &ring##_lost)
#define tcpscope_submit(ring, record) bpf_ringbuf_submit(record, tcpscope__wakeup_flags(&ring, &ring##_woken_at, &ring##_reader_idle))
#define tcpscope_discard(ring, record) bpf_ringbuf_discard(record, BPF_RB_NO_WAKEUP)

/* Copies `size` bytes into a fresh record; counts the loss when the ring is full. */
#define tcpscope_output(ring, data, size)                                              \
	({                                                                             \
		long __ret = bpf_ringbuf_output(&ring, data, size, tcpscope__wakeup_flags(&ring, &ring##_woken_at, &ring##_reader_idle)); \
		if (__ret)                                                             \
			__sync_fetch_and_add(&ring##_lost, 1);                         \
		__ret;                                                                 \
	})

#endif /* TCPSCOPE_H */
