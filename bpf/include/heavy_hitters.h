/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Which keys are heavy, decided in the kernel without a table entry per key: a count-min
 * sketch of HH_ROWS rows x HH_WIDTH cells counts every key over short epochs; a key whose
 * estimate reaches the admission threshold within one epoch gets a real entry in an
 * LRU table (exact counting from then on). A random-source flood, where every key is new,
 * then costs HH_ROWS atomic adds per packet and no table churn, and user space reads a
 * table holding only the heavy keys instead of thousands of one-packet entries.
 *
 * Cells carry the epoch they count, so a stale cell restarts at 0 when touched; no sweep
 * is needed. Racing CPUs may lose an increment when a cell changes epoch: the estimate is
 * approximate, as a sketch's always is (it only ever errs upward otherwise).
 */
#ifndef TCPSCOPE_HEAVY_HITTERS_H
#define TCPSCOPE_HEAVY_HITTERS_H

#define HH_ROWS 4
#define HH_WIDTH 16384 /* a power of two */

struct hh_cell {
	__u32 epoch;
	__u32 count;
};

/* murmur3's finalizer: cheap, and good enough to spread addresses over a row. */
static __always_inline __u32 hh_mix(__u32 h)
{
	h ^= h >> 16;
	h *= 0x85ebca6b;
	h ^= h >> 13;
	h *= 0xc2b2ae35;
	h ^= h >> 16;
	return h;
}

/* Adds one to `words` (4 words of key) in the sketch `map` (an ARRAY of HH_ROWS * HH_WIDTH
 * hh_cell) for `epoch`; returns the estimate after the add (0 when the sketch is absent). */
static __always_inline __u32 hh_sketch_add(void *map, const __u32 *words, __u32 epoch)
{
	__u32 base = hh_mix(words[0] ^ hh_mix(words[1] ^ hh_mix(words[2] ^ hh_mix(words[3]))));
	__u32 est = 0xffffffff;

#pragma unroll
	for (__u32 row = 0; row < HH_ROWS; row++) {
		__u32 idx = row * HH_WIDTH + (hh_mix(base + row * 0x9e3779b9) & (HH_WIDTH - 1));
		struct hh_cell *c = bpf_map_lookup_elem(map, &idx);
		__u32 n;

		if (!c)
			return 0;
		if (c->epoch != epoch) {
			c->epoch = epoch;
			c->count = 0;
		}
		/* No fetch: kernels before 5.12 have only the plain atomic add. */
		__sync_fetch_and_add(&c->count, 1);
		n = c->count;
		if (n < est)
			est = n;
	}
	return est;
}

#endif /* TCPSCOPE_HEAVY_HITTERS_H */
