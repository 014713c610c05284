/* Stand-in for FreeBSD's <sys/stat.h>, for `make shim-freebsd-syntax` only: the
 * declarations restrack's FreeBSD code uses, written from FreeBSD's manual
 * pages; numeric values are placeholders. Not FreeBSD's header. */
#pragma once
#include <sys/types.h>
struct stat {
	mode_t st_mode;
	off_t st_size;
};
int fstat(int, struct stat *);
int mkdir(const char *, mode_t);
int mkdirat(int, const char *, mode_t);
