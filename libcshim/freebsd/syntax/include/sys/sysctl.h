/* Stand-in for FreeBSD's <sys/sysctl.h>, for `make shim-freebsd-syntax` only: the
 * declarations restrack's FreeBSD code uses, written from FreeBSD's manual
 * pages; numeric values are placeholders. Not FreeBSD's header. */
#pragma once
#include <stddef.h>
#define CTL_KERN 1
#define KERN_PROC 14
#define KERN_BOOTTIME 21
#define KERN_PROC_PID 1
#define KERN_PROC_ARGS 7
#define KERN_PROC_PATHNAME 12
int sysctl(const int *, unsigned int, void *, size_t *, const void *, size_t);
