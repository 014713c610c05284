/* Stand-in for FreeBSD's <sys/param.h>, for `make shim-freebsd-syntax` only:
 * included for its place in the include order; nothing of it is used.
 * Not FreeBSD's header. */
#pragma once
#include <sys/types.h>
