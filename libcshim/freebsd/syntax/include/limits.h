/* Stand-in for FreeBSD's <limits.h>, for `make shim-freebsd-syntax` only:
 * the compiler's own limits.h plus FreeBSD's PATH_MAX and PIPE_BUF (from
 * <sys/syslimits.h>). Not FreeBSD's header. */
#pragma once
#include_next <limits.h>
#define PATH_MAX 1024
#define PIPE_BUF 512
