/*
 * statloop.c — the lookup benchmark's workload: one process stats paths in
 * a loop, the way python stats sys.path entries and git its tracked files.
 * Same command line and output as openclose.c, so shimbench drives it:
 *
 *   go run ./libcshim/bench/shimbench -src libcshim/bench/statloop.c
 *
 *   statloop PATH BATCHES BATCH_SIZE WARMUP CLOCK
 *
 * Batches alternate between the hooked stat (H) and libc's own (D), inside
 * one process. STATLOOP_PATHS=N (default 1) cycles through N names: PATH
 * itself, then PATH-1 … PATH-(N-1), which do not exist. With 1 every call
 * repeats the same lookup, which the shim records once a second; with a
 * large N (say 1000000) every call is a lookup the thread has not seen
 * this second, i.e. one record each: the worst case.
 */
#undef _FORTIFY_SOURCE
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

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
		fprintf(stderr, "usage: statloop PATH BATCHES BATCH_SIZE WARMUP wall|cpu\n");
		return 2;
	}
	const char *path = argv[1];
	long batches = atol(argv[2]), size = atol(argv[3]), warmup = atol(argv[4]);
	const char *np = getenv("STATLOOP_PATHS");
	long npaths = np ? atol(np) : 1;
	if (batches <= 0 || size <= 0 || warmup < 0 || npaths <= 0)
		return 2;
	if (strcmp(argv[5], "cpu") == 0)
		clk = CLOCK_THREAD_CPUTIME_ID;
	void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
	int (*direct)(const char *, struct stat *) = libc ? (int (*)(const char *, struct stat *))dlsym(libc, "stat") : NULL;
	int (*hooked)(const char *, struct stat *) = stat;
	if (direct == NULL) {
		fprintf(stderr, "statloop: libc's stat not found\n");
		return 1;
	}
	/* Names are made before timing: the loop measures stat alone. */
	long nnames = npaths < 4096 ? npaths : 4096;
	size_t plen = strlen(path);
	char *names = malloc((size_t)nnames * (plen + 24));
	double *out = malloc(sizeof(double) * (size_t)batches);
	if (!names || !out)
		return 1;
	for (long i = 0; i < nnames; i++)
		snprintf(names + (size_t)i * (plen + 24), plen + 24, i ? "%s-%ld" : "%s", path, i);
	struct stat st;
	long k = 0;
	for (long i = 0; i < warmup; i++)
		hooked(path, &st);
	for (long b = 0; b < batches; b++) {
		int (*fn)(const char *, struct stat *) = b % 2 ? direct : hooked;
		unsigned long long t0 = now_ns();
		for (long i = 0; i < size; i++) {
			/* Beyond 4096 names, each one is made fresh: a suffix
			 * counter never repeats within a run. */
			if (npaths <= 4096) {
				fn(names + (size_t)(k % nnames) * (plen + 24), &st);
			} else {
				char *n = names; /* slot 0 reused as scratch */
				snprintf(n + plen, 24, "-%ld", k + 1);
				fn(n, &st);
			}
			k++;
		}
		out[b] = (double)(now_ns() - t0) / (double)size;
	}
	for (long b = 0; b < batches; b++)
		printf("%c %.1f\n", b % 2 ? 'D' : 'H', out[b]);
	return 0;
}
