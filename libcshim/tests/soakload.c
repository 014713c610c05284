/*
 * soakload.c — one traced "service" of `make soak` (scripts/soak.sh):
 *
 *   soakload TAG RATE SECONDS
 *
 * For SECONDS it opens RATE distinct paths a second (/nonexistent-soak/
 * TAG/N, which fail with ENOENT: each is still one record, and the store
 * makes one file row per distinct path), and every 50th open forks and
 * execs /bin/true (a process start with a lent ring, a fork, an exit). At
 * the end it prints "produced N": the opens it made, which the soak
 * compares with what the store received and what was counted as dropped.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: soakload TAG RATE SECONDS\n");
		return 2;
	}
	const char *tag = argv[1];
	long rate = atol(argv[2]);
	double secs = atof(argv[3]), t0 = now();
	unsigned long long n = 0;
	char path[256];
	if (rate <= 0 || secs <= 0)
		return 2;
	while (now() - t0 < secs) {
		/* Paced to RATE a second: sleep until the next open is due. */
		double due = t0 + (double)n / (double)rate, wait = due - now();
		if (wait > 0) {
			struct timespec ts = {(time_t)wait, (long)((wait - (double)(time_t)wait) * 1e9)};
			nanosleep(&ts, NULL);
		}
		snprintf(path, sizeof(path), "/nonexistent-soak/%s/%llu", tag, n);
		int fd = open(path, O_RDONLY);
		if (fd >= 0)
			close(fd);
		n++;
		if (n % 50 == 0) {
			pid_t pid = fork();
			if (pid == 0) {
				execl("/bin/true", "true", (char *)NULL);
				_exit(127);
			}
			if (pid > 0)
				waitpid(pid, NULL, 0);
		}
	}
	printf("produced %llu\n", n);
	return 0;
}
