/*
 * rt_raw_syscall.h — system calls made with one instruction, no libc.
 *
 * Code running inside a traced program's hooks must not call libc for its
 * own system calls: libc's syscall() is the shim's own exported hook
 * (LD_DEBUG=bindings shows the binding), before the constructor it may
 * dlsym, and libc's nanosleep, poll and friends are cancellation points — a
 * thread with a pending cancel would be cancelled inside the call the
 * program made. These helpers issue the trap directly: they never touch
 * errno, never act on cancellation and never re-enter a hook.
 *
 * Results follow the kernel's convention on every platform: a value >= 0,
 * or -errno. Supported: Linux and FreeBSD on x86_64 and aarch64. Elsewhere
 * every call answers -ENOSYS, and callers degrade (the consumer then polls;
 * a full-ring wait spins on the clock for its bounded time).
 */
#ifndef RESTRACK_RT_RAW_SYSCALL_H
#define RESTRACK_RT_RAW_SYSCALL_H

#include <errno.h>

#if defined(__linux__) && (defined(__x86_64__) || defined(__aarch64__))
#define RT_RAW_SYSCALL_LINUX 1
#elif defined(__FreeBSD__) && (defined(__x86_64__) || defined(__aarch64__))
#define RT_RAW_SYSCALL_FREEBSD 1
#endif

static inline __attribute__((always_inline)) long rt_raw_syscall6(long nr, long a1, long a2, long a3, long a4,
								  long a5, long a6)
{
#if defined(RT_RAW_SYSCALL_LINUX) && defined(__x86_64__)
	long ret;
	register long r10 __asm__("r10") = a4;
	register long r8 __asm__("r8") = a5;
	register long r9 __asm__("r9") = a6;
	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(nr), "D"(a1), "S"(a2), "d"(a3), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	return ret;
#elif defined(RT_RAW_SYSCALL_LINUX) && defined(__aarch64__)
	register long x8 __asm__("x8") = nr;
	register long x0 __asm__("x0") = a1;
	register long x1 __asm__("x1") = a2;
	register long x2 __asm__("x2") = a3;
	register long x3 __asm__("x3") = a4;
	register long x4 __asm__("x4") = a5;
	register long x5 __asm__("x5") = a6;
	__asm__ volatile("svc 0"
			 : "+r"(x0)
			 : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5)
			 : "memory");
	return x0;
#elif defined(RT_RAW_SYSCALL_FREEBSD) && defined(__x86_64__)
	/* platform: FreeBSD reports an error with the carry flag set and the
	 * positive errno in rax; it may clobber the argument registers. */
	register long rax __asm__("rax") = nr;
	register long rdi __asm__("rdi") = a1;
	register long rsi __asm__("rsi") = a2;
	register long rdx __asm__("rdx") = a3;
	register long r10 __asm__("r10") = a4;
	register long r8 __asm__("r8") = a5;
	register long r9 __asm__("r9") = a6;
	unsigned char failed;
	__asm__ volatile("syscall\n\tsetc %1"
			 : "+r"(rax), "=r"(failed), "+r"(rdi), "+r"(rsi), "+r"(rdx), "+r"(r10), "+r"(r8), "+r"(r9)
			 :
			 : "rcx", "r11", "memory", "cc");
	return failed ? -rax : rax;
#elif defined(RT_RAW_SYSCALL_FREEBSD) && defined(__aarch64__)
	/* platform: as on x86_64, the carry flag says x0 holds an errno. */
	register long x8 __asm__("x8") = nr;
	register long x0 __asm__("x0") = a1;
	register long x1 __asm__("x1") = a2;
	register long x2 __asm__("x2") = a3;
	register long x3 __asm__("x3") = a4;
	register long x4 __asm__("x4") = a5;
	register long x5 __asm__("x5") = a6;
	long failed;
	__asm__ volatile("svc 0\n\tcset %1, cs"
			 : "+r"(x0), "=r"(failed), "+r"(x1), "+r"(x2), "+r"(x3), "+r"(x4), "+r"(x5)
			 : "r"(x8)
			 : "memory", "cc");
	return failed ? -x0 : x0;
#else
	(void)nr, (void)a1, (void)a2, (void)a3, (void)a4, (void)a5, (void)a6;
	return -ENOSYS;
#endif
}

#define rt_raw_syscall0(nr) rt_raw_syscall6((nr), 0, 0, 0, 0, 0, 0)
#define rt_raw_syscall1(nr, a) rt_raw_syscall6((nr), (long)(a), 0, 0, 0, 0, 0)
#define rt_raw_syscall2(nr, a, b) rt_raw_syscall6((nr), (long)(a), (long)(b), 0, 0, 0, 0)
#define rt_raw_syscall3(nr, a, b, c) rt_raw_syscall6((nr), (long)(a), (long)(b), (long)(c), 0, 0, 0)
#define rt_raw_syscall4(nr, a, b, c, d) rt_raw_syscall6((nr), (long)(a), (long)(b), (long)(c), (long)(d), 0, 0)

#endif /* RESTRACK_RT_RAW_SYSCALL_H */
