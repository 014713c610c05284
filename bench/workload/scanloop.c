/*
 * scanloop.c — a many-distinct-files workload: opens N paths that differ
 * in every call (DIR/f0, DIR/f1, …), as a build, a package install or a
 * backup scan touches each file once. Every open is a new (process, file)
 * pair for the collector: the store's hardest case. The files need not
 * exist; a failed open is recorded like any other.
 *
 *   scanloop DIR N
 */
#undef _FORTIFY_SOURCE
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: scanloop DIR N\n");
		return 2;
	}
	long n = atol(argv[2]);
	char path[4096];
	for (long i = 0; i < n; i++) {
		snprintf(path, sizeof path, "%s/f%ld", argv[1], i);
		int fd = open(path, O_RDONLY);
		if (fd >= 0)
			close(fd);
	}
	return 0;
}
