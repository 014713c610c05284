/*
 * setuid_probe.c — a setuid-root program for the host tracing test
 * (cmd/restrack/host_test.go): reads the file it is given and says which
 * uids it ran as, so the test can check it ran exactly as without the
 * shim, and that its open was recorded as the uid the collector verified.
 */
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	char buf[256];
	ssize_t n = -1;
	int fd = argc > 1 ? open(argv[1], O_RDONLY) : -1;
	if (fd >= 0) {
		n = read(fd, buf, sizeof(buf));
		close(fd);
	}
	printf("ruid=%d euid=%d read=%zd\n", (int)getuid(), (int)geteuid(), n);
	return n > 0 ? 0 : 1;
}
