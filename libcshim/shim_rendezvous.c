/*
 * shim_rendezvous.c — the shim's side of the rendezvous with the collector
 * (rt_rendezvous.h): connect to the well-known socket, say hello, receive
 * the ring's descriptor.
 *
 * Producer: the shim's initialisation, once per process image. Consumer:
 * the collector's rendezvous server. Every step is a raw system call (no
 * libc function that a hook or a seccomp-minded libc wrapper could add, no
 * cancellation point) on a non-blocking socket, bounded by
 * RT_RDV_TIMEOUT_MS in all: a collector that is gone, stopped or slow
 * leaves the process untraced, never stuck. The socket is closed before
 * returning; only the ring's fd (close-on-exec) goes back to the caller.
 */
#undef _FORTIFY_SOURCE
#include "shim.h"

#ifdef __linux__
#include <poll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>

#include "rt_rendezvous.h"

static uint64_t rt_rdv_now_ms(void)
{
	struct timespec ts;
	rt_sys2(SYS_clock_gettime, CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Takes the one descriptor an SCM_RIGHTS message carried; closes any
 * others (a well-behaved collector sends exactly one). */
static int rt_rdv_take_fd(struct msghdr *msg)
{
	int fd = -1;
	if (msg->msg_controllen < sizeof(struct cmsghdr))
		return -1;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c != NULL;) {
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS && c->cmsg_len >= CMSG_LEN(sizeof(int))) {
			size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			int fds[4];
			if (n > 4)
				n = 4;
			__builtin_memcpy(fds, CMSG_DATA(c), n * sizeof(int));
			for (size_t i = 0; i < n; i++) {
				if (fd < 0)
					fd = fds[i];
				else
					rt_sys1(SYS_close, fds[i]);
			}
		}
		/* CMSG_NXTHDR is a libc function in glibc: step by hand. */
		size_t step = (c->cmsg_len + sizeof(size_t) - 1) & ~(sizeof(size_t) - 1);
		char *next = (char *)c + step;
		if (step == 0 || next + sizeof(struct cmsghdr) > (char *)msg->msg_control + msg->msg_controllen)
			break;
		c = (struct cmsghdr *)next;
	}
	return fd;
}

int rt_rdv_register(const char *path, int secure, struct rt_rdv_result *res)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct rt_rdv_hello hello = {.magic = RT_RDV_MAGIC, .version = RT_RDV_VERSION,
				     .pid = (int32_t)rt_sys0(SYS_getpid), .flags = secure ? RT_RDV_HELLO_SECURE : 0};
	union {
		struct rt_rdv_reply r;
		char b[sizeof(struct rt_rdv_reply) + RT_RDV_TEXT_MAX];
	} in;
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(4 * sizeof(int))];
	} ctl;
	size_t got = 0, plen = rt_strlen(path), need = sizeof(struct rt_rdv_reply);
	uint64_t deadline = rt_rdv_now_ms() + RT_RDV_TIMEOUT_MS;
	int fd = -1;
	long s, r;

	res->why = NULL;
	res->err = 0;
	if (plen == 0 || plen >= sizeof(sa.sun_path)) {
		res->why = "the socket path is empty or too long";
		return -1;
	}
	__builtin_memcpy(sa.sun_path, path, plen + 1);
	s = rt_sys3(SYS_socket, AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (s < 0) {
		res->why = "socket";
		res->err = (int)-s;
		return -1;
	}
	r = rt_sys3(SYS_connect, s, &sa, sizeof(sa));
	if (r < 0) {
		/* A unix socket's non-blocking connect fails with EAGAIN when
		 * the collector's backlog is full: then we do not wait. */
		res->why = r == -ENOENT || r == -ECONNREFUSED ? "no collector is listening at the socket" : "connect";
		res->err = (int)-r;
		goto out;
	}
	r = rt_sys(SYS_sendto, s, (long)&hello, sizeof(hello), MSG_NOSIGNAL, 0, 0);
	if (r != (long)sizeof(hello)) {
		res->why = "send hello";
		res->err = r < 0 ? (int)-r : EIO;
		goto out;
	}
	while (got < need) {
		uint64_t now = rt_rdv_now_ms();
		struct pollfd pfd = {.fd = (int)s, .events = POLLIN};
		struct timespec ts;
		if (now >= deadline) {
			res->why = "the collector did not answer in time";
			res->err = ETIMEDOUT;
			goto out;
		}
		ts.tv_sec = (time_t)((deadline - now) / 1000u);
		ts.tv_nsec = (long)((deadline - now) % 1000u) * 1000000L;
		r = rt_sys4(SYS_ppoll, &pfd, 1, &ts, NULL);
		if (r == -EINTR || r == 0)
			continue;
		if (r < 0) {
			res->why = "poll";
			res->err = (int)-r;
			goto out;
		}
		struct iovec iov = {.iov_base = in.b + got, .iov_len = sizeof(in.b) - got};
		struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
		if (fd < 0) {
			msg.msg_control = ctl.b;
			msg.msg_controllen = sizeof(ctl.b);
		}
		r = rt_sys3(SYS_recvmsg, s, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
		if (r == -EAGAIN || r == -EINTR)
			continue;
		if (r <= 0) {
			res->why = "the collector hung up";
			res->err = r < 0 ? (int)-r : EPIPE;
			goto out;
		}
		if (fd < 0 && msg.msg_controllen > 0)
			fd = rt_rdv_take_fd(&msg);
		got += (size_t)r;
		if (got >= sizeof(struct rt_rdv_reply)) {
			if (in.r.magic != RT_RDV_MAGIC || in.r.text_len > RT_RDV_TEXT_MAX) {
				res->why = "the socket's answer is not a restrack collector's";
				res->err = EPROTO;
				goto out;
			}
			need = sizeof(struct rt_rdv_reply) + in.r.text_len;
		}
	}
	res->status = in.r.status;
	res->uid = in.r.uid;
	res->start_ns = in.r.start_ns;
	res->text_len = in.r.text_len;
	__builtin_memcpy(res->text, in.b + sizeof(struct rt_rdv_reply), in.r.text_len);
	res->text[in.r.text_len] = 0;
	if (in.r.status != 0) {
		res->why = "the collector refused";
		res->err = in.r.status;
	} else if (fd < 0) {
		res->why = "the collector's answer carried no ring";
		res->err = EPROTO;
	} else {
		rt_sys1(SYS_close, s);
		return fd;
	}
out:
	if (fd >= 0)
		rt_sys1(SYS_close, fd);
	rt_sys1(SYS_close, s);
	return -1;
}
#endif /* __linux__ */
