/* Stand-in for FreeBSD's <sys/types.h>, for `make shim-freebsd-syntax` only: the
 * declarations restrack's FreeBSD code uses, written from FreeBSD's manual
 * pages; numeric values are placeholders. Not FreeBSD's header. */
#pragma once
#include <stddef.h>
#include <stdint.h>
typedef int32_t pid_t;
typedef int64_t off_t;
typedef uint16_t mode_t;
typedef long ssize_t;
typedef int64_t quad_t;
typedef int64_t time_t;
typedef long suseconds_t;
typedef uint32_t uid_t;
typedef uint32_t socklen_t;
