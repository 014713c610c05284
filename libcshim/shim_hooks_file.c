/*
 * shim_hooks_file.c — hooks of the libc functions that open, create or
 * change files by path: the open family (with glibc's fortified variants),
 * stdio, temporary files, opendir, and the namespace changes (rename, link,
 * symlink, unlink, mkdir, mknod, mkfifo, truncate, and syscall() used for
 * openat2/renameat2), and the stat-family lookups (stat, access, statx,
 * readlink… and glibc's older __xstat family).
 *
 * Producer: these hooks, in the traced program's threads. Consumer: the
 * collector via rt_emit* (shim_core.c). Every hook calls the real function
 * first and records afterwards, so the record carries the real result (or
 * -errno); recording preserves errno and never fails the call. When the real
 * function cannot be found (a hook running before libc is reachable) the
 * open family falls back to the raw system call, the others fail with
 * ENOSYS as the function would be missing without the shim too.
 */
#undef _FORTIFY_SOURCE
#include "shim.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifdef __linux__
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#endif

/* glibc's fortified entry points (declared only under _FORTIFY_SOURCE). */
int __open_2(const char *path, int flags);
int __open64_2(const char *path, int flags);
int __openat_2(int dirfd, const char *path, int flags);
int __openat64_2(int dirfd, const char *path, int flags);

#ifndef __OPEN_NEEDS_MODE
#define __OPEN_NEEDS_MODE(f) (((f) & O_CREAT) != 0 || ((f) & O_TMPFILE) == O_TMPFILE)
#endif

#define RT_MODE_ARG(flags, last, mode)                \
	do {                                          \
		if (__OPEN_NEEDS_MODE(flags)) {       \
			va_list ap_;                  \
			va_start(ap_, last);          \
			mode = va_arg(ap_, mode_t);   \
			va_end(ap_);                  \
		}                                     \
	} while (0)

static int rt_raw_openat(int dirfd, const char *path, int flags, mode_t mode)
{
	long r = rt_sys4(SYS_openat, dirfd, path, flags, mode);
	if (r < 0) {
		errno = (int)-r;
		return -1;
	}
	return (int)r;
}

/* Records an open-family call that returned ret with errno as it is now. */
static inline void rt_rec_open(uint16_t op, int dirfd, const char *path, int flags, mode_t mode, int ret)
{
	if (rt_active())
		rt_emit1(op, rt_open_access(flags), (uint32_t)flags, (uint32_t)mode, ret < 0 ? -errno : ret, dirfd,
			 path);
}

/* ---- open family ---- */

RT_EXPORT RT_HOT int open(const char *path, int flags, ...)
{
	mode_t mode = 0;
	RT_MODE_ARG(flags, flags, mode);
	RT_REAL(open);
	int ret = real_open ? real_open(path, flags, mode) : rt_raw_openat(AT_FDCWD, path, flags, mode);
	rt_rec_open(RT_OP_OPEN, AT_FDCWD, path, flags, mode, ret);
	return ret;
}

RT_EXPORT RT_HOT int open64(const char *path, int flags, ...)
{
	mode_t mode = 0;
	RT_MODE_ARG(flags, flags, mode);
	RT_REAL(open64);
	int ret = real_open64 ? real_open64(path, flags, mode)
			      : rt_raw_openat(AT_FDCWD, path, flags | O_LARGEFILE, mode);
	rt_rec_open(RT_OP_OPEN64, AT_FDCWD, path, flags, mode, ret);
	return ret;
}

RT_EXPORT RT_HOT int openat(int dirfd, const char *path, int flags, ...)
{
	mode_t mode = 0;
	RT_MODE_ARG(flags, flags, mode);
	RT_REAL(openat);
	int ret = real_openat ? real_openat(dirfd, path, flags, mode) : rt_raw_openat(dirfd, path, flags, mode);
	rt_rec_open(RT_OP_OPENAT, dirfd, path, flags, mode, ret);
	return ret;
}

RT_EXPORT RT_HOT int openat64(int dirfd, const char *path, int flags, ...)
{
	mode_t mode = 0;
	RT_MODE_ARG(flags, flags, mode);
	RT_REAL(openat64);
	int ret = real_openat64 ? real_openat64(dirfd, path, flags, mode)
				: rt_raw_openat(dirfd, path, flags | O_LARGEFILE, mode);
	rt_rec_open(RT_OP_OPENAT64, dirfd, path, flags, mode, ret);
	return ret;
}

RT_EXPORT int creat(const char *path, mode_t mode)
{
	RT_REAL(creat);
	int flags = O_CREAT | O_WRONLY | O_TRUNC;
	int ret = real_creat ? real_creat(path, mode) : rt_raw_openat(AT_FDCWD, path, flags, mode);
	rt_rec_open(RT_OP_CREAT, AT_FDCWD, path, flags, mode, ret);
	return ret;
}

RT_EXPORT int creat64(const char *path, mode_t mode)
{
	RT_REAL(creat64);
	int flags = O_CREAT | O_WRONLY | O_TRUNC;
	int ret = real_creat64 ? real_creat64(path, mode)
			       : rt_raw_openat(AT_FDCWD, path, flags | O_LARGEFILE, mode);
	rt_rec_open(RT_OP_CREAT64, AT_FDCWD, path, flags, mode, ret);
	return ret;
}

RT_EXPORT RT_HOT int __open_2(const char *path, int flags)
{
	RT_REAL(__open_2);
	int ret = real___open_2 ? real___open_2(path, flags) : rt_raw_openat(AT_FDCWD, path, flags, 0);
	rt_rec_open(RT_OP_OPEN_2, AT_FDCWD, path, flags, 0, ret);
	return ret;
}

RT_EXPORT RT_HOT int __open64_2(const char *path, int flags)
{
	RT_REAL(__open64_2);
	int ret = real___open64_2 ? real___open64_2(path, flags)
				  : rt_raw_openat(AT_FDCWD, path, flags | O_LARGEFILE, 0);
	rt_rec_open(RT_OP_OPEN64_2, AT_FDCWD, path, flags, 0, ret);
	return ret;
}

RT_EXPORT RT_HOT int __openat_2(int dirfd, const char *path, int flags)
{
	RT_REAL(__openat_2);
	int ret = real___openat_2 ? real___openat_2(dirfd, path, flags) : rt_raw_openat(dirfd, path, flags, 0);
	rt_rec_open(RT_OP_OPENAT_2, dirfd, path, flags, 0, ret);
	return ret;
}

RT_EXPORT RT_HOT int __openat64_2(int dirfd, const char *path, int flags)
{
	RT_REAL(__openat64_2);
	int ret = real___openat64_2 ? real___openat64_2(dirfd, path, flags)
				    : rt_raw_openat(dirfd, path, flags | O_LARGEFILE, 0);
	rt_rec_open(RT_OP_OPENAT64_2, dirfd, path, flags, 0, ret);
	return ret;
}

/* ---- stdio ---- */

/* The open(2) flags an fopen mode string stands for, as glibc reads it. */
static int rt_fopen_flags(const char *mode)
{
	int flags;
	if (mode == NULL)
		return 0;
	switch (mode[0]) {
	case 'r': flags = O_RDONLY; break;
	case 'w': flags = O_WRONLY | O_CREAT | O_TRUNC; break;
	case 'a': flags = O_WRONLY | O_CREAT | O_APPEND; break;
	default: return 0;
	}
	for (const char *p = mode + 1; *p && *p != ','; p++) {
		if (*p == '+')
			flags = (flags & ~O_ACCMODE) | O_RDWR;
		else if (*p == 'x')
			flags |= O_EXCL;
		else if (*p == 'e')
			flags |= O_CLOEXEC;
	}
	return flags;
}

static void rt_rec_stream(uint16_t op, const char *path, const char *mode, FILE *fp)
{
	int flags;
	if (!rt_active())
		return;
	int err = errno;
	flags = rt_fopen_flags(mode);
	rt_emit1(op, rt_open_access(flags), (uint32_t)flags, 0, fp ? fileno_unlocked(fp) : -err, AT_FDCWD, path);
}

#define RT_STUB_ENOSYS(ret) \
	do {                \
		errno = ENOSYS; \
		return ret; \
	} while (0)

RT_EXPORT RT_HOT FILE *fopen(const char *path, const char *mode)
{
	RT_REAL(fopen);
	if (!real_fopen)
		RT_STUB_ENOSYS(NULL);
	FILE *fp = real_fopen(path, mode);
	rt_rec_stream(RT_OP_FOPEN, path, mode, fp);
	return fp;
}

RT_EXPORT RT_HOT FILE *fopen64(const char *path, const char *mode)
{
	RT_REAL(fopen64);
	if (!real_fopen64)
		RT_STUB_ENOSYS(NULL);
	FILE *fp = real_fopen64(path, mode);
	rt_rec_stream(RT_OP_FOPEN64, path, mode, fp);
	return fp;
}

static void rt_rec_freopen(uint16_t op, const char *path, const char *mode, FILE *fp)
{
	if (path != NULL) {
		rt_rec_stream(op, path, mode, fp);
	} else if (rt_active()) {
		/* freopen(NULL, mode, f): the same file with a new mode. */
		int flags = rt_fopen_flags(mode);
		int err = errno;
		rt_emit_fd(op, rt_open_access(flags), (uint32_t)flags, 0, fp ? fileno_unlocked(fp) : -err,
			   fp ? fileno_unlocked(fp) : -1);
	}
}

RT_EXPORT FILE *freopen(const char *path, const char *mode, FILE *stream)
{
	RT_REAL(freopen);
	if (!real_freopen)
		RT_STUB_ENOSYS(NULL);
	FILE *fp = real_freopen(path, mode, stream);
	rt_rec_freopen(RT_OP_FREOPEN, path, mode, fp);
	return fp;
}

RT_EXPORT FILE *freopen64(const char *path, const char *mode, FILE *stream)
{
	RT_REAL(freopen64);
	if (!real_freopen64)
		RT_STUB_ENOSYS(NULL);
	FILE *fp = real_freopen64(path, mode, stream);
	rt_rec_freopen(RT_OP_FREOPEN64, path, mode, fp);
	return fp;
}

/* ---- temporary files ---- */

static void rt_rec_tmpfile(uint16_t op, FILE *fp)
{
	if (!rt_active())
		return;
	int err = errno;
	int fd = fp ? fileno_unlocked(fp) : -1;
	/* The name is whatever the kernel says (an O_TMPFILE file is
	 * "/tmp/#123 (deleted)"): the directory it lives in is what moves. */
	rt_emit_fd(op, RT_ACCESS_WRITE, O_RDWR | O_CREAT | O_EXCL, 0600, fp ? fd : -err, fd);
}

RT_EXPORT FILE *tmpfile(void)
{
	RT_REAL(tmpfile);
	if (!real_tmpfile)
		RT_STUB_ENOSYS(NULL);
	FILE *fp = real_tmpfile();
	rt_rec_tmpfile(RT_OP_TMPFILE, fp);
	return fp;
}

RT_EXPORT FILE *tmpfile64(void)
{
	RT_REAL(tmpfile64);
	if (!real_tmpfile64)
		RT_STUB_ENOSYS(NULL);
	FILE *fp = real_tmpfile64();
	rt_rec_tmpfile(RT_OP_TMPFILE64, fp);
	return fp;
}

/* mkstemp and friends fill the template in place: record the final name. */
static void rt_rec_mkstemp(uint16_t op, const char *tmpl, int flags, int ret)
{
	if (rt_active())
		rt_emit1(op, RT_ACCESS_WRITE, (uint32_t)(O_RDWR | O_CREAT | O_EXCL | flags), 0600,
			 rt_result(ret, errno), AT_FDCWD, tmpl);
}

#define RT_MKSTEMP_HOOK(name, OP, params, args, flags)              \
	RT_EXPORT int name params                                    \
	{                                                            \
		RT_REAL(name);                                       \
		if (!real_##name)                                    \
			RT_STUB_ENOSYS(-1);                          \
		int ret = real_##name args;                          \
		rt_rec_mkstemp(RT_OP_##OP, tmpl, (flags), ret);     \
		return ret;                                          \
	}

RT_MKSTEMP_HOOK(mkstemp, MKSTEMP, (char *tmpl), (tmpl), 0)
RT_MKSTEMP_HOOK(mkstemp64, MKSTEMP64, (char *tmpl), (tmpl), 0)
RT_MKSTEMP_HOOK(mkostemp, MKOSTEMP, (char *tmpl, int fl), (tmpl, fl), fl)
RT_MKSTEMP_HOOK(mkostemp64, MKOSTEMP64, (char *tmpl, int fl), (tmpl, fl), fl)
RT_MKSTEMP_HOOK(mkstemps, MKSTEMPS, (char *tmpl, int sl), (tmpl, sl), 0)
RT_MKSTEMP_HOOK(mkstemps64, MKSTEMPS64, (char *tmpl, int sl), (tmpl, sl), 0)
RT_MKSTEMP_HOOK(mkostemps, MKOSTEMPS, (char *tmpl, int sl, int fl), (tmpl, sl, fl), fl)
RT_MKSTEMP_HOOK(mkostemps64, MKOSTEMPS64, (char *tmpl, int sl, int fl), (tmpl, sl, fl), fl)

RT_EXPORT char *mkdtemp(char *tmpl)
{
	RT_REAL(mkdtemp);
	if (!real_mkdtemp)
		RT_STUB_ENOSYS(NULL);
	char *ret = real_mkdtemp(tmpl);
	if (rt_active())
		rt_emit1(RT_OP_MKDTEMP, RT_ACCESS_WRITE, 0, 0700, ret ? 0 : -errno, AT_FDCWD, tmpl);
	return ret;
}

RT_EXPORT DIR *opendir(const char *path)
{
	RT_REAL(opendir);
	if (!real_opendir)
		RT_STUB_ENOSYS(NULL);
	DIR *d = real_opendir(path);
	if (rt_active())
		rt_emit1(RT_OP_OPENDIR, RT_ACCESS_READ, O_RDONLY | O_DIRECTORY, 0, d ? dirfd(d) : -errno, AT_FDCWD,
			 path);
	return d;
}

/* ---- namespace changes ---- */

static void rt_rec2(uint16_t op, int result, uint32_t flags, int d1, const char *p1, int d2, const char *p2,
		    int raw2)
{
	struct rt_call c = {.op = op, .access = RT_ACCESS_WRITE, .result = result, .flags = flags,
			    .dirfd1 = d1, .path1 = p1, .dirfd2 = d2, .path2 = p2, .path2_raw = raw2};
	rt_emit(&c);
}

RT_EXPORT int rename(const char *oldp, const char *newp)
{
	RT_REAL(rename);
	if (!real_rename)
		RT_STUB_ENOSYS(-1);
	int ret = real_rename(oldp, newp);
	if (rt_active())
		rt_rec2(RT_OP_RENAME, rt_result(ret, errno), 0, AT_FDCWD, oldp, AT_FDCWD, newp, 0);
	return ret;
}

RT_EXPORT int renameat(int od, const char *oldp, int nd, const char *newp)
{
	RT_REAL(renameat);
	if (!real_renameat)
		RT_STUB_ENOSYS(-1);
	int ret = real_renameat(od, oldp, nd, newp);
	if (rt_active())
		rt_rec2(RT_OP_RENAMEAT, rt_result(ret, errno), 0, od, oldp, nd, newp, 0);
	return ret;
}

RT_EXPORT int renameat2(int od, const char *oldp, int nd, const char *newp, unsigned int flags)
{
	RT_REAL(renameat2);
	if (!real_renameat2)
		RT_STUB_ENOSYS(-1);
	int ret = real_renameat2(od, oldp, nd, newp, flags);
	if (rt_active())
		rt_rec2(RT_OP_RENAMEAT2, rt_result(ret, errno), flags, od, oldp, nd, newp, 0);
	return ret;
}

RT_EXPORT int link(const char *oldp, const char *newp)
{
	RT_REAL(link);
	if (!real_link)
		RT_STUB_ENOSYS(-1);
	int ret = real_link(oldp, newp);
	if (rt_active())
		rt_rec2(RT_OP_LINK, rt_result(ret, errno), 0, AT_FDCWD, oldp, AT_FDCWD, newp, 0);
	return ret;
}

RT_EXPORT int linkat(int od, const char *oldp, int nd, const char *newp, int flags)
{
	RT_REAL(linkat);
	if (!real_linkat)
		RT_STUB_ENOSYS(-1);
	int ret = real_linkat(od, oldp, nd, newp, flags);
	if (rt_active())
		rt_rec2(RT_OP_LINKAT, rt_result(ret, errno), (uint32_t)flags, od, oldp, nd, newp, 0);
	return ret;
}

/* symlink(target, linkpath): str1 is the link created (the file written),
 * str2 the target exactly as stored in the link (it is content, resolved by
 * the kernel relative to the link's directory at lookup time). */
RT_EXPORT int symlink(const char *target, const char *linkp)
{
	RT_REAL(symlink);
	if (!real_symlink)
		RT_STUB_ENOSYS(-1);
	int ret = real_symlink(target, linkp);
	if (rt_active())
		rt_rec2(RT_OP_SYMLINK, rt_result(ret, errno), 0, AT_FDCWD, linkp, AT_FDCWD, target, 1);
	return ret;
}

RT_EXPORT int symlinkat(const char *target, int nd, const char *linkp)
{
	RT_REAL(symlinkat);
	if (!real_symlinkat)
		RT_STUB_ENOSYS(-1);
	int ret = real_symlinkat(target, nd, linkp);
	if (rt_active())
		rt_rec2(RT_OP_SYMLINKAT, rt_result(ret, errno), 0, nd, linkp, AT_FDCWD, target, 1);
	return ret;
}

#define RT_PATH_HOOK(name, OP, params, args, dirfd, path, flags, mode) \
	RT_EXPORT int name params                                       \
	{                                                               \
		RT_REAL(name);                                          \
		if (!real_##name)                                       \
			RT_STUB_ENOSYS(-1);                             \
		int ret = real_##name args;                             \
		if (rt_active())                                        \
			rt_emit1(RT_OP_##OP, RT_ACCESS_WRITE, (uint32_t)(flags), (uint32_t)(mode), \
				 rt_result(ret, errno), dirfd, path);   \
		return ret;                                             \
	}

RT_PATH_HOOK(unlink, UNLINK, (const char *p), (p), AT_FDCWD, p, 0, 0)
RT_PATH_HOOK(unlinkat, UNLINKAT, (int d, const char *p, int fl), (d, p, fl), d, p, fl, 0)
RT_PATH_HOOK(remove, REMOVE, (const char *p), (p), AT_FDCWD, p, 0, 0)
RT_PATH_HOOK(rmdir, RMDIR, (const char *p), (p), AT_FDCWD, p, 0, 0)
RT_PATH_HOOK(mkdir, MKDIR, (const char *p, mode_t m), (p, m), AT_FDCWD, p, 0, m)
RT_PATH_HOOK(mkdirat, MKDIRAT, (int d, const char *p, mode_t m), (d, p, m), d, p, 0, m)
RT_PATH_HOOK(mknod, MKNOD, (const char *p, mode_t m, dev_t dev), (p, m, dev), AT_FDCWD, p, 0, m)
RT_PATH_HOOK(mknodat, MKNODAT, (int d, const char *p, mode_t m, dev_t dev), (d, p, m, dev), d, p, 0, m)
RT_PATH_HOOK(mkfifo, MKFIFO, (const char *p, mode_t m), (p, m), AT_FDCWD, p, 0, m)
RT_PATH_HOOK(mkfifoat, MKFIFOAT, (int d, const char *p, mode_t m), (d, p, m), d, p, 0, m)
RT_PATH_HOOK(truncate, TRUNCATE, (const char *p, off_t len), (p, len), AT_FDCWD, p, O_TRUNC, 0)
RT_PATH_HOOK(truncate64, TRUNCATE64, (const char *p, off64_t len), (p, len), AT_FDCWD, p, O_TRUNC, 0)

/* ---- syscall(2) ---- */

/*
 * Programs reach openat2 and (before glibc 2.28) renameat2 only through
 * syscall(). Everything else passes straight through: six register-sized
 * arguments are forwarded, as glibc's own syscall() reads them.
 */
RT_EXPORT long syscall(long nr, ...)
{
	va_list ap;
	long a[6];
	long ret;
	va_start(ap, nr);
	for (int i = 0; i < 6; i++)
		a[i] = va_arg(ap, long);
	va_end(ap);
#ifdef SYS_seccomp
	if (nr == SYS_seccomp && a[0] != SECCOMP_GET_ACTION_AVAIL && a[0] != SECCOMP_GET_NOTIF_SIZES)
		rt_sandbox_enter(); /* before: the filter binds the shim's next syscall */
#endif
	RT_REAL(syscall);
	if (real_syscall) {
		ret = real_syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
	} else {
		ret = rt_sys(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
		if (ret < 0 && ret > -4096) {
			errno = (int)-ret;
			ret = -1;
		}
	}
#ifdef SYS_openat2
	if (nr == SYS_openat2 && rt_active()) {
		/* openat2(dirfd, path, how, size) */
		const struct open_how *how = (const struct open_how *)a[2];
		uint64_t fl = 0, mode = 0;
		int err = errno;
		if (how != NULL && (size_t)a[3] >= sizeof(uint64_t) * 2 && !(ret < 0 && err == EFAULT)) {
			fl = how->flags;
			mode = how->mode;
		}
		rt_emit1(RT_OP_SYSCALL_OPENAT2, rt_open_access((int)fl), (uint32_t)fl, (uint32_t)mode,
			 rt_result(ret, errno), (int)a[0], (const char *)a[1]);
	}
#endif
#ifdef SYS_renameat2
	if (nr == SYS_renameat2 && rt_active())
		rt_rec2(RT_OP_SYSCALL_RENAMEAT2, rt_result(ret, errno), (uint32_t)a[4], (int)a[0],
			(const char *)a[1], (int)a[2], (const char *)a[3], 0);
#endif
	return ret;
}

/* ---- stat-family lookups ---- */

/*
 * A process that checks whether a path exists (a lock, a pid file, a
 * config it may read) depends on it as much as one that opens it: these
 * are recorded with access "lookup", which the planner reads as a read.
 * Lookups are far more frequent than opens (python stats every sys.path
 * entry, git every tracked file), so each thread remembers the lookups it
 * recorded in the current second and records a repeat only once the
 * second is over: the planner aggregates per process, path and op anyway,
 * and it keeps the first and last time to within a second. The key mixes
 * the op, the path as given, the dirfd, the cwd epoch (a relative path
 * means another file after chdir), the outcome (a file that appears is a
 * new fact) and the pid (a fork child is another process).
 */
#define RT_LOOKUP_SLOTS 256
static RT_TLS uint64_t rt_lookup_seen[RT_LOOKUP_SLOTS];

static RT_HOT int rt_lookup_repeat(uint16_t op, int dirfd, const char *path, int ok)
{
	struct timespec ts;
	uint64_t h = UINT64_C(0xcbf29ce484222325);
	if (path == NULL)
		return 0;
	/* The coarse clock is a vDSO read of the last tick, no rdtsc. */
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	for (const unsigned char *p = (const unsigned char *)path; *p; p++)
		h = (h ^ *p) * UINT64_C(0x100000001b3);
	h ^= ((uint64_t)op << 48) ^ ((uint64_t)(uint32_t)dirfd << 16) ^ (uint64_t)ok;
	if (path[0] != '/')
		h ^= rt_cwd_epoch_now() * UINT64_C(0x9e3779b97f4a7c15);
	h = (h ^ ((uint64_t)ts.tv_sec << 20) ^ ((uint64_t)rt_self_pid() << 40)) * UINT64_C(0xff51afd7ed558ccd);
	h |= 1; /* 0 marks an empty slot */
	uint64_t *slot = &rt_lookup_seen[(h >> 56) & (RT_LOOKUP_SLOTS - 1)];
	if (*slot == h)
		return 1;
	*slot = h;
	return 0;
}

static RT_HOT void rt_rec_lookup(uint16_t op, int dirfd, const char *path, uint32_t flags, long ret)
{
	int err = errno;
	if (!rt_active())
		return;
	/* AT_EMPTY_PATH with "": a stat of dirfd itself, no lookup by name. */
	if (path != NULL && !(ret < 0 && err == EFAULT) && path[0] == 0 && (flags & AT_EMPTY_PATH))
		return;
	if (ret < 0 && err == EFAULT)
		path = NULL;
	if (rt_lookup_repeat(op, dirfd, path, ret >= 0))
		return;
	rt_emit1(op, RT_ACCESS_LOOKUP, flags, 0, rt_result(ret, err), dirfd, path);
	errno = err;
}

/* glibc < 2.33 compiled stat() into these; old binaries still call them. */
int __xstat(int ver, const char *path, struct stat *st);
int __lxstat(int ver, const char *path, struct stat *st);
int __fxstatat(int ver, int dirfd, const char *path, struct stat *st, int flags);
int __xstat64(int ver, const char *path, struct stat64 *st);
int __lxstat64(int ver, const char *path, struct stat64 *st);
int __fxstatat64(int ver, int dirfd, const char *path, struct stat64 *st, int flags);

#define RT_LOOKUP_HOOK(ret_t, name, OP, params, args, dirfd, path, flags) \
	RT_EXPORT RT_HOT ret_t name params                                \
	{                                                                 \
		RT_REAL(name);                                            \
		if (!real_##name)                                         \
			RT_STUB_ENOSYS(-1);                               \
		ret_t ret = real_##name args;                             \
		rt_rec_lookup(RT_OP_##OP, dirfd, path, (uint32_t)(flags), (long)ret); \
		return ret;                                               \
	}

RT_LOOKUP_HOOK(int, stat, STAT, (const char *p, struct stat *st), (p, st), AT_FDCWD, p, 0)
RT_LOOKUP_HOOK(int, lstat, LSTAT, (const char *p, struct stat *st), (p, st), AT_FDCWD, p, AT_SYMLINK_NOFOLLOW)
RT_LOOKUP_HOOK(int, fstatat, FSTATAT, (int d, const char *p, struct stat *st, int fl), (d, p, st, fl), d, p, fl)
RT_LOOKUP_HOOK(int, stat64, STAT64, (const char *p, struct stat64 *st), (p, st), AT_FDCWD, p, 0)
RT_LOOKUP_HOOK(int, lstat64, LSTAT64, (const char *p, struct stat64 *st), (p, st), AT_FDCWD, p, AT_SYMLINK_NOFOLLOW)
RT_LOOKUP_HOOK(int, fstatat64, FSTATAT64, (int d, const char *p, struct stat64 *st, int fl), (d, p, st, fl), d, p,
	       fl)
RT_LOOKUP_HOOK(int, __xstat, XSTAT, (int v, const char *p, struct stat *st), (v, p, st), AT_FDCWD, p, 0)
RT_LOOKUP_HOOK(int, __lxstat, LXSTAT, (int v, const char *p, struct stat *st), (v, p, st), AT_FDCWD, p,
	       AT_SYMLINK_NOFOLLOW)
RT_LOOKUP_HOOK(int, __fxstatat, FXSTATAT, (int v, int d, const char *p, struct stat *st, int fl), (v, d, p, st, fl),
	       d, p, fl)
RT_LOOKUP_HOOK(int, __xstat64, XSTAT64, (int v, const char *p, struct stat64 *st), (v, p, st), AT_FDCWD, p, 0)
RT_LOOKUP_HOOK(int, __lxstat64, LXSTAT64, (int v, const char *p, struct stat64 *st), (v, p, st), AT_FDCWD, p,
	       AT_SYMLINK_NOFOLLOW)
RT_LOOKUP_HOOK(int, __fxstatat64, FXSTATAT64, (int v, int d, const char *p, struct stat64 *st, int fl),
	       (v, d, p, st, fl), d, p, fl)
/* access: flags holds the mode asked (R_OK, W_OK, X_OK, F_OK). */
RT_LOOKUP_HOOK(int, access, ACCESS, (const char *p, int m), (p, m), AT_FDCWD, p, m)
RT_LOOKUP_HOOK(int, faccessat, FACCESSAT, (int d, const char *p, int m, int fl), (d, p, m, fl), d, p, fl)
RT_LOOKUP_HOOK(int, statx, STATX, (int d, const char *p, int fl, unsigned int mask, struct statx *st),
	       (d, p, fl, mask, st), d, p, fl)
RT_LOOKUP_HOOK(ssize_t, readlink, READLINK, (const char *p, char *buf, size_t n), (p, buf, n), AT_FDCWD, p, 0)
RT_LOOKUP_HOOK(ssize_t, readlinkat, READLINKAT, (int d, const char *p, char *buf, size_t n), (d, p, buf, n), d, p,
	       0)

/* ---- seccomp ---- */

/*
 * A program that sandboxes itself (libseccomp's seccomp_load, prctl or
 * syscall(SYS_seccomp) directly) binds the shim too: from the filter on,
 * the shim's own readlinkat of /proc/self/fd or getcwd may be refused —
 * with SECCOMP_RET_KILL the program dies of SIGSYS. The hooks see the
 * filter coming and switch the shim to making no syscall of its own
 * (rt_sandbox_enter) before the real call installs it.
 */
RT_EXPORT int prctl(int option, ...)
{
	va_list ap;
	unsigned long a[4];
	va_start(ap, option);
	for (int i = 0; i < 4; i++)
		a[i] = va_arg(ap, unsigned long);
	va_end(ap);
	if (option == PR_SET_SECCOMP)
		rt_sandbox_enter();
	RT_REAL(prctl);
	if (!real_prctl) {
		long r = rt_sys(SYS_prctl, option, (long)a[0], (long)a[1], (long)a[2], (long)a[3], 0);
		if (r < 0) {
			errno = (int)-r;
			return -1;
		}
		return (int)r;
	}
	return real_prctl(option, a[0], a[1], a[2], a[3]);
}
