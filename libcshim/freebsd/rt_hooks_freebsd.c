/*
 * rt_hooks_freebsd.c — the FreeBSD hooks: the open path, fork and the
 * namespace changes, in two builds from this one file (docs/freebsd.md). The
 * Linux hook files are not used on FreeBSD: they are built around glibc's
 * names (open64, __open_2, O_TMPFILE, openat2, clone…) and around
 * dlsym(RTLD_NEXT), which finds nothing from inside libc.
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
 *                    in programs without libthr;
 *      rename, renameat, link, linkat, symlink, symlinkat, unlink, unlinkat,
 *      rmdir, mkdir, mkdirat  plain system calls, whose generated stubs make
 *                    NAME a weak alias of __sys_NAME; the hooks call
 *                    __sys_NAME. integrate.sh builds them only when the tree
 *                    generates every one of them that way, else defines
 *                    RT_NO_NS_HOOKS.
 *    The hook does not sit in the interposing slot itself: libthr replaces
 *    the slots of cancellation points with its own functions, which call
 *    __sys_openat directly, so a slot hook would miss threaded programs;
 *    and the slot is not on stdio's path at all.
 *  - otherwise: the LD_PRELOAD build for FreeBSD's rtld (Makefile here),
 *    finding the real functions with dlsym(RTLD_NEXT) like the Linux shim.
 *    libc's internal _open calls (fopen, opendir…) bypass the dynamic
 *    symbol open, so this build sees only the program's own calls.
 *
 * Producer: these hooks in the traced program's threads. Consumer: the
 * collector via rt_emit* (shim_core.c) and the ring. Every hook calls the
 * real function first and records afterwards with its result or -errno;
 * recording preserves errno and never fails the call.
 */
#ifndef __FreeBSD__
#error "rt_hooks_freebsd.c is FreeBSD's; the Linux hooks are libcshim/shim_hooks_*.c"
#endif

#undef _FORTIFY_SOURCE
#include "shim.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>
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

#ifndef RT_NO_NS_HOOKS
/* ---- namespace changes: the same records as the Linux hooks ---- */

#ifdef RT_LIBC_BUILD
/* The system call stubs behind the weak aliases this file replaces. */
#define RT_NS_SYSCALL(name) extern __typeof__(name) __sys_##name;
RT_NS_SYSCALL(rename) RT_NS_SYSCALL(renameat) RT_NS_SYSCALL(link) RT_NS_SYSCALL(linkat)
RT_NS_SYSCALL(symlink) RT_NS_SYSCALL(symlinkat) RT_NS_SYSCALL(unlink) RT_NS_SYSCALL(unlinkat)
RT_NS_SYSCALL(rmdir) RT_NS_SYSCALL(mkdir) RT_NS_SYSCALL(mkdirat)
#define RT_NEXT_DECL(name) __typeof__(&name) next_ = __sys_##name
#define RT_NEXT_MISSING 0
#define RT_NS_ALIAS(name) \
	extern __typeof__(name) __restrack_##name __attribute__((alias(#name), visibility("hidden")));
#else
#define RT_NEXT_DECL(name) __typeof__(&name) next_ = (__typeof__(&name))rt_real_get(RT_SYM_##name)
#define RT_NEXT_MISSING (next_ == NULL)
#define RT_NS_ALIAS(name)
#endif

static void rt_rec_ns(uint16_t op, int result, uint32_t flags, uint32_t mode, int d1, const char *p1, int d2,
		      const char *p2, int raw2)
{
	struct rt_call c = {.op = op, .access = RT_ACCESS_WRITE, .result = result, .flags = flags, .mode = mode,
			    .dirfd1 = d1, .path1 = p1, .dirfd2 = d2, .path2 = p2, .path2_raw = raw2};
	rt_emit(&c);
}

/* name(params) calls the next name(args) and records op with str1 =
 * (d1, p1), str2 = (d2, p2) (NULL: none; raw2: p2 stored as given). */
#define RT_NS_HOOK(name, OP, params, args, flags, mode, d1, p1, d2, p2, raw2)                         \
	RT_EXPORT int name params                                                                    \
	{                                                                                            \
		RT_NEXT_DECL(name);                                                                  \
		if (RT_NEXT_MISSING) {                                                               \
			errno = ENOSYS;                                                              \
			return -1;                                                                   \
		}                                                                                    \
		int ret = next_ args;                                                                \
		if (rt_active())                                                                     \
			rt_rec_ns(RT_OP_##OP, rt_result(ret, errno), (uint32_t)(flags), (uint32_t)(mode), \
				  d1, p1, d2, p2, raw2);                                             \
		return ret;                                                                          \
	}                                                                                            \
	RT_NS_ALIAS(name)

RT_NS_HOOK(rename, RENAME, (const char *o, const char *n), (o, n), 0, 0, AT_FDCWD, o, AT_FDCWD, n, 0)
RT_NS_HOOK(renameat, RENAMEAT, (int od, const char *o, int nd, const char *n), (od, o, nd, n), 0, 0, od, o, nd, n,
	   0)
RT_NS_HOOK(link, LINK, (const char *o, const char *n), (o, n), 0, 0, AT_FDCWD, o, AT_FDCWD, n, 0)
RT_NS_HOOK(linkat, LINKAT, (int od, const char *o, int nd, const char *n, int fl), (od, o, nd, n, fl), fl, 0, od,
	   o, nd, n, 0)
/* symlink(target, linkpath): str1 is the link created, str2 the target as
 * stored (content, resolved by the kernel at lookup), as on Linux. */
RT_NS_HOOK(symlink, SYMLINK, (const char *t, const char *l), (t, l), 0, 0, AT_FDCWD, l, AT_FDCWD, t, 1)
RT_NS_HOOK(symlinkat, SYMLINKAT, (const char *t, int nd, const char *l), (t, nd, l), 0, 0, nd, l, AT_FDCWD, t, 1)
RT_NS_HOOK(unlink, UNLINK, (const char *p), (p), 0, 0, AT_FDCWD, p, AT_FDCWD, NULL, 0)
RT_NS_HOOK(unlinkat, UNLINKAT, (int d, const char *p, int fl), (d, p, fl), fl, 0, d, p, AT_FDCWD, NULL, 0)
RT_NS_HOOK(rmdir, RMDIR, (const char *p), (p), 0, 0, AT_FDCWD, p, AT_FDCWD, NULL, 0)
RT_NS_HOOK(mkdir, MKDIR, (const char *p, mode_t m), (p, m), 0, m, AT_FDCWD, p, AT_FDCWD, NULL, 0)
RT_NS_HOOK(mkdirat, MKDIRAT, (int d, const char *p, mode_t m), (d, p, m), 0, m, d, p, AT_FDCWD, NULL, 0)
#endif /* RT_NO_NS_HOOKS */
