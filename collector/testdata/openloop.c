/*
 * openloop.c — a traced producer at full speed for docs/bench.md: opens and
 * closes PATH N times as fast as it can (every open is one shim record).
 *
 *   cc -O2 -o openloop collector/testdata/openloop.c
 *   openloop PATH N
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: openloop PATH N\n");
		return 2;
	}
	long n = atol(argv[2]);
	for (long i = 0; i < n; i++) {
		int fd = open(argv[1], O_RDONLY);
		if (fd >= 0)
			close(fd);
	}
	return 0;
}
