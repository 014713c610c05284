/*
 * openclose.c — the shim benchmark's workload: one process repeatedly opens
 * and closes one warm (cached) file, the paper's experiment.
 *
 *   openclose PATH BATCHES BATCH_SIZE WARMUP CLOCK
 *
 * After WARMUP untimed pairs (enough to go once round the ring, so that
 * every page of it is mapped in this process) it times BATCHES batches of
 * BATCH_SIZE open+close pairs and prints one line per batch: "H <ns>" or
 * "D <ns>", the mean ns of one pair. Batches alternate between the hooked
 * open (H: the symbol the program would call, the shim's when it is
 * preloaded) and libc's own open found with dlopen("libc.so.6") (D: direct,
 * never traced), so the two are compared inside one process, batch by
 * batch, under the same cache and CPU conditions: on a busy machine that is
 * far steadier than comparing separate runs. CLOCK is "wall"
 * (CLOCK_MONOTONIC) or "cpu" (CLOCK_THREAD_CPUTIME_ID, which leaves out the
 * time other work preempted this thread). Driver: shimbench.
 */
#undef _FORTIFY_SOURCE
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static clockid_t clk = CLOCK_MONOTONIC;

static inline unsigned long long now_ns(void)
{
	struct timespec ts;
	clock_gettime(clk, &ts);
	return (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec;
}

int main(int argc, char **argv)
{
	if (argc != 6) {
		fprintf(stderr, "usage: openclose PATH BATCHES BATCH_SIZE WARMUP wall|cpu\n");
		return 2;
	}
	const char *path = argv[1];
	long batches = atol(argv[2]), size = atol(argv[3]), warmup = atol(argv[4]);
	if (batches <= 0 || size <= 0 || warmup < 0)
		return 2;
	if (strcmp(argv[5], "cpu") == 0)
		clk = CLOCK_THREAD_CPUTIME_ID;
	void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
	int (*direct)(const char *, int, ...) = libc ? (int (*)(const char *, int, ...))dlsym(libc, "open") : NULL;
	int (*hooked)(const char *, int, ...) = open;
	if (direct == NULL) {
		fprintf(stderr, "openclose: libc's open not found\n");
		return 1;
	}
	double *out = malloc(sizeof(double) * (size_t)batches);
	if (!out)
		return 1;
	for (long i = 0; i < warmup; i++) { /* warm the cache, the shim and the ring */
		int fd = open(path, O_RDONLY);
		if (fd < 0) {
			perror(path);
			return 1;
		}
		close(fd);
	}
	for (long b = 0; b < batches; b++) {
		int (*fn)(const char *, int, ...) = b % 2 ? direct : hooked;
		unsigned long long t0 = now_ns();
		for (long i = 0; i < size; i++)
			close(fn(path, O_RDONLY));
		out[b] = (double)(now_ns() - t0) / (double)size;
	}
	for (long b = 0; b < batches; b++)
		printf("%c %.1f\n", b % 2 ? 'D' : 'H', out[b]);
	return 0;
}
