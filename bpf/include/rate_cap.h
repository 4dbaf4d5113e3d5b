/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * A cap on events per second, kept in the kernel: a program asks rate_cap_take() before it
 * reserves a ring record, and counts the packets it refuses as sampled instead of sending
 * them, so a flood cannot push more records to user space than the reader asked for.
 *
 * The budget is per 100 ms slot, shared by all CPUs (one array entry, atomic adds), so
 * the total stays under the limit however the packets spread over CPUs. Starting a new slot
 * races between CPUs; the loser's few increments land in the new slot, which lets a handful
 * of extra events through at the slot boundary, never a flood.
 *
 *   struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1);
 *            __type(key, __u32); __type(value, struct rate_cap); } my_cap SEC(".maps");
 *   if (!rate_cap_take(&my_cap, now, cfg->events_per_slot)) { st->sampled++; return; }
 */
#ifndef TCPSCOPE_RATE_CAP_H
#define TCPSCOPE_RATE_CAP_H

#define RATE_CAP_SLOT_NS 100000000ULL /* 100 ms: user space sets events per slot = rate / 10 */

struct rate_cap {
	__u64 slot;  /* now / RATE_CAP_SLOT_NS of the slot being counted */
	__u64 taken; /* events allowed in it so far */
};

/* 1: send this event; 0: over the budget (count it as sampled). per_slot 0: no cap. */
static __always_inline int rate_cap_take(void *map, __u64 now, __u32 per_slot)
{
	__u32 zero = 0;
	struct rate_cap *c;
	__u64 slot;

	if (per_slot == 0)
		return 1;
	c = bpf_map_lookup_elem(map, &zero);
	if (!c)
		return 1;
	slot = now / RATE_CAP_SLOT_NS;
	if (c->slot != slot) {
		c->slot = slot;
		c->taken = 0;
	}
	if (c->taken >= per_slot)
		return 0;
	__sync_fetch_and_add(&c->taken, 1);
	return 1;
}

#endif /* TCPSCOPE_RATE_CAP_H */
