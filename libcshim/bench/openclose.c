/*
 * openclose.c — the shim benchmark's workload: one process repeatedly opens
 * and closes one warm (cached) file, the paper's experiment. Usage:
 * openclose PATH BATCHES BATCH_SIZE [WARMUP]. After WARMUP (default 2000)
 * untimed pairs — enough to go once round the ring, so that every page of
 * it is mapped in this process — it times BATCHES
 * batches of BATCH_SIZE open+close pairs with CLOCK_MONOTONIC and prints
 * one line per batch: the mean ns of one open+close in it. The driver
 * (shimbench) runs it untraced, with the ring and with the FIFO, interleaved,
 * and reports median and p99 over batches. It opens with plain open(2) and
 * no fortify, so the hooked entry point is "open".
 */
#undef _FORTIFY_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static inline unsigned long long now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec;
}

int main(int argc, char **argv)
{
	if (argc != 4 && argc != 5) {
		fprintf(stderr, "usage: openclose PATH BATCHES BATCH_SIZE [WARMUP]\n");
		return 2;
	}
	const char *path = argv[1];
	long batches = atol(argv[2]), size = atol(argv[3]), warmup = argc == 5 ? atol(argv[4]) : 2000;
	if (batches <= 0 || size <= 0)
		return 2;
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
		unsigned long long t0 = now_ns();
		for (long i = 0; i < size; i++)
			close(open(path, O_RDONLY));
		out[b] = (double)(now_ns() - t0) / (double)size;
	}
	for (long b = 0; b < batches; b++)
		printf("%.1f\n", out[b]);
	return 0;
}
