/*
 * net_probe.c — makes the network calls the shim records (shim_hooks_net.c)
 * for libcshim/shimtest/net_test.go. Usage: net_probe CASE. Every port is
 * chosen by the kernel (bind to port 0). It prints "CALL <op> <result>
 * errno=<e>" per call whose record the test matches, "EP <name> <endpoint>"
 * for the endpoints it expects, and a summary line the test compares with
 * an untraced run. Exit status 0 unless the program itself misbehaves.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what)
{
	fprintf(stderr, "net_probe: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void call(const char *op, long ret)
{
	printf("CALL %s %ld errno=%d\n", op, ret < 0 ? -(long)errno : ret, ret < 0 ? errno : 0);
}

/* A listening socket on addr (port 0), its port in *port. */
static int listener(int family, const char *addr, int *port)
{
	struct sockaddr_storage ss;
	socklen_t l;
	memset(&ss, 0, sizeof(ss));
	if (family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;
		in->sin_family = AF_INET;
		inet_pton(AF_INET, addr, &in->sin_addr);
		l = sizeof(*in);
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
		in6->sin6_family = AF_INET6;
		inet_pton(AF_INET6, addr, &in6->sin6_addr);
		l = sizeof(*in6);
	}
	int fd = socket(family, SOCK_STREAM, 0);
	if (fd < 0)
		die("socket");
	int r = bind(fd, (struct sockaddr *)&ss, l);
	call("bind", r);
	r = listen(fd, 64);
	call("listen", r);
	l = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &l) < 0)
		die("getsockname");
	*port = ntohs(family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port : ((struct sockaddr_in6 *)&ss)->sin6_port);
	return fd;
}

static socklen_t target(int family, const char *addr, int port, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)ss;
		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)port);
		inet_pton(AF_INET, addr, &in->sin_addr);
		return sizeof(*in);
	}
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
	in6->sin6_family = AF_INET6;
	in6->sin6_port = htons((uint16_t)port);
	inet_pton(AF_INET6, addr, &in6->sin6_addr);
	return sizeof(*in6);
}

/* A TCP server on bindaddr, and a client connecting to connaddr twice. */
static void tcp(int family, const char *bindaddr, const char *connaddr, int cfamily)
{
	int port, lfd = listener(family, bindaddr, &port);
	printf("PORT %d\n", port);
	for (int i = 0; i < 2; i++) {
		struct sockaddr_storage ss;
		socklen_t l = target(cfamily, connaddr, port, &ss);
		int c = socket(cfamily, SOCK_STREAM, 0);
		int r = connect(c, (struct sockaddr *)&ss, l);
		call("connect", r);
		struct sockaddr_storage peer;
		socklen_t pl = sizeof(peer);
		int a = i == 0 ? accept(lfd, (struct sockaddr *)&peer, &pl) : accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		printf("ACCEPTED %d\n", a >= 0);
		close(a);
		close(c);
	}
	close(lfd);
	printf("DONE tcp\n");
}

/* Two UDP sockets: a sends 5 datagrams to b, 3 with sendmsg to c. */
static void udp(void)
{
	int fds[3], ports[3];
	for (int i = 0; i < 3; i++) {
		struct sockaddr_storage ss;
		socklen_t l = target(AF_INET, "127.0.0.1", 0, &ss);
		fds[i] = socket(AF_INET, SOCK_DGRAM, 0);
		if (fds[i] < 0 || bind(fds[i], (struct sockaddr *)&ss, l) < 0)
			die("udp bind");
		l = sizeof(ss);
		getsockname(fds[i], (struct sockaddr *)&ss, &l);
		ports[i] = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	}
	printf("PORTS %d %d %d\n", ports[0], ports[1], ports[2]);
	struct sockaddr_storage to;
	socklen_t tl = target(AF_INET, "127.0.0.1", ports[1], &to);
	long sent = 0;
	for (int i = 0; i < 5; i++)
		sent += sendto(fds[0], "x", 1, 0, (struct sockaddr *)&to, tl);
	tl = target(AF_INET, "127.0.0.1", ports[2], &to);
	for (int i = 0; i < 3; i++) {
		struct iovec iov = {.iov_base = "y", .iov_len = 1};
		struct msghdr m = {.msg_name = &to, .msg_namelen = tl, .msg_iov = &iov, .msg_iovlen = 1};
		sent += sendmsg(fds[0], &m, 0);
	}
	char buf[4];
	int got = 0;
	for (int i = 0; i < 5; i++)
		got += recv(fds[1], buf, sizeof(buf), 0) == 1;
	for (int i = 0; i < 3; i++)
		got += recv(fds[2], buf, sizeof(buf), 0) == 1;
	printf("UDP sent %ld received %d\n", sent, got);
}

/* A non-blocking connect: EINPROGRESS, then it completes. */
static void nonblock(void)
{
	int port, lfd = listener(AF_INET, "127.0.0.1", &port);
	struct sockaddr_storage ss;
	socklen_t l = target(AF_INET, "127.0.0.1", port, &ss);
	int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	errno = 0;
	int r = connect(c, (struct sockaddr *)&ss, l);
	int e = errno;
	call("connect", r);
	printf("connect %d errno %s\n", r, e == EINPROGRESS ? "EINPROGRESS" : e == 0 ? "0" : strerror(e));
	struct pollfd p = {.fd = c, .events = POLLOUT};
	poll(&p, 1, 5000);
	int soerr = -1;
	socklen_t sl = sizeof(soerr);
	getsockopt(c, SOL_SOCKET, SO_ERROR, &soerr, &sl);
	printf("completed SO_ERROR %d\n", soerr);
	close(c);
	close(lfd);
}

static volatile sig_atomic_t ticks;
static int tick_udp = -1;
static struct sockaddr_storage tick_to;
static socklen_t tick_tl;

/* The handler itself calls a hooked function: a datagram per tick. */
static void on_tick(int sig)
{
	(void)sig;
	int saved = errno;
	ticks++;
	if (tick_udp >= 0)
		sendto(tick_udp, "t", 1, MSG_DONTWAIT, (struct sockaddr *)&tick_to, tick_tl);
	errno = saved;
}

/* accept4 on a blocking socket while a 100 µs timer interrupts it: every
 * EINTR must reach the program as -1/EINTR, every connection be accepted. */
static void accept4_signals(int n)
{
	int port, lfd = listener(AF_INET, "127.0.0.1", &port);
	struct sockaddr_storage ss;
	int sink = socket(AF_INET, SOCK_DGRAM, 0);
	socklen_t sl = target(AF_INET, "127.0.0.1", 0, &ss);
	bind(sink, (struct sockaddr *)&ss, sl);
	sl = sizeof(ss);
	getsockname(sink, (struct sockaddr *)&ss, &sl);
	tick_to = ss;
	tick_tl = sl;
	tick_udp = socket(AF_INET, SOCK_DGRAM, 0);
	fflush(stdout);
	pid_t child = fork();
	if (child == 0) {
		for (int i = 0; i < n; i++) {
			struct sockaddr_storage t;
			socklen_t l = target(AF_INET, "127.0.0.1", port, &t);
			int c = socket(AF_INET, SOCK_STREAM, 0);
			while (connect(c, (struct sockaddr *)&t, l) < 0 && errno == EINTR)
				;
			char b;
			while (read(c, &b, 1) < 0 && errno == EINTR)
				;
			close(c);
		}
		_exit(0);
	}
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_tick; /* no SA_RESTART: accept4 returns EINTR */
	sigaction(SIGALRM, &sa, NULL);
	struct itimerval it = {.it_interval = {0, 100}, .it_value = {0, 100}};
	setitimer(ITIMER_REAL, &it, NULL);
	int accepted = 0, eintr = 0, other = 0;
	while (accepted < n) {
		struct sockaddr_in6 peer;
		socklen_t pl = sizeof(peer);
		errno = 0;
		int a = accept4(lfd, (struct sockaddr *)&peer, &pl, SOCK_CLOEXEC);
		if (a >= 0) {
			accepted++;
			while (write(a, "k", 1) < 0 && errno == EINTR)
				;
			close(a);
		} else if (errno == EINTR) {
			eintr++;
		} else {
			other++;
		}
	}
	struct itimerval off = {{0, 0}, {0, 0}};
	setitimer(ITIMER_REAL, &off, NULL);
	int st;
	while (waitpid(child, &st, 0) < 0 && errno == EINTR)
		;
	printf("ACCEPTED %d OTHER %d CHILD %d\n", accepted, other, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	fprintf(stderr, "eintr %d ticks %d\n", eintr, (int)ticks);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* The per-datagram cost: n sendto calls to one peer, in batches of 1000;
 * prints the median and the mean of the batches' ns per call. */
static void sendto_loop(int n)
{
	int rx = socket(AF_INET, SOCK_DGRAM, 0), tx = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_storage ss;
	socklen_t l = target(AF_INET, "127.0.0.1", 0, &ss);
	if (bind(rx, (struct sockaddr *)&ss, l) < 0)
		die("bind");
	l = sizeof(ss);
	getsockname(rx, (struct sockaddr *)&ss, &l);
	int rcv = 1 << 20;
	setsockopt(rx, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
	int batches = n / 1000;
	if (batches < 1)
		batches = 1;
	double *per = calloc((size_t)batches, sizeof(double)), sum = 0;
	char buf[64];
	for (int b = 0; b < batches; b++) {
		struct timespec t0, t1;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		for (int i = 0; i < 1000; i++)
			sendto(tx, "x", 1, MSG_DONTWAIT, (struct sockaddr *)&ss, l);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		while (recv(rx, buf, sizeof(buf), MSG_DONTWAIT) > 0)
			;
		per[b] = ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / 1000.0;
		sum += per[b];
	}
	qsort(per, (size_t)batches, sizeof(double), cmp_double);
	printf("sendto ns/call median %.1f mean %.1f batches %d\n", per[batches / 2], sum / batches, batches);
	free(per);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: net_probe tcp4|tcp6|wildcard|udp|nonblock|accept4-signals [N]|sendto-loop [N]\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	const char *c = argv[1];
	if (strcmp(c, "tcp4") == 0)
		tcp(AF_INET, "127.0.0.1", "127.0.0.1", AF_INET);
	else if (strcmp(c, "tcp6") == 0)
		tcp(AF_INET6, "::1", "::1", AF_INET6);
	else if (strcmp(c, "wildcard") == 0)
		tcp(AF_INET, "0.0.0.0", "127.0.0.1", AF_INET);
	else if (strcmp(c, "udp") == 0)
		udp();
	else if (strcmp(c, "nonblock") == 0)
		nonblock();
	else if (strcmp(c, "sendto-loop") == 0)
		sendto_loop(argc > 2 ? atoi(argv[2]) : 200000);
	else if (strcmp(c, "accept4-signals") == 0)
		accept4_signals(argc > 2 ? atoi(argv[2]) : 200);
	else {
		fprintf(stderr, "net_probe: unknown case %s\n", c);
		return 2;
	}
	return 0;
}
