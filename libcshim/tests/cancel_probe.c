/*
 * cancel_probe.c — a thread with a pending cancellation makes one traced
 * call (mkdir DIR) while the ring is full, for the shim test that no hook
 * adds a cancellation point (libcshim/shimtest/harm_test.go). The call
 * must return (the directory made, errno as the call left it); only the
 * program's own pthread_testcancel afterwards may act on the request.
 * Prints "RETURNED <result> errno=<errno>" from inside the thread, then
 * "CANCELLED" or "NOT CANCELLED" from main.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/stat.h>

static const char *dir;

static void *worker(void *arg)
{
	(void)arg;
	pthread_cancel(pthread_self()); /* pending: deferred until a cancellation point */
	errno = 4242;
	int r = mkdir(dir, 0755);
	int e = errno;
	printf("RETURNED %d errno=%d\n", r, e);
	fflush(stdout);
	pthread_testcancel();
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t t;
	void *res;
	if (argc != 2)
		return 2;
	dir = argv[1];
	pthread_create(&t, NULL, worker, NULL);
	pthread_join(t, &res);
	printf("%s\n", res == PTHREAD_CANCELED ? "CANCELLED" : "NOT CANCELLED");
	return 0;
}
