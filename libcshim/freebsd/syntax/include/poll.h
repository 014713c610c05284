/* Stand-in for FreeBSD's <poll.h>, for `make shim-freebsd-syntax` only: the
 * declarations restrack's FreeBSD code uses, written from FreeBSD's manual
 * pages; numeric values are placeholders. Not FreeBSD's header. */
#pragma once
struct pollfd {
	int fd;
	short events;
	short revents;
};
#define POLLOUT 0x0004
