/* Stand-in for FreeBSD's <unistd.h>, for `make shim-freebsd-syntax` only: the
 * declarations restrack's FreeBSD code uses, written from FreeBSD's manual
 * pages; numeric values are placeholders. Not FreeBSD's header. */
#pragma once
#include <sys/types.h>
#define X_OK 0x01
off_t __syscall(quad_t, ...);
pid_t fork(void);
pid_t getpid(void);
int issetugid(void);
int link(const char *, const char *);
int linkat(int, const char *, int, const char *, int);
int symlink(const char *, const char *);
int symlinkat(const char *, int, const char *);
int unlink(const char *);
int unlinkat(int, const char *, int);
int rmdir(const char *);
