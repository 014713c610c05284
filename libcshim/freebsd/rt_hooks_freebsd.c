/*
 * rt_hooks_freebsd.c — the FreeBSD hooks: the open path and fork, in two
 * builds from this one file (docs/freebsd.md).
 *
 *  - RT_LIBC_BUILD: compiled into libc itself (integrate.sh). The strong
 *    definitions here replace libc's weak ones at link time:
 *      open, openat  public wrappers (weak in lib/libc/sys/open.c, openat.c);
 *                    they call the __libc_interposing slot like libc's own,
 *                    so libthr's cancellation-point wrapper still runs;
 *      _open, _openat  libc's internal names (weak aliases of the __sys_*
 *                    system call stubs), what stdio, opendir, mkstemp and
 *                    the rest of libc call: they stay plain system calls
 *                    (not cancellation points), as they were;
 *      fork          (weak in lib/libc/sys/fork.c), to refresh the process
 *                    identity in the child: libc's pthread_atfork is a stub
 *                    in programs without libthr.
 *    The hook does not sit in the interposing slot itself: libthr replaces
 *    the slots of cancellation points with its own functions, which call
 *    __sys_openat directly, so a slot hook would miss threaded programs;
 *    and the slot is not on stdio's path at all.
 *  - otherwise: the LD_PRELOAD build for FreeBSD's rtld (Makefile here),
 *    finding the real functions with dlsym(RTLD_NEXT) like the Linux shim.
 *    libc's internal _open calls (fopen, opendir…) bypass the dynamic
 *    symbol open, so this build sees only the program's own open/openat.
 *
 * Producer: these hooks in the traced program's threads. Consumer: the
 * collector via rt_emit* (shim_core.c) and the ring. Every hook calls the
 * real function first and records afterwards with its result or -errno;
 * recording preserves errno and never fails the call.
 */
#ifndef __FreeBSD__
#error "rt_hooks_freebsd.c is FreeBSD's; the Linux hooks are libcshim/shim_hooks_*.c"
#endif

#include "shim.h"

#include <fcntl.h>
#include <stdarg.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifdef RT_LIBC_BUILD
/* libc's private header: __libc_interposing, INTERPOS_*, __sys_openat. */
#include "libc_private.h"
#endif

typedef int (*rt_openat_fn)(int, const char *, int, int);

#ifdef RT_LIBC_BUILD
/* The public path: whatever the slot holds (libc's __sys_openat, or
 * libthr's cancellation-point wrapper). */
static inline int rt_next_openat(int dirfd, const char *path, int flags, int mode)
{
	return ((rt_openat_fn)__libc_interposing[INTERPOS_openat])(dirfd, path, flags, mode);
}

static inline pid_t rt_next_fork(void)
{
	return ((pid_t(*)(void))__libc_interposing[INTERPOS_fork])();
}
#else
static inline int rt_next_openat(int dirfd, const char *path, int flags, int mode)
{
	RT_REAL(openat);
	if (real_openat != NULL)
		return real_openat(dirfd, path, flags, mode);
	long r = rt_sys4(SYS_openat, dirfd, path, flags, mode);
	if (r < 0) {
		errno = (int)-r;
		return -1;
	}
	return (int)r;
}

static inline pid_t rt_next_fork(void)
{
	RT_REAL(fork);
	if (real_fork == NULL) {
		errno = ENOSYS;
		return -1;
	}
	return real_fork();
}
#endif

static inline void rt_rec_open(uint16_t op, int dirfd, const char *path, int flags, int mode, int ret)
{
	if (rt_active())
		rt_emit1(op, rt_open_access(flags), (uint32_t)flags, (uint32_t)mode, ret < 0 ? -errno : ret, dirfd,
			 path);
}

#define RT_MODE_ARG(flags, last, mode)              \
	do {                                        \
		if ((flags) & O_CREAT) {            \
			va_list ap_;                \
			va_start(ap_, last);        \
			mode = va_arg(ap_, int);    \
			va_end(ap_);                \
		}                                   \
	} while (0)

RT_EXPORT int open(const char *path, int flags, ...)
{
	int mode = 0;
	RT_MODE_ARG(flags, flags, mode);
	int ret = rt_next_openat(AT_FDCWD, path, flags, mode);
	rt_rec_open(RT_OP_OPEN, AT_FDCWD, path, flags, mode, ret);
	return ret;
}

RT_EXPORT int openat(int dirfd, const char *path, int flags, ...)
{
	int mode = 0;
	RT_MODE_ARG(flags, flags, mode);
	int ret = rt_next_openat(dirfd, path, flags, mode);
	rt_rec_open(RT_OP_OPENAT, dirfd, path, flags, mode, ret);
	return ret;
}

#ifdef RT_LIBC_BUILD
/* libc's internal entry points. op says open/openat: the record names the
 * wrapper, not the libc function (fopen, opendir…) that called it. */
int _open(const char *path, int flags, ...);
int _openat(int dirfd, const char *path, int flags, ...);

RT_EXPORT int _open(const char *path, int flags, ...)
{
	int mode = 0;
	RT_MODE_ARG(flags, flags, mode);
	int ret = __sys_openat(AT_FDCWD, path, flags, mode);
	rt_rec_open(RT_OP_OPEN, AT_FDCWD, path, flags, mode, ret);
	return ret;
}

RT_EXPORT int _openat(int dirfd, const char *path, int flags, ...)
{
	int mode = 0;
	RT_MODE_ARG(flags, flags, mode);
	int ret = __sys_openat(dirfd, path, flags, mode);
	rt_rec_open(RT_OP_OPENAT, dirfd, path, flags, mode, ret);
	return ret;
}

/* Hidden aliases the integration's nm check compares against: after the
 * link, libc's open, openat, _open, _openat and fork must have these
 * addresses, or a weak definition of libc's won (integrate.sh stops). */
extern __typeof__(open) __restrack_open __attribute__((alias("open"), visibility("hidden")));
extern __typeof__(openat) __restrack_openat __attribute__((alias("openat"), visibility("hidden")));
extern __typeof__(_open) __restrack__open __attribute__((alias("_open"), visibility("hidden")));
extern __typeof__(_openat) __restrack__openat __attribute__((alias("_openat"), visibility("hidden")));
#endif

RT_EXPORT pid_t fork(void)
{
	pid_t r = rt_next_fork();
	if (r == 0) {
		rt_after_fork_child();
		return 0;
	}
	if (rt_active())
		rt_emit0(RT_OP_FORK, RT_ACCESS_NONE, 0, rt_result(r, errno));
	return r;
}

#ifdef RT_LIBC_BUILD
extern __typeof__(fork) __restrack_fork __attribute__((alias("fork"), visibility("hidden")));
#endif
