/*
 * fork_identity.c — forks N children; each prints its pid and the start
 * time /proc/self/stat gives it (field 22, clock ticks), for the test that
 * a forked child's records carry exactly that start time although the shim
 * computes it from the clock around fork (libcshim/shimtest/identity_test.go).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static unsigned long long stat_start(void)
{
	char buf[1024];
	FILE *f = fopen("/proc/self/stat", "r");
	size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
	if (f)
		fclose(f);
	buf[n] = 0;
	char *p = strrchr(buf, ')');
	if (!p)
		return 0;
	/* p+2 is field 3; field 22 is 19 fields further. */
	p += 2;
	for (int i = 0; i < 19 && p; i++) {
		p = strchr(p, ' ');
		if (p)
			p++;
	}
	return p ? strtoull(p, NULL, 10) : 0;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 20;
	for (int i = 0; i < n; i++) {
		pid_t pid = fork();
		if (pid == 0) {
			printf("CHILD %d %llu\n", (int)getpid(), stat_start());
			fflush(stdout);
			_exit(0);
		}
		waitpid(pid, NULL, 0);
	}
	return 0;
}
