/*
 * ring_stress.c — drives ring_producer.c from many processes and threads
 * for ring/stress_test.go, which consumes with the Go reader and checks
 * every record.
 *
 *   ring_stress stress RING NPROCS NTHREADS NRECORDS
 *     Each record: pid = process index, tid = thread index, result = sequence
 *     number, str1 = a 64-byte path naming the three. Prints one line per
 *     process: "proc I appended A dropped D".
 *   ring_stress park RING NBEFORE
 *     Appends NBEFORE records, then reserves one more and stops before
 *     publishing it (prints "parked POS" and waits to be killed).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../ring_producer.h"

static struct rt_producer prod;
static long nrecords;
static int proc_index;

struct counts {
	long appended, dropped;
};

static void *thread_main(void *arg)
{
	int thread_index = (int)(long)arg;
	struct counts *c = calloc(1, sizeof(*c));
	char path[65];
	struct rt_event ev = {0};

	ev.type = RT_TYPE_EVENT;
	ev.access = RT_ACCESS_READ;
	ev.op = RT_OP_OPENAT;
	ev.pid = proc_index;
	ev.tid = thread_index;
	for (long i = 0; i < nrecords; i++) {
		int n = snprintf(path, sizeof(path), "/stress/p%03d/t%03d/%020ld/", proc_index, thread_index, i);
		memset(path + n, 'x', 64 - n);
		ev.result = (int32_t)i;
		ev.str[0] = path;
		ev.len[0] = 64;
		switch (rt_producer_append(&prod, &ev)) {
		case RT_APPENDED:
			c->appended++;
			break;
		case RT_DROPPED_FULL:
			c->dropped++;
			break;
		default:
			fprintf(stderr, "unexpected append result\n");
			exit(3);
		}
	}
	return c;
}

static int attach(const char *ring)
{
	int fd = open(ring, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		perror(ring);
		return -1;
	}
	int rc = rt_producer_attach(&prod, fd);
	close(fd);
	if (rc != 0) {
		fprintf(stderr, "attach %s: %d\n", ring, rc);
		return -1;
	}
	return 0;
}

static int stress(const char *ring, int nprocs, int nthreads)
{
	for (int p = 0; p < nprocs; p++) {
		pid_t pid = fork();
		if (pid < 0) {
			perror("fork");
			return 1;
		}
		if (pid > 0)
			continue;
		proc_index = p;
		if (attach(ring) != 0)
			_exit(2);
		pthread_t th[256];
		long appended = 0, dropped = 0;
		for (int t = 0; t < nthreads; t++)
			pthread_create(&th[t], NULL, thread_main, (void *)(long)t);
		for (int t = 0; t < nthreads; t++) {
			struct counts *c;
			pthread_join(th[t], (void **)&c);
			appended += c->appended;
			dropped += c->dropped;
		}
		printf("proc %d appended %ld dropped %ld\n", p, appended, dropped);
		fflush(stdout);
		_exit(0);
	}
	int status, failed = 0;
	while (wait(&status) > 0)
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			failed = 1;
	return failed;
}

static void park_here(uint64_t pos, uint32_t nslots)
{
	printf("parked %llu %u\n", (unsigned long long)pos, nslots);
	fflush(stdout);
	for (;;)
		pause();
}

int main(int argc, char **argv)
{
	if (argc == 6 && strcmp(argv[1], "stress") == 0) {
		nrecords = atol(argv[5]);
		return stress(argv[2], atoi(argv[3]), atoi(argv[4]));
	}
	if (argc == 4 && strcmp(argv[1], "park") == 0) {
		if (attach(argv[2]) != 0)
			return 2;
		nrecords = atol(argv[3]);
		proc_index = 999;
		struct counts *c = thread_main((void *)0L);
		printf("appended %ld\n", c->appended);
		fflush(stdout);
#ifdef RT_TEST_HOOKS
		rt_test_after_reserve = park_here;
#else
		(void)park_here;
		fprintf(stderr, "built without RT_TEST_HOOKS\n");
		return 2;
#endif
		struct rt_event ev = {.type = RT_TYPE_EVENT, .op = RT_OP_OPEN, .str = {"/parked"}, .len = {7}};
		rt_producer_append(&prod, &ev);
		return 1; /* unreachable: parked */
	}
	fprintf(stderr, "usage: ring_stress stress RING NPROCS NTHREADS NRECORDS | park RING NBEFORE\n");
	return 2;
}
