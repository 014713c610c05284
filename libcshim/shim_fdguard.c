/*
 * shim_fdguard.c — the shim's own descriptors are not the program's to
 * close or overwrite: hooks of close, closefrom, close_range, dup2 and dup3.
 *
 * Producer: the program's calls. Consumer: the shim's transports. Only FIFO
 * mode keeps descriptors open (its pipe's write end and an unread read
 * end, both close-on-exec, moved to fd 600 or above); ring mode keeps none
 * (the ring is mapped and its fd closed at once). Without this guard a
 * program that closes every descriptor (closefrom(3), as daemons do) and
 * then opens new ones gets the shim's old number back, and the shim writes
 * records into the program's file. So, as LTTng-UST's fd tracker does:
 * - close(ours) fails with EBADF, as it would had the program never had it;
 * - closefrom and close_range close everything else in the range;
 * - dup2/dup3 onto ours first move ours to another number, then let the
 *   program have the one it asked for; dup2/dup3 from ours is EBADF.
 * Each hook forwards untouched when no guarded fd is involved: one compare
 * per call. Raw system calls (syscall(SYS_close, …), inline assembly) are
 * beyond any preload library and are not covered.
 */
#undef _FORTIFY_SOURCE
#include "shim.h"

#ifdef __linux__
#include <limits.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_close_range
#define SYS_close_range 436
#endif

/* The guarded descriptors inside [first, last], ascending. */
static int rt_guarded_in(unsigned first, unsigned last, int out[RT_GUARDED_MAX])
{
	int n = 0;
	for (int i = 0; i < RT_GUARDED_MAX; i++) {
		int fd = __atomic_load_n(&rt_guarded_fds[i], __ATOMIC_RELAXED);
		if (fd >= 0 && (unsigned)fd >= first && (unsigned)fd <= last)
			out[n++] = fd;
	}
	for (int i = 1; i < n; i++) /* ascending */
		for (int j = i; j > 0 && out[j - 1] > out[j]; j--) {
			int t = out[j];
			out[j] = out[j - 1];
			out[j - 1] = t;
		}
	return n;
}

/* close_range over [first, last]: libc's, else the system call. Sets errno
 * on failure like libc does. */
static int rt_real_close_range(unsigned first, unsigned last, int flags)
{
	RT_REAL(close_range);
	if (real_close_range)
		return real_close_range(first, last, flags);
	long r = rt_sys3(SYS_close_range, first, last, flags);
	if (r < 0) {
		errno = (int)-r;
		return -1;
	}
	return 0;
}

/* close_range around the guarded descriptors: the pieces between them.
 * Returns 0, or -1 with the first failure's errno. */
static int rt_close_around(unsigned first, unsigned last, int flags, const int *ours, int n)
{
	unsigned lo = first;
	int ret = 0, err = 0;
	for (int i = 0; i < n; i++) {
		unsigned g = (unsigned)ours[i];
		if (g > lo && rt_real_close_range(lo, g - 1, flags) != 0 && ret == 0) {
			ret = -1;
			err = errno;
		}
		lo = g + 1;
	}
	if (lo != 0 && lo <= last && rt_real_close_range(lo, last, flags) != 0 && ret == 0) {
		ret = -1;
		err = errno;
	}
	if (ret != 0)
		errno = err;
	return ret;
}

RT_EXPORT int close(int fd)
{
	if (RT_UNLIKELY(rt_fd_guarded(fd))) {
		errno = EBADF;
		return -1;
	}
	RT_REAL(close);
	if (RT_LIKELY(real_close != NULL))
		return real_close(fd);
	long r = rt_sys1(SYS_close, fd);
	if (r < 0) {
		errno = (int)-r;
		return -1;
	}
	return 0;
}

RT_EXPORT int close_range(unsigned first, unsigned last, int flags)
{
	int ours[RT_GUARDED_MAX];
	int n = first <= last ? rt_guarded_in(first, last, ours) : 0;
	if (RT_LIKELY(n == 0))
		return rt_real_close_range(first, last, flags);
	return rt_close_around(first, last, flags, ours, n);
}

RT_EXPORT void closefrom(int lowfd)
{
	int ours[RT_GUARDED_MAX], saved = errno;
	unsigned first = lowfd < 0 ? 0 : (unsigned)lowfd;
	int n = rt_guarded_in(first, UINT_MAX, ours);
	RT_REAL(closefrom);
	if (RT_LIKELY(n == 0) && real_closefrom) {
		real_closefrom(lowfd);
		return;
	}
	if (rt_close_around(first, UINT_MAX, 0, ours, n) != 0 && errno == ENOSYS) {
		/* A kernel before close_range (5.9): one by one below our
		 * highest descriptor (a few hundred at most), libc's closefrom
		 * above it. */
		unsigned top = n ? (unsigned)ours[n - 1] : first;
		for (unsigned fd = first; fd < top; fd++)
			if (!rt_fd_guarded((int)fd))
				rt_sys1(SYS_close, fd);
		if (real_closefrom)
			real_closefrom((int)top + 1);
	}
	errno = saved; /* closefrom reports nothing */
}

/* Ours moved from old to moved: from now on the transport uses the new
 * number. */
static void rt_fd_moved(int old, int moved)
{
	for (int i = 0; i < RT_GUARDED_MAX; i++) {
		int expected = old;
		__atomic_compare_exchange_n(&rt_guarded_fds[i], &expected, moved, 0, __ATOMIC_RELAXED,
					    __ATOMIC_RELAXED);
	}
}

/* The program wants newfd, which is ours: give ours another number first
 * (dup2/dup3 then closes the old one as part of the call). */
static int rt_make_room(int newfd)
{
	for (int i = 0; i < RT_GUARDED_MAX; i++) {
		if (__atomic_load_n(&rt_guarded_fds[i], __ATOMIC_RELAXED) != newfd)
			continue;
		long moved = rt_sys3(SYS_fcntl, newfd, F_DUPFD_CLOEXEC, RT_HIGH_FD_BASE);
		if (moved < 0)
			return -1;
		rt_fd_moved(newfd, (int)moved);
	}
	return 0;
}

RT_EXPORT int dup2(int oldfd, int newfd)
{
	RT_REAL(dup2);
	if (RT_UNLIKELY(rt_fd_guarded(oldfd))) {
		errno = EBADF;
		return -1;
	}
	if (RT_UNLIKELY(rt_fd_guarded(newfd)) && rt_make_room(newfd) != 0) {
		errno = EMFILE;
		return -1;
	}
	if (RT_LIKELY(real_dup2 != NULL))
		return real_dup2(oldfd, newfd);
	long r = oldfd == newfd ? rt_sys3(SYS_fcntl, oldfd, F_GETFD, 0) : rt_sys3(SYS_dup3, oldfd, newfd, 0);
	if (r < 0) {
		errno = (int)-r;
		return -1;
	}
	return newfd;
}

RT_EXPORT int dup3(int oldfd, int newfd, int flags)
{
	RT_REAL(dup3);
	if (RT_UNLIKELY(rt_fd_guarded(oldfd))) {
		errno = EBADF;
		return -1;
	}
	if (RT_UNLIKELY(rt_fd_guarded(newfd)) && oldfd != newfd && rt_make_room(newfd) != 0) {
		errno = EMFILE;
		return -1;
	}
	if (RT_LIKELY(real_dup3 != NULL))
		return real_dup3(oldfd, newfd, flags);
	long r = rt_sys3(SYS_dup3, oldfd, newfd, flags);
	if (r < 0) {
		errno = (int)-r;
		return -1;
	}
	return (int)r;
}
#endif /* __linux__ */
