/* Stand-in for FreeBSD's <fcntl.h>, for `make shim-freebsd-syntax` only: the
 * declarations restrack's FreeBSD code uses, written from FreeBSD's manual
 * pages; numeric values are placeholders. Not FreeBSD's header. */
#pragma once
#include <sys/types.h>
#define O_RDONLY 0x0000
#define O_WRONLY 0x0001
#define O_RDWR 0x0002
#define O_ACCMODE 0x0003
#define O_NONBLOCK 0x0004
#define O_APPEND 0x0008
#define O_CREAT 0x0200
#define O_TRUNC 0x0400
#define O_CLOEXEC 0x00100000
#define AT_FDCWD -100
#define F_DUPFD_CLOEXEC 17
#define F_KINFO 22
int open(const char *, int, ...);
int openat(int, const char *, int, ...);
int fcntl(int, int, ...);
