/*
 * fiforeader.c — the paper's tracker as a process of its own, for the
 * benchmark's fifo-1cpu mode: it blocks in read(2) on the named pipe the
 * shim writes (RESTRACK_MODE=fifo) and takes one record per call — the
 * 64-byte header, then the strings its length announces — the
 * synchronous design the paper measured. Pinned to one CPU together with
 * the workload (-a), every write wakes it and it preempts the writer, as
 * on the paper's single-CPU machine.
 *
 * It opens the pipe read-write, so it never sees end-of-file when writers
 * come and go. On SIGTERM it prints how many records it read and exits.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

/* readn reads exactly n bytes; 0 on success, -1 when stopped or failed. */
static int readn(int fd, unsigned char *p, size_t n)
{
	while (n > 0) {
		ssize_t r = read(fd, p, n);
		if (r < 0 && errno == EINTR) {
			if (stop)
				return -1;
			continue;
		}
		if (r <= 0)
			return -1;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

int main(int argc, char **argv)
{
	unsigned char buf[4096];
	unsigned long long records = 0;
	int cpu = -1, c;

	while ((c = getopt(argc, argv, "a:")) != -1) {
		if (c != 'a') {
			fprintf(stderr, "usage: fiforeader [-a CPU] FIFO\n");
			return 2;
		}
		cpu = atoi(optarg);
	}
	if (optind != argc - 1) {
		fprintf(stderr, "usage: fiforeader [-a CPU] FIFO\n");
		return 2;
	}
	if (cpu >= 0) {
		cpu_set_t set;
		CPU_ZERO(&set);
		CPU_SET(cpu, &set);
		if (sched_setaffinity(0, sizeof(set), &set) != 0) {
			perror("fiforeader: sched_setaffinity");
			return 1;
		}
	}
	struct sigaction sa = {.sa_handler = on_term}; /* no SA_RESTART: stop a blocked read */
	sigaction(SIGTERM, &sa, NULL);
	int fd = open(argv[optind], O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "fiforeader: open %s: %s\n", argv[optind], strerror(errno));
		return 1;
	}
	/* Ready: the harness waits for this line before starting writers. */
	printf("ready\n");
	fflush(stdout);
	while (!stop) {
		if (readn(fd, buf, 64) != 0)
			break;
		uint32_t len;
		memcpy(&len, buf + 8, sizeof(len)); /* the record's length (ring_abi.h) */
		if (len < 64 + 3 || len > sizeof(buf)) {
			fprintf(stderr, "fiforeader: corrupt record length %u\n", len);
			return 1;
		}
		if (readn(fd, buf + 64, len - 64) != 0)
			break;
		records++;
	}
	printf("%llu\n", records);
	return 0;
}
