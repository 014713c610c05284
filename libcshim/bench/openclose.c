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
#include <fcntl.h>
#include <unistd.h>

#include "batchloop.h"

int main(int argc, char **argv)
{
	struct batchloop bl;
	int st = batchloop_args(&bl, argc, argv, "openclose");
	if (st != 0)
		return st;
	int (*direct)(const char *, int, ...) = (int (*)(const char *, int, ...))batchloop_libc("open");
	int (*hooked)(const char *, int, ...) = open;
	if (direct == NULL) {
		fprintf(stderr, "openclose: libc's open not found\n");
		return 1;
	}
	for (long i = 0; i < bl.warmup; i++) { /* warm the cache, the shim and the ring */
		int fd = open(bl.path, O_RDONLY);
		if (fd < 0) {
			perror(bl.path);
			return 1;
		}
		close(fd);
	}
	for (long b = 0; b < bl.batches; b++) {
		int (*fn)(const char *, int, ...) = b % 2 ? direct : hooked;
		unsigned long long t0 = batchloop_now(&bl);
		for (long i = 0; i < bl.size; i++)
			close(fn(bl.path, O_RDONLY));
		bl.out[b] = (double)(batchloop_now(&bl) - t0) / (double)bl.size;
	}
	batchloop_print(&bl);
	return 0;
}
