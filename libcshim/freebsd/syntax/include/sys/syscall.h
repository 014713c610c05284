/* Stand-in for FreeBSD's <sys/syscall.h>, for `make shim-freebsd-syntax` only: the
 * declarations restrack's FreeBSD code uses, written from FreeBSD's manual
 * pages; numeric values are placeholders. Not FreeBSD's header. */
#pragma once
#define SYS_read 3
#define SYS_write 4
#define SYS_close 6
#define SYS_getpid 20
#define SYS_getppid 39
#define SYS_madvise 75
#define SYS_fcntl 92
#define SYS___getcwd 326
#define SYS_thr_self 432
#define SYS_faccessat 489
#define SYS_openat 499
#define SYS_readlinkat 500
#define SYS_ppoll 545
