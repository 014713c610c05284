/*
 * batchloop.h — what the shim benchmark's workloads (openclose.c,
 * statloop.c) share: their command line, the clock, libc's own copy of
 * the call under test, and the output shimbench reads.
 *
 *   WORKLOAD PATH BATCHES BATCH_SIZE WARMUP wall|cpu
 *
 * Batches alternate between the hooked call (H: the shim's when it is
 * preloaded) and libc's own found with dlopen("libc.so.6") (D: never
 * traced), so both are compared inside one process; each batch prints one
 * line, "H <ns>" or "D <ns>", the mean ns of one call.
 */
#ifndef RESTRACK_BATCHLOOP_H
#define RESTRACK_BATCHLOOP_H

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct batchloop {
	const char *path;
	long batches, size, warmup;
	clockid_t clk; /* CLOCK_MONOTONIC, or the thread's CPU time ("cpu") */
	double *out;   /* mean ns per call of each batch */
};

static inline unsigned long long batchloop_now(const struct batchloop *b)
{
	struct timespec ts;
	clock_gettime(b->clk, &ts);
	return (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec;
}

/* Parses the command line; 0, or the exit status on a usage error. */
static inline int batchloop_args(struct batchloop *b, int argc, char **argv, const char *name)
{
	if (argc != 6) {
		fprintf(stderr, "usage: %s PATH BATCHES BATCH_SIZE WARMUP wall|cpu\n", name);
		return 2;
	}
	b->path = argv[1];
	b->batches = atol(argv[2]);
	b->size = atol(argv[3]);
	b->warmup = atol(argv[4]);
	if (b->batches <= 0 || b->size <= 0 || b->warmup < 0)
		return 2;
	b->clk = strcmp(argv[5], "cpu") == 0 ? CLOCK_THREAD_CPUTIME_ID : CLOCK_MONOTONIC;
	b->out = malloc(sizeof(double) * (size_t)b->batches);
	return b->out ? 0 : 1;
}

/* libc's own definition of sym, past any preloaded one; NULL if none. */
static inline void *batchloop_libc(const char *sym)
{
	void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
	return libc ? dlsym(libc, sym) : NULL;
}

static inline void batchloop_print(const struct batchloop *b)
{
	for (long i = 0; i < b->batches; i++)
		printf("%c %.1f\n", i % 2 ? 'D' : 'H', b->out[i]);
}

#endif /* RESTRACK_BATCHLOOP_H */
