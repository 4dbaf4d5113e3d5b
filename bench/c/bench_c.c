// SPDX-License-Identifier: MIT
// C baselines for the tcpscope benchmarks, compiled at bench time by bench/lib/cbuild.js:
//   cc -O2 bench_c.c $(pkg-config --cflags --libs libbpf) -lpthread
// They load the same .bpf.o files as the JavaScript side and print one JSON line.
//
//   bench_c ringbuf stream OBJ PROG RING SECONDS BURST WAKEUP_BYTES RECORD_BYTES [RATE]
//       the producer of the JavaScript runs (`bench_c produce` in a child process, handed
//       PROG's fd) runs PROG for SECONDS (at RATE records/s when given, else flat out)
//       while this process consumes RING with ring_buffer__poll (libbpf's consumer).
//   bench_c ringbuf drain OBJ PROG RING SECONDS BURST WAKEUP_BYTES RECORD_BYTES
//       fills RING with test runs (nothing reading), then times ring_buffer__consume
//       emptying it; repeated until SECONDS of draining were measured.
//   bench_c produce FD SECONDS RATE [FRAME_HEX]
//       the producer of the JavaScript runs: test runs of the BPF program whose fd the
//       parent passed as FD, flat out (RATE 0) or at RATE runs/s, for SECONDS.
//   bench_c consume FD WAKEUP_MS FLAGS_OFFSET
//       a C reader of a ring another process loaded (its map fd handed down as FD), with
//       libbpf's consumer polling at most WAKEUP_MS apart, as the library's reader sleeps; it
//       reads one byte of each record (at FLAGS_OFFSET, counting those equal to 2, SYNs)
//       until SIGINT, then prints {received, syns}.
//   bench_c stalls SECONDS
//       how often a thread sleeping 0.5 ms wakes more than 1 or 4 ms late (machine noise).
//   bench_c mapdump OBJ FILL_PROG MAP ENTRIES SECONDS
//       fills MAP with ENTRIES test runs of FILL_PROG, then times full dumps with
//       bpf_map_lookup_batch (one call per dump as far as the kernel allows).
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double thread_cpu_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what, int err)
{
	fprintf(stderr, "bench_c: %s: %s\n", what, strerror(err < 0 ? -err : err));
	exit(1);
}

/* Offset of global `name` in section `sec` (".rodata", ".bss"), or -1. */
static long global_offset(struct bpf_object *obj, const char *sec, const char *name)
{
	const struct btf *btf = bpf_object__btf(obj);
	int id = btf ? btf__find_by_name_kind(btf, sec, BTF_KIND_DATASEC) : -1;
	if (id < 0)
		return -1;
	const struct btf_type *t = btf__type_by_id(btf, id);
	const struct btf_var_secinfo *v = btf_var_secinfos(t);
	for (int i = 0; i < btf_vlen(t); i++, v++) {
		const struct btf_type *var = btf__type_by_id(btf, v->type);
		if (strcmp(btf__name_by_offset(btf, var->name_off), name) == 0)
			return v->offset;
	}
	return -1;
}

/* Before load: address of a global in the section's initial image. */
static void *global_ptr(struct bpf_object *obj, const char *sec, const char *name)
{
	struct bpf_map *map = bpf_object__find_map_by_name(obj, sec);
	long off = global_offset(obj, sec, name);
	size_t size;
	char *data = map ? (char *)bpf_map__initial_value(map, &size) : NULL;
	return data && off >= 0 ? data + off : NULL;
}

/* After load: a u64 global's live value, read from the kernel map (libbpf 1.1 remaps the
 * section image onto the kernel map only for skeletons). */
static uint64_t read_global_u64(struct bpf_object *obj, const char *sec, const char *name)
{
	struct bpf_map *map = bpf_object__find_map_by_name(obj, sec);
	long off = global_offset(obj, sec, name);
	static char buf[1 << 16];
	uint32_t zero = 0;
	uint64_t value;
	if (!map || off < 0 || bpf_map__value_size(map) > sizeof(buf))
		die(name, ENOENT);
	if (bpf_map_lookup_elem(bpf_map__fd(map), &zero, buf) != 0)
		die("read global", errno);
	memcpy(&value, buf + off, sizeof(value));
	return value;
}

static void set_rodata_u32(struct bpf_object *obj, const char *name, uint32_t value)
{
	uint32_t *p = global_ptr(obj, ".rodata", name);
	if (!p)
		die(name, ENOENT);
	*p = value;
}

static struct bpf_object *load(const char *path, uint32_t burst, uint32_t wakeup, int set_ring_globals)
{
	struct bpf_object *obj = bpf_object__open_file(path, NULL);
	int err = libbpf_get_error(obj);
	if (err)
		die(path, err);
	if (set_ring_globals) {
		set_rodata_u32(obj, "burst", burst);
		set_rodata_u32(obj, "tcpscope_wakeup_bytes", wakeup);
		/* bench/ringbuf.js --ring-bytes: both consumers read rings of the same size */
		const char *ring_bytes = getenv("BENCH_RING_BYTES");
		if (ring_bytes) {
			const char *rings[] = {"ring64", "ring256"};
			for (int i = 0; i < 2; i++) {
				struct bpf_map *m = bpf_object__find_map_by_name(obj, rings[i]);
				if (!m || bpf_map__set_max_entries(m, strtoul(ring_bytes, NULL, 0)) != 0)
					die("set ring size", m ? errno : ENOENT);
			}
		}
	}
	err = bpf_object__load(obj);
	if (err)
		die("load", err);
	return obj;
}

static int prog_fd(struct bpf_object *obj, const char *name)
{
	struct bpf_program *p = bpf_object__find_program_by_name(obj, name);
	if (!p)
		die(name, ENOENT);
	return bpf_program__fd(p);
}

/* One test run of `repeat` iterations on a 64-byte zero frame; returns kernel ns. */
static double test_run(int fd, int repeat)
{
	static uint8_t frame[64];
	DECLARE_LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame, .data_size_in = sizeof(frame), .repeat = repeat);
	if (bpf_prog_test_run_opts(fd, &opts) != 0)
		die("test run", errno);
	return (double)opts.duration * repeat;
}

/* ---- ring buffer ---- */

struct consumer {
	uint64_t count;
	uint64_t sum;
	uint64_t gaps;
	uint32_t expect;
	int started;
};

static int on_record(void *ctx, void *data, size_t size)
{
	struct consumer *c = ctx;
	uint32_t seq = ((const uint32_t *)data)[3]; /* struct bench_event*.seq */
	if (c->started && seq != c->expect)
		c->gaps++;
	c->started = 1;
	c->expect = seq + 1;
	c->sum += seq;
	c->count++;
	(void)size;
	return 0;
}

static void sleep_until(double t)
{
	struct timespec ts = { .tv_sec = (time_t)t, .tv_nsec = (long)((t - (time_t)t) * 1e9) };
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

static uint64_t ring_capacity_records(int map_fd, size_t record)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);
	if (bpf_obj_get_info_by_fd(map_fd, &info, &len) != 0)
		die("map info", errno);
	return info.max_entries / ((record + 8 + 7) & ~(size_t)7);
}

static int ringbuf_main(int argc, char **argv)
{
	if (argc < 9) {
		fprintf(stderr, "usage: bench_c ringbuf stream|drain OBJ PROG RING SECONDS BURST WAKEUP_BYTES RECORD_BYTES [RATE]\n");
		return 2;
	}
	const char *mode = argv[2], *path = argv[3], *prog = argv[4], *ring = argv[5];
	double seconds = atof(argv[6]);
	uint32_t burst = strtoul(argv[7], NULL, 0), wakeup = strtoul(argv[8], NULL, 0);
	size_t record = argc > 9 ? strtoul(argv[9], NULL, 0) : 64;
	double rate = argc > 10 ? atof(argv[10]) : 0;
	struct bpf_object *obj = load(path, burst, wakeup, 1);
	int pfd = prog_fd(obj, prog);
	struct bpf_map *map = bpf_object__find_map_by_name(obj, ring);
	if (!map)
		die(ring, ENOENT);
	int mfd = bpf_map__fd(map);
	char lost_name[64];
	snprintf(lost_name, sizeof(lost_name), "%s_lost", ring);
	struct consumer c = {};
	struct ring_buffer *rb = ring_buffer__new(mfd, on_record, &c, NULL);
	if (!rb)
		die("ring_buffer__new", errno);

	if (strcmp(mode, "drain") == 0) {
		uint64_t cap = ring_capacity_records(mfd, record);
		int repeat = (int)(cap * 95 / 100 / burst);
		double drain = 0, drain_cpu = 0, wall0 = now_s();
		uint64_t drained = 0, rounds = 0;
		while (drain < seconds && now_s() - wall0 < seconds * 4 + 2) {
			test_run(pfd, repeat);
			double t0 = now_s(), cpu0 = thread_cpu_s();
			uint64_t before = c.count;
			if (ring_buffer__consume(rb) < 0)
				die("ring_buffer__consume", errno);
			drain_cpu += thread_cpu_s() - cpu0;
			drain += now_s() - t0;
			drained += c.count - before;
			rounds++;
		}
		printf("{\"consumer\":\"c\",\"mode\":\"drain\",\"received\":%llu,\"rounds\":%llu,\"drain_s\":%.6f,"
		       "\"drain_cpu_s\":%.6f,\"events_per_s\":%.0f,\"events_per_cpu_s\":%.0f,\"lost\":%llu,\"gaps\":%llu}\n",
		       (unsigned long long)drained, (unsigned long long)rounds, drain, drain_cpu, drained / drain, drained / drain_cpu,
		       (unsigned long long)read_global_u64(obj, ".bss", lost_name), (unsigned long long)c.gaps);
		return 0;
	}

	/* The JavaScript runs' producer, exactly: this program's `produce` mode in a child
	 * process with PROG's fd as its fd 3, at RATE/BURST test runs per second. */
	char seconds_arg[32], rate_arg[32], frame_hex[2 * 64 + 1];
	snprintf(seconds_arg, sizeof(seconds_arg), "%g", seconds);
	snprintf(rate_arg, sizeof(rate_arg), "%g", rate / burst);
	memset(frame_hex, '0', sizeof(frame_hex) - 1);
	frame_hex[sizeof(frame_hex) - 1] = 0;
	int out[2];
	if (pipe(out) != 0)
		die("pipe", errno);
	double cpu0 = thread_cpu_s(), last = now_s();
	uint64_t lost0 = read_global_u64(obj, ".bss", lost_name);
	uint64_t seq0 = read_global_u64(obj, ".bss", "next_seq");
	pid_t child = fork();
	if (child < 0)
		die("fork", errno);
	if (child == 0) {
		if (dup2(pfd, 3) < 0 || dup2(out[1], 1) < 0)
			_exit(127);
		execl("/proc/self/exe", "bench_c", "produce", "3", seconds_arg, rate_arg, frame_hex, (char *)NULL);
		_exit(127);
	}
	close(out[1]);
	int status = 0, exited = 0;
	for (;;) {
		if (!exited && waitpid(child, &status, WNOHANG) == child)
			exited = 1;
		int n = ring_buffer__poll(rb, 10);
		if (n < 0 && n != -EINTR)
			die("ring_buffer__poll", n);
		if (n > 0) {
			last = now_s();
		} else if (exited) {
			/* what is left below the wake-up threshold: read it as the timer would */
			if (ring_buffer__consume(rb) > 0)
				last = now_s();
			break;
		}
	}
	double cpu = thread_cpu_s() - cpu0;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		die("producer", ECHILD);
	char report[1024] = "";
	ssize_t got = read(out[0], report, sizeof(report) - 1);
	close(out[0]);
	report[got > 0 ? got : 0] = 0;
	double p_start = 0, p_end = 0, p_kernel_ns = 0, p_runs = 0, p_cpu = 0;
	const char *at;
	if ((at = strstr(report, "\"runs\":")))
		p_runs = atof(at + 7);
	if ((at = strstr(report, "\"kernel_ns\":")))
		p_kernel_ns = atof(at + 12);
	if ((at = strstr(report, "\"start\":")))
		p_start = atof(at + 8);
	if ((at = strstr(report, "\"end\":")))
		p_end = atof(at + 6);
	if ((at = strstr(report, "\"cpu_s\":")))
		p_cpu = atof(at + 8);
	if (p_end <= p_start)
		die("producer report", EINVAL);
	uint64_t lost1 = read_global_u64(obj, ".bss", lost_name);
	uint64_t produced = read_global_u64(obj, ".bss", "next_seq") - seq0;
	/* as the JavaScript runs count: from the producer's start to the last record read */
	double elapsed = last - p_start;
	printf("{\"consumer\":\"c\",\"mode\":\"stream\",\"received\":%llu,\"lost\":%llu,\"elapsed_s\":%.6f,"
	       "\"events_per_s\":%.0f,\"produced\":%llu,\"unread\":%lld,\"offered_per_s\":%.0f,\"producer_ns_per_event\":%.1f,\"producer_cpu_s\":%.3f,"
	       "\"consumer_cpu_s\":%.3f,\"consumer_cpu_share\":%.3f,\"gaps\":%llu,\"checksum\":%llu}\n",
	       (unsigned long long)c.count, (unsigned long long)(lost1 - lost0), elapsed, c.count / elapsed,
	       (unsigned long long)produced, (long long)produced - (long long)c.count, (produced + lost1 - lost0) / (p_end - p_start),
	       p_kernel_ns / (p_runs ? p_runs : 1) / burst, p_cpu, cpu, cpu / elapsed,
	       (unsigned long long)c.gaps, (unsigned long long)c.sum);
	ring_buffer__free(rb);
	bpf_object__close(obj);
	return 0;
}

/* ---- map dump ---- */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static int mapdump_main(int argc, char **argv)
{
	if (argc < 7) {
		fprintf(stderr, "usage: bench_c mapdump OBJ FILL_PROG MAP ENTRIES SECONDS\n");
		return 2;
	}
	const char *path = argv[2], *fill = argv[3], *name = argv[4];
	uint32_t entries = strtoul(argv[5], NULL, 0);
	double seconds = atof(argv[6]);
	struct bpf_object *obj = load(path, 0, 0, 0);
	struct bpf_map *map = bpf_object__find_map_by_name(obj, name);
	if (!map)
		die(name, ENOENT);
	int fd = bpf_map__fd(map);
	test_run(prog_fd(obj, fill), entries);
	uint32_t key_size = bpf_map__key_size(map), value_size = bpf_map__value_size(map);
	uint32_t capacity = bpf_map__max_entries(map);
	char *keys = malloc((size_t)capacity * key_size), *values = malloc((size_t)capacity * value_size);
	uint64_t in_token = 0, out_token = 0;
	double times[1000];
	int n = 0;
	uint32_t total = 0;
	double wall0 = now_s(), spent = 0;
	while (n < 1000 && (n < 5 || spent < seconds) && now_s() - wall0 < seconds * 4 + 5) {
		DECLARE_LIBBPF_OPTS(bpf_map_batch_opts, opts);
		double t0 = now_s();
		int first = 1;
		total = 0;
		while (total < capacity) {
			uint32_t count = capacity - total;
			int err = bpf_map_lookup_batch(fd, first ? NULL : &in_token, &out_token, keys + (size_t)total * key_size,
						       values + (size_t)total * value_size, &count, &opts);
			int saved = errno;
			total += count;
			if (err) {
				if (saved == ENOENT || saved == ENOSPC)
					break;
				die("bpf_map_lookup_batch", saved);
			}
			first = 0;
			in_token = out_token;
		}
		times[n] = now_s() - t0;
		spent += times[n++];
	}
	qsort(times, n, sizeof(double), cmp_double);
	printf("{\"reader\":\"c\",\"entries\":%u,\"dumps\":%d,\"median_ms\":%.3f,\"min_ms\":%.3f}\n", total, n,
	       times[n / 2] * 1e3, times[0] * 1e3);
	bpf_object__close(obj);
	return 0;
}

/* ---- producer for the JavaScript benchmarks ---- */

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* bench_c produce FD SECONDS RATE [FRAME_HEX]: test runs of the program at FD (inherited
 * from the JavaScript process: fds are per process, BPF programs are not) until SECONDS
 * pass, flat out in growing chunks or at RATE runs/s in 0.5 ms slices. */
static int produce_main(int argc, char **argv)
{
	if (argc < 5) {
		fprintf(stderr, "usage: bench_c produce FD SECONDS RATE [FRAME_HEX]\n");
		return 2;
	}
	int fd = atoi(argv[2]);
	double seconds = atof(argv[3]), rate = atof(argv[4]);
	static uint8_t frame[2048];
	size_t frame_len = 64;
	if (argc > 5) {
		size_t n = strlen(argv[5]) / 2;
		if (n > sizeof(frame))
			die("frame", E2BIG);
		for (size_t i = 0; i < n; i++)
			frame[i] = (uint8_t)(hexval(argv[5][2 * i]) << 4 | hexval(argv[5][2 * i + 1]));
		frame_len = n;
	}
	const double slice = 0.0005;
	int chunk = rate > 0 ? (int)(rate * slice + 0.5) : 4096;
	if (chunk < 1)
		chunk = 1;
	size_t cap = 1024, n = 0;
	uint32_t *durations = malloc(cap * sizeof(*durations));
	uint64_t runs = 0;
	double kernel_ns = 0, start = now_s(), deadline = start + seconds, cpu0 = thread_cpu_s();
	for (uint64_t k = 0; now_s() < deadline; k++) {
		if (rate > 0)
			sleep_until(start + slice * k);
		DECLARE_LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame, .data_size_in = frame_len, .repeat = chunk);
		double t0 = now_s();
		if (bpf_prog_test_run_opts(fd, &opts) != 0)
			die("test run", errno);
		if (n == cap)
			durations = realloc(durations, (cap *= 2) * sizeof(*durations));
		durations[n++] = opts.duration;
		kernel_ns += (double)opts.duration * chunk;
		runs += chunk;
		if (rate > 0)
			continue;
		double took = now_s() - t0;
		if (took < 0.005 && chunk < (1 << 24))
			chunk *= 2;
		else if (took > 0.02 && chunk > 16)
			chunk /= 2;
	}
	double end = now_s();
	qsort(durations, n, sizeof(*durations), cmp_u32);
	printf("{\"runs\":%llu,\"kernel_ns\":%.0f,\"start\":%.6f,\"end\":%.6f,\"chunks\":%zu,\"median_ns\":%u,"
	       "\"cpu_s\":%.3f}\n",
	       (unsigned long long)runs, kernel_ns, start, end, n, n ? durations[n / 2] : 0, thread_cpu_s() - cpu0);
	return 0;
}

/* ---- scheduling noise ---- */

/* Sleeps 0.5 ms at a time for SECONDS and counts how late it wakes: a reader that is not
 * scheduled for longer than the ring takes to fill loses records whatever its speed. */
static volatile sig_atomic_t consume_stop;

static void on_consume_signal(int sig)
{
	(void)sig;
	consume_stop = 1;
}

struct flag_counter {
	uint64_t received, syns;
	size_t offset;
};

static int count_flags(void *ctx, void *data, size_t size)
{
	struct flag_counter *c = ctx;
	c->received++;
	if (size > c->offset && ((const uint8_t *)data)[c->offset] == 2)
		c->syns++;
	return 0;
}

static int consume_main(int argc, char **argv)
{
	if (argc < 5) {
		fprintf(stderr, "usage: bench_c consume FD WAKEUP_MS FLAGS_OFFSET\n");
		return 2;
	}
	struct flag_counter counter = { .offset = (size_t)atol(argv[4]) };
	struct sigaction sa = { .sa_handler = on_consume_signal };
	sigaction(SIGINT, &sa, NULL);
	struct ring_buffer *rb = ring_buffer__new(atoi(argv[2]), count_flags, &counter, NULL);
	if (!rb)
		die("ring_buffer__new", errno);
	int wakeup_ms = atoi(argv[3]);
	/* As the library's reader waits: an edge-triggered epoll of its own reports the
	 * producer's wake-ups only (libbpf's own epoll is level-triggered: readable whenever a
	 * record waits, it would read every few records), else the timeout. */
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event watch = { .events = EPOLLIN | EPOLLET };
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, atoi(argv[2]), &watch) != 0)
		die("epoll", errno);
	fprintf(stderr, "listening on\n");
	while (!consume_stop) {
		struct epoll_event event;
		epoll_wait(ep, &event, 1, wakeup_ms);
		int n = ring_buffer__consume(rb);
		if (n < 0)
			die("ring_buffer__consume", -n);
	}
	ring_buffer__consume(rb);
	ring_buffer__free(rb);
	printf("{\"received\":%llu,\"syns\":%llu}\n", (unsigned long long)counter.received, (unsigned long long)counter.syns);
	return 0;
}

static int stalls_main(int argc, char **argv)
{
	double seconds = argc > 2 ? atof(argv[2]) : 1;
	double start = now_s(), worst = 0;
	unsigned sleeps = 0, over1 = 0, over4 = 0;
	while (now_s() - start < seconds) {
		double t0 = now_s();
		sleep_until(t0 + 0.0005);
		double late = now_s() - t0 - 0.0005;
		sleeps++;
		if (late > worst)
			worst = late;
		over1 += late > 0.001;
		over4 += late > 0.004;
	}
	double wall = now_s() - start;
	printf("{\"sleeps\":%u,\"late_over_1ms_per_s\":%.1f,\"late_over_4ms_per_s\":%.1f,\"worst_ms\":%.2f}\n", sleeps,
	       over1 / wall, over4 / wall, worst * 1e3);
	return 0;
}

int main(int argc, char **argv)
{
	libbpf_set_strict_mode(LIBBPF_STRICT_ALL);
	if (argc > 1 && strcmp(argv[1], "ringbuf") == 0)
		return ringbuf_main(argc, argv);
	if (argc > 1 && strcmp(argv[1], "mapdump") == 0)
		return mapdump_main(argc, argv);
	if (argc > 1 && strcmp(argv[1], "stalls") == 0)
		return stalls_main(argc, argv);
	if (argc > 1 && strcmp(argv[1], "produce") == 0)
		return produce_main(argc, argv);
	if (argc > 1 && strcmp(argv[1], "consume") == 0)
		return consume_main(argc, argv);
	fprintf(stderr, "usage: bench_c ringbuf|mapdump|produce|consume|stalls ...\n");
	return 2;
}
