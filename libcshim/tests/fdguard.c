/*
 * fdguard.c — a program that does to its descriptors what daemons do, for
 * the shim's fd guard test (libcshim/shimtest/fdguard_test.go):
 *
 *   fdguard closefrom|close_range|close|dup2
 *
 * It closes every descriptor from 3 up (closefrom, close_range, or close()
 * one by one up to 1023), or dup2s stdout over every number from 3 to 1023;
 * then makes pipes until one end reaches fd 600 or above (where the shim's
 * FIFO descriptors live), opens /etc/hostname (a traced call: in FIFO mode
 * the shim writes one record) and reads every pipe back. It prints
 * "LEAKED N" when N bytes it never wrote appeared in its own pipes,
 * otherwise "CLEAN", and the result of each step it took.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	static int fds[1024][2];
	int n = 0, leaked = 0;
	const char *how = argc > 1 ? argv[1] : "closefrom";

	if (strcmp(how, "closefrom") == 0) {
		closefrom(3);
	} else if (strcmp(how, "close_range") == 0) {
		printf("close_range %d\n", close_range(3, ~0U, 0));
	} else if (strcmp(how, "close") == 0) {
		for (int fd = 3; fd < 1024; fd++)
			close(fd);
	} else if (strcmp(how, "dup2") == 0) {
		/* Take every number: the program's dup2 must win over ours. */
		int bad = 0;
		for (int fd = 3; fd < 1024; fd++)
			if (dup2(2, fd) != fd)
				bad++;
		printf("dup2 failures %d\n", bad);
		for (int fd = 3; fd < 1024; fd++)
			close(fd);
	} else {
		fprintf(stderr, "fdguard: unknown mode %s\n", how);
		return 2;
	}
	while (n < 1024) {
		if (pipe2(fds[n], O_NONBLOCK) != 0)
			break;
		n++;
		if (fds[n - 1][0] >= 600 || fds[n - 1][1] >= 600)
			break;
	}
	int fd = open("/etc/hostname", O_RDONLY);
	if (fd >= 0)
		close(fd);
	for (int i = 0; i < n; i++) {
		char buf[4096];
		ssize_t r;
		while ((r = read(fds[i][0], buf, sizeof(buf))) > 0)
			leaked += (int)r;
	}
	if (leaked)
		printf("LEAKED %d\n", leaked);
	else
		printf("CLEAN\n");
	return 0;
}
