/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Which keys are heavy, decided in the kernel without a table entry per key: a count-min
 * sketch of HH_ROWS rows x HH_WIDTH cells counts every key over short epochs; a key whose
 * estimate reaches the admission threshold within one epoch gets a real entry in an
 * LRU table (exact counting from then on). A random-source flood, where every key is new,
 * then costs HH_ROWS atomic adds in one cache line per packet and no table churn, and user
 * space reads a table holding only the heavy keys instead of thousands of one-packet
 * entries.
 *
 * Cells carry the epoch they count, so a stale cell restarts at 0 when touched; no sweep
 * is needed. Racing CPUs may lose an increment when a cell changes epoch: the estimate is
 * approximate, as a sketch's always is (it only ever errs upward otherwise).
 */
#ifndef TCPSCOPE_HEAVY_HITTERS_H
#define TCPSCOPE_HEAVY_HITTERS_H

#define HH_ROWS 4
#define HH_WIDTH 16384 /* cells per row, a power of two */
#define HH_LINE_CELLS 8 /* 8 cells of 8 bytes: one 64-byte cache line */
#define HH_LINES (HH_ROWS * HH_WIDTH / HH_LINE_CELLS)

struct hh_cell {
	__u32 epoch;
	__u32 count;
};

/*
 * The sketch is blocked: a key's HH_ROWS cells all sit in one 64-byte line (row r takes
 * cell 2r or 2r+1 of it, by one hash bit). Why: with the rows apart, every packet of a
 * random-source flood touched HH_ROWS random cache lines of a 512 KiB array per sketch,
 * all missing in cache; one line per key costs one miss. Each row still collides with
 * another key with probability 1 / HH_WIDTH (same line: HH_LINE_CELLS / (HH_ROWS *
 * HH_WIDTH); same cell of the pair: 1/2), so a cell's expected noise, which user space's
 * admission threshold is computed from, is unchanged; only the rows are no longer
 * independent of each other (a key sharing the line shares a row's cell with probability
 * 1/2 each), which leaves the minimum over the rows a little noisier.
 */
struct hh_line {
	struct hh_cell cells[HH_LINE_CELLS];
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

/* Adds one to `words` (4 words of key) in the sketch `map` (an ARRAY of HH_LINES hh_line)
 * for `epoch`; returns the estimate after the add (0 when the sketch is absent). */
static __always_inline __u32 hh_sketch_add(void *map, const __u32 *words, __u32 epoch)
{
	__u32 h = hh_mix(words[0] ^ hh_mix(words[1] ^ hh_mix(words[2] ^ hh_mix(words[3]))));
	__u32 at = h & (HH_LINES - 1); /* the low bits pick the line, bits 24.. the cells */
	struct hh_line *line = bpf_map_lookup_elem(map, &at);
	__u32 est = 0xffffffff;

	if (!line)
		return 0;
#pragma unroll
	for (__u32 row = 0; row < HH_ROWS; row++) {
		struct hh_cell *c = &line->cells[2 * row + ((h >> (24 + row)) & 1)];
		__u32 n;

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
