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
#include <sys/stat.h>

#include "batchloop.h"

int main(int argc, char **argv)
{
	struct batchloop bl;
	int st = batchloop_args(&bl, argc, argv, "statloop");
	if (st != 0)
		return st;
	const char *np = getenv("STATLOOP_PATHS");
	long npaths = np ? atol(np) : 1;
	if (npaths <= 0)
		return 2;
	int (*direct)(const char *, struct stat *) = (int (*)(const char *, struct stat *))batchloop_libc("stat");
	int (*hooked)(const char *, struct stat *) = stat;
	if (direct == NULL) {
		fprintf(stderr, "statloop: libc's stat not found\n");
		return 1;
	}
	/* Names are made before timing: the loop measures stat alone. */
	long nnames = npaths < 4096 ? npaths : 4096;
	size_t plen = strlen(bl.path);
	char *names = malloc((size_t)nnames * (plen + 24));
	if (!names)
		return 1;
	for (long i = 0; i < nnames; i++)
		snprintf(names + (size_t)i * (plen + 24), plen + 24, i ? "%s-%ld" : "%s", bl.path, i);
	struct stat sb;
	long k = 0;
	for (long i = 0; i < bl.warmup; i++)
		hooked(bl.path, &sb);
	for (long b = 0; b < bl.batches; b++) {
		int (*fn)(const char *, struct stat *) = b % 2 ? direct : hooked;
		unsigned long long t0 = batchloop_now(&bl);
		for (long i = 0; i < bl.size; i++) {
			/* Beyond 4096 names, each one is made fresh: a suffix
			 * counter never repeats within a run. */
			if (npaths <= 4096) {
				fn(names + (size_t)(k % nnames) * (plen + 24), &sb);
			} else {
				snprintf(names + plen, 24, "-%ld", k + 1); /* slot 0 as scratch */
				fn(names, &sb);
			}
			k++;
		}
		bl.out[b] = (double)(batchloop_now(&bl) - t0) / (double)bl.size;
	}
	batchloop_print(&bl);
	return 0;
}
