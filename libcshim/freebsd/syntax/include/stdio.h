/* Stand-in for FreeBSD's <stdio.h>, for `make shim-freebsd-syntax` only:
 * the declarations restrack's FreeBSD code uses, written from FreeBSD's
 * manual pages. Not FreeBSD's header. */
#pragma once
int rename(const char *, const char *);
int renameat(int, const char *, int, const char *);
