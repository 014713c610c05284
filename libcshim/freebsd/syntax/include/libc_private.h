/* Stand-in for FreeBSD's <libc_private.h>, for `make shim-freebsd-syntax` only: the
 * declarations restrack's FreeBSD code uses, written from FreeBSD's manual
 * pages; numeric values are placeholders. Not FreeBSD's header. */
#pragma once
/* lib/libc/include/libc_private.h: only what rt_hooks_freebsd.c uses. */
typedef int (*interpos_func_t)(void);
enum { INTERPOS_fork = 7, INTERPOS_openat = 10, INTERPOS_MAX = 64 };
extern interpos_func_t __libc_interposing[INTERPOS_MAX];
int __sys_openat(int, const char *, int, ...);
