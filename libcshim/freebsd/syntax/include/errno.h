/* Stand-in for FreeBSD's <errno.h>, for `make shim-freebsd-syntax` only: the
 * declarations restrack's FreeBSD code uses, written from FreeBSD's manual
 * pages; numeric values are placeholders. Not FreeBSD's header. */
#pragma once
int *__error(void);
#define errno (*__error())
#define EINTR 4
#define ENXIO 6
#define EBADF 9
#define ENOMEM 12
#define EFAULT 14
#define EINVAL 22
#define EAGAIN 35
#define ENAMETOOLONG 63
#define ENOSYS 78
