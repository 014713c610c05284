/*
 * openloop.c — the benchmark's traced application (AP): it repeatedly opens
 * and closes one file and records how long each call took, the experiment
 * of the paper's evaluation. The harness (package bench) runs it once per
 * repetition under each mode (untraced, the shim, LTTng, strace, eBPF) and
 * reads the samples back.
 *
 * Warm: one sample is one open+close (or fopen+fclose) pair, what an
 * application pays per file it touches; the shim records the open and does
 * not hook close. Cold (-c N): before each open it writes N to
 * /proc/sys/vm/drop_caches (2 = dentries and inodes) outside the timed
 * region, and the sample is the open alone.
 *
 * Samples are uint32 nanoseconds, little-endian, one file per worker
 * (OUT.0, OUT.1, ...), written after the loop so the I/O never lands in a
 * timed region. Workers are threads (-t) or processes (-P); they start
 * together behind a barrier so they really run at the same time.
 *
 * Built twice: plain, and with -DWITH_LTTNG, where an LTTng-UST tracepoint
 * (tp.h) carrying the path and the result fires after every open.
 */
#undef _FORTIFY_SOURCE /* call open itself, not __open_2: one hooked entry point in every mode */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifdef WITH_LTTNG
#include "tp.h"
#define TRACE_OPEN(path, res) lttng_ust_tracepoint(restrack_bench, open, (path), (res))
#else
#define TRACE_OPEN(path, res) ((void)0)
#endif

static const char *path;
static const char *out;
static long calls = 10000, warmup = 1000;
static int use_fopen, drop_level, nthreads = 1, nprocs = 1, cpu = -1;
static int drop_fd = -1;
static pthread_barrier_t barrier;

static inline uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *what)
{
	fprintf(stderr, "openloop: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* drop asks the kernel to forget cached file metadata; the write itself is
 * outside every timed region. */
static void drop(void)
{
	char c = (char)('0' + drop_level);
	if (pwrite(drop_fd, &c, 1, 0) != 1)
		die("write /proc/sys/vm/drop_caches");
}

/* one performs one call; it returns the sample in ns. */
static uint32_t one(void)
{
	uint64_t t0, t1;
	if (drop_level)
		drop();
	if (use_fopen) {
		t0 = now_ns();
		FILE *f = fopen(path, "r");
		if (f == NULL)
			die(path);
		TRACE_OPEN(path, fileno(f));
		if (!drop_level) {
			fclose(f);
			t1 = now_ns();
		} else {
			t1 = now_ns();
			fclose(f);
		}
	} else {
		t0 = now_ns();
		int fd = open(path, O_RDONLY);
		if (fd < 0)
			die(path);
		TRACE_OPEN(path, fd);
		if (!drop_level) {
			close(fd);
			t1 = now_ns();
		} else {
			t1 = now_ns();
			close(fd);
		}
	}
	uint64_t d = t1 - t0;
	return d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
}

static void write_samples(int worker, const uint32_t *s, long n)
{
	char name[4096];
	snprintf(name, sizeof(name), "%s.%d", out, worker);
	FILE *f = fopen(name, "wb");
	if (f == NULL)
		die(name);
	if (fwrite(s, sizeof(*s), (size_t)n, f) != (size_t)n || fclose(f) != 0)
		die(name);
}

struct worker {
	pthread_t th;
	int id;
	uint32_t *samples;
};

static void *run(void *arg)
{
	struct worker *w = arg;
	for (long i = 0; i < warmup; i++)
		(void)one();
	if (nthreads > 1)
		pthread_barrier_wait(&barrier);
	for (long i = 0; i < calls; i++)
		w->samples[i] = one();
	return NULL;
}

static void usage(void)
{
	fprintf(stderr, "usage: openloop -p FILE -o OUT [-n CALLS] [-w WARMUP] [-f] [-c DROP] [-t THREADS | -P PROCS] [-a CPU]\n"
			"  -f        fopen/fclose instead of open/close\n"
			"  -a CPU    run on that CPU only (with fiforeader -a: the paper's one-CPU machine)\n"
			"  -c DROP   cold: write DROP (1-3) to /proc/sys/vm/drop_caches before each open (root)\n");
	exit(2);
}

int main(int argc, char **argv)
{
	int c;
	while ((c = getopt(argc, argv, "p:o:n:w:fc:t:P:a:")) != -1) {
		switch (c) {
		case 'p': path = optarg; break;
		case 'o': out = optarg; break;
		case 'n': calls = atol(optarg); break;
		case 'w': warmup = atol(optarg); break;
		case 'f': use_fopen = 1; break;
		case 'c': drop_level = atoi(optarg); break;
		case 't': nthreads = atoi(optarg); break;
		case 'P': nprocs = atoi(optarg); break;
		case 'a': cpu = atoi(optarg); break;
		default: usage();
		}
	}
	if (path == NULL || out == NULL || calls < 1 || warmup < 0 || nthreads < 1 || nprocs < 1 ||
	    drop_level < 0 || drop_level > 3 || (nthreads > 1 && nprocs > 1))
		usage();
	if (drop_level && (nthreads > 1 || nprocs > 1)) {
		fprintf(stderr, "openloop: cold runs take one worker: dropping caches under another worker's open would time the drop\n");
		return 2;
	}
	if (cpu >= 0) {
		cpu_set_t set;
		CPU_ZERO(&set);
		CPU_SET(cpu, &set);
		if (sched_setaffinity(0, sizeof(set), &set) != 0)
			die("sched_setaffinity");
	}
	if (drop_level) {
		drop_fd = open("/proc/sys/vm/drop_caches", O_WRONLY | O_CLOEXEC);
		if (drop_fd < 0)
			die("open /proc/sys/vm/drop_caches (cold runs need root)");
	}

	if (nprocs > 1) {
		/* A pipe is the start gate: every child blocks reading it until the
		 * parent closes the write end, so all start their loops together. */
		int gate[2];
		if (pipe(gate) != 0)
			die("pipe");
		for (int k = 0; k < nprocs; k++) {
			pid_t pid = fork();
			if (pid < 0)
				die("fork");
			if (pid == 0) {
				struct worker w = {.id = k, .samples = calloc((size_t)calls, sizeof(uint32_t))};
				char b;
				if (w.samples == NULL)
					die("calloc");
				close(gate[1]);
				for (long i = 0; i < warmup; i++)
					(void)one();
				if (read(gate[0], &b, 1) < 0)
					die("read gate");
				for (long i = 0; i < calls; i++)
					w.samples[i] = one();
				write_samples(k, w.samples, calls);
				_exit(0);
			}
		}
		close(gate[0]);
		close(gate[1]);
		int failed = 0, st;
		while (wait(&st) > 0)
			failed |= !WIFEXITED(st) || WEXITSTATUS(st) != 0;
		return failed;
	}

	struct worker *ws = calloc((size_t)nthreads, sizeof(*ws));
	if (ws == NULL)
		die("calloc");
	if (nthreads > 1)
		pthread_barrier_init(&barrier, NULL, (unsigned)nthreads);
	for (int k = 0; k < nthreads; k++) {
		ws[k].id = k;
		ws[k].samples = calloc((size_t)calls, sizeof(uint32_t));
		if (ws[k].samples == NULL)
			die("calloc");
	}
	if (nthreads == 1) {
		run(&ws[0]);
	} else {
		for (int k = 0; k < nthreads; k++)
			if ((errno = pthread_create(&ws[k].th, NULL, run, &ws[k])) != 0)
				die("pthread_create");
		for (int k = 0; k < nthreads; k++)
			pthread_join(ws[k].th, NULL);
	}
	for (int k = 0; k < nthreads; k++)
		write_samples(k, ws[k].samples, calls);
	return 0;
}
