/*
 * shim.h — internals shared by the files of librestrack.so, the LD_PRELOAD
 * shim. Not an API: nothing here is exported from the library.
 *
 * Producer: every hook (shim_hooks_*.c) in every thread of a traced process,
 * also from signal handlers and before the shim's constructor ran. Consumer:
 * the collector, through the ring (ring_producer.c) or, in FIFO mode, through
 * one write(2) per record to a named pipe. When the transport is missing,
 * full or its reader dead, records are dropped (counted in the ring header in
 * ring mode) and the traced program runs exactly as it would without the shim:
 * the hooks always call the real function and hand back its result and errno.
 * docs/shim.md explains the design; ring_abi.h is the record layout.
 */
#ifndef RESTRACK_SHIM_H
#define RESTRACK_SHIM_H

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ring_abi.h"
#include "rt_rendezvous.h"

#define RT_EXPORT __attribute__((visibility("default")))
#define RT_HIDDEN __attribute__((visibility("hidden")))
/* The open path's functions, grouped in .text.hot: after the open's system
 * call the program's instruction cache and TLB are cold, and fewer code
 * lines and pages to fetch back show in every traced call. */
#define RT_HOT __attribute__((hot))
#define RT_LIKELY(x) __builtin_expect(!!(x), 1)
#define RT_UNLIKELY(x) __builtin_expect(!!(x), 0)
/* Thread-locals use the initial-exec model: the shim is loaded at start-up
 * (LD_PRELOAD), so its TLS is static and reading it never calls
 * __tls_get_addr, which may allocate and is not async-signal-safe. */
#define RT_TLS __thread __attribute__((tls_model("initial-exec")))

/* The environment contract (docs/shim.md). */
#define RT_ENV_RING "RESTRACK_RING"
#define RT_ENV_MODE "RESTRACK_MODE"
#define RT_ENV_FIFO "RESTRACK_FIFO"
#define RT_ENV_FULL_WAIT "RESTRACK_FULL_WAIT_US"
/* The collector's rendezvous socket (default RT_RDV_DEFAULT_SOCKET). */
#define RT_ENV_SOCKET "RESTRACK_SOCKET"
/* "1": say on stderr, once, why this process is not traced. */
#define RT_ENV_DEBUG "RESTRACK_DEBUG"
/* Set by the exec hooks for the next image only ("pid:start_ns"), removed
 * from the environment by that image's shim before main: it tells a process
 * record after exec (PROC_EXEC) from one at a fresh start (PROC_START). */
#define RT_ENV_EXEC_MARK "RESTRACK_EXEC_FROM"

/* Lengths of the buffers that hold a resolved path: base + '/' + path, each
 * up to RT_PATH_MAX bytes, so nothing is ever cut. */
#define RT_RESOLVED_MAX (2 * RT_PATH_MAX + 2)

/* ---- raw system calls (never through an interposable libc symbol) ---- */
long rt_sys(long nr, long a1, long a2, long a3, long a4, long a5, long a6) RT_HIDDEN;
#define rt_sys0(n) rt_sys((n), 0, 0, 0, 0, 0, 0)
#define rt_sys1(n, a) rt_sys((n), (long)(a), 0, 0, 0, 0, 0)
#define rt_sys2(n, a, b) rt_sys((n), (long)(a), (long)(b), 0, 0, 0, 0)
#define rt_sys3(n, a, b, c) rt_sys((n), (long)(a), (long)(b), (long)(c), 0, 0, 0)
#define rt_sys4(n, a, b, c, d) rt_sys((n), (long)(a), (long)(b), (long)(c), (long)(d), 0, 0)

/* ---- state ---- */
enum { RT_ST_UNINIT = 0, RT_ST_INITIALIZING = 1, RT_ST_READY = 2, RT_ST_OFF = 3 };
extern int rt_state RT_HIDDEN;
/* Non-zero while this thread runs shim code that might call hooked
 * functions (initialisation, symbol resolution): nested hooks then only
 * forward. */
extern RT_TLS int rt_in_shim RT_HIDDEN;

void rt_lazy_init(void) RT_HIDDEN;

/* True when hooks should record: the shim is attached to a transport and
 * this thread is not inside the shim's own code. Initialises on first use,
 * so hooks called before the constructor (from other libraries'
 * constructors) are recorded too. */
static inline int rt_active(void)
{
	int st = __atomic_load_n(&rt_state, __ATOMIC_ACQUIRE);
	if (RT_LIKELY(st == RT_ST_READY))
		return !rt_in_shim;
	if (st == RT_ST_UNINIT && !rt_in_shim) {
		rt_lazy_init();
		return __atomic_load_n(&rt_state, __ATOMIC_ACQUIRE) == RT_ST_READY;
	}
	return 0;
}

/* Every libc function the shim interposes (except vfork, an assembly
 * trampoline). The real definitions are looked up with dlsym(RTLD_NEXT)
 * once, in the constructor, or on first use when a hook runs earlier. */
#define RT_SYMS(X)                                                                     \
	X(open) X(open64) X(openat) X(openat64) X(creat) X(creat64) X(__open_2)           \
	X(__open64_2) X(__openat_2) X(__openat64_2) X(fopen) X(fopen64) X(freopen)        \
	X(freopen64) X(tmpfile) X(tmpfile64) X(mkstemp) X(mkstemp64) X(mkostemp)          \
	X(mkostemp64) X(mkstemps) X(mkstemps64) X(mkostemps) X(mkostemps64) X(mkdtemp)    \
	X(opendir) X(rename) X(renameat) X(renameat2) X(link) X(linkat) X(symlink)        \
	X(symlinkat) X(unlink) X(unlinkat) X(remove) X(rmdir) X(mkdir) X(mkdirat)         \
	X(mknod) X(mknodat) X(mkfifo) X(mkfifoat) X(truncate) X(truncate64) X(syscall)    \
	X(execve) X(execv) X(execvp) X(execvpe) X(fexecve) X(execveat) X(posix_spawn)     \
	X(posix_spawnp) X(fork) X(clone) X(system) X(popen) X(chdir) X(fchdir) X(bind)    \
	X(connect) X(shm_open) X(shm_unlink) X(mq_open) X(mq_unlink) X(dlopen) X(vfork)    \
	X(exit) X(_exit) X(_Exit) RT_SYMS_COVERAGE(X) RT_SYMS_FDGUARD(X) RT_SYMS_NET(X)

/* Appended by the coverage work (lookups, semaphores, seccomp): kept apart
 * so that concurrent additions above merge cleanly. */
#define RT_SYMS_COVERAGE(X)                                                            \
	X(sem_open) X(sem_unlink) X(stat) X(lstat) X(fstatat) X(stat64) X(lstat64)        \
	X(fstatat64) X(__xstat) X(__lxstat) X(__fxstatat) X(__xstat64) X(__lxstat64)      \
	X(__fxstatat64) X(access) X(faccessat) X(statx) X(readlink) X(readlinkat) X(prctl)   \
	X(posix_spawn_file_actions_addopen)
/* The fd guard's (shim_fdguard.c). */
#define RT_SYMS_FDGUARD(X) X(close) X(close_range) X(closefrom) X(dup2) X(dup3)

/* Appended by the network work (shim_hooks_net.c), kept apart likewise. */
#define RT_SYMS_NET(X) X(socket) X(listen) X(accept) X(accept4) X(sendto) X(sendmsg)

enum rt_sym {
#define RT_SYM_ENUM(n) RT_SYM_##n,
	RT_SYMS(RT_SYM_ENUM)
#undef RT_SYM_ENUM
	RT_SYM_COUNT
};
extern void *rt_real_tab[RT_SYM_COUNT] RT_HIDDEN;
void *rt_resolve_sym(enum rt_sym i) RT_HIDDEN;
void rt_resolve_all(void) RT_HIDDEN;

static inline void *rt_real_get(enum rt_sym i)
{
	void *p = __atomic_load_n(&rt_real_tab[i], __ATOMIC_RELAXED);
	return RT_LIKELY(p != NULL) ? p : rt_resolve_sym(i);
}
/* Declares real_fn, the next definition of fn (NULL if there is none). */
#define RT_REAL(fn) __typeof__(&fn) real_##fn = (__typeof__(&fn))rt_real_get(RT_SYM_##fn)

/* ---- the shim's own descriptors (shim_fdguard.c) ---- */

/* Descriptors the program must not close or overwrite (-1 when unused).
 * They live at RT_HIGH_FD_BASE or above when the fd limit allows. */
#define RT_GUARDED_MAX 3
#define RT_GUARD_FIFO_W 0 /* FIFO mode's write end */
#define RT_GUARD_FIFO_R 1 /* FIFO mode's read end, never read */
#define RT_GUARD_RING 2   /* the ring's fd, lent to the next image at exec */
#define RT_HIGH_FD_BASE 600
extern int rt_guarded_fds[RT_GUARDED_MAX] RT_HIDDEN;

static inline int rt_fd_guarded(int fd)
{
	return fd >= 0 && (fd == __atomic_load_n(&rt_guarded_fds[0], __ATOMIC_RELAXED) ||
			   fd == __atomic_load_n(&rt_guarded_fds[1], __ATOMIC_RELAXED) ||
			   fd == __atomic_load_n(&rt_guarded_fds[2], __ATOMIC_RELAXED));
}

/* ---- the rendezvous (shim_rendezvous.c) ---- */

struct rt_rdv_result {
	int32_t status;     /* the collector's: 0 or an errno-like code */
	uint32_t uid;       /* the uid the collector verified */
	uint64_t start_ns;  /* the process's start as the collector read it; 0 if unknown */
	uint32_t text_len;
	const char *why;    /* why no ring (for RESTRACK_DEBUG), NULL on success */
	int err;            /* errno of the failing step */
	char text[RT_RDV_TEXT_MAX + 1]; /* the executable, or the collector's reason */
};

/* Registers with the collector at path; returns the ring's fd (the caller
 * maps and closes it) or -1 with res->why set. */
int rt_rdv_register(const char *path, int secure, struct rt_rdv_result *res) RT_HIDDEN;

/* ---- recording ---- */

/* One event. Paths are as the call received them; dirfd is AT_FDCWD or the
 * directory fd of an *at call. */
struct rt_call {
	uint16_t op;
	uint8_t access;
	uint16_t rflags;
	int32_t result;
	uint32_t flags;
	uint32_t mode;
	int dirfd1;
	const char *path1;
	int dirfd2;
	const char *path2;
	const char *extra; /* str3, verbatim (a command line); may be NULL */
	int32_t as_pid;       /* non-zero: recorded as this child of ours (posix_spawn's file actions) */
	uint64_t as_start_ns; /* that child's start time */
	int path1_raw;     /* path1 is stored verbatim (a library name searched by the loader) */
	int path2_raw;     /* path2 is stored verbatim, not resolved */
};

/* Records one event. Preserves errno. */
void rt_emit(const struct rt_call *c) RT_HIDDEN;

/* The hot path: one path, resolved against dirfd. Preserves errno. */
void rt_emit1(uint16_t op, uint8_t access, uint32_t flags, uint32_t mode, int32_t result, int dirfd,
	      const char *path) RT_HIDDEN;

/* An event without a path (fork, clone). Preserves errno. */
void rt_emit0(uint16_t op, uint8_t access, uint32_t flags, int32_t result) RT_HIDDEN;

/* Records the path an fd refers to (/proc/self/fd/N). Preserves errno. */
void rt_emit_fd(uint16_t op, uint8_t access, uint32_t flags, uint32_t mode, int32_t result, int fd) RT_HIDDEN;

/* result as the ABI stores it: the return value, or -errno on failure. */
static inline int32_t rt_result(long ret, int err) { return ret < 0 ? -err : (int32_t)ret; }

/* Write = O_WRONLY/O_RDWR/O_CREAT/O_TRUNC/O_APPEND (or O_TMPFILE); else
 * read. Inline: it is on every open's path. */
static inline uint8_t rt_open_access(int flags)
{
	if ((flags & O_ACCMODE) != O_RDONLY || (flags & (O_CREAT | O_TRUNC | O_APPEND)))
		return RT_ACCESS_WRITE;
#ifdef O_TMPFILE
	if ((flags & O_TMPFILE) == O_TMPFILE)
		return RT_ACCESS_WRITE;
#endif
	return RT_ACCESS_READ;
}

/* Resolves path against dirfd into buf (RT_RESOLVED_MAX bytes) when it is
 * relative. Returns the absolute path (path itself when already absolute),
 * its length in *len and RT_RF_UNRESOLVED in *rflags when the base was
 * unknown. Async-signal-safe. */
const char *rt_resolve_path(int dirfd, const char *path, char *buf, uint32_t *len, uint16_t *rflags) RT_HIDDEN;

/* The cwd cache must be refreshed after chdir/fchdir. */
void rt_cwd_invalidate(void) RT_HIDDEN;
/* Bumped by every chdir/fchdir: a relative path names another file after. */
uint64_t rt_cwd_epoch_now(void) RT_HIDDEN;

/* ---- processes ---- */

/* Refreshes the process identity in a child after fork (idempotent) and
 * records PROC_FORK. Called from the atfork handler, the fork hook and the
 * clone wrapper. */
void rt_after_fork_child(void) RT_HIDDEN;
/* Called by the forking thread just before fork/clone: lets the child
 * learn its start time without /proc (shim_core.c). */
void rt_before_fork(void) RT_HIDDEN;
/* Records this process's end (once; not for a vfork child). */
void rt_note_exit(int status) RT_HIDDEN;

/* Prepares envp for an exec: re-inserts LD_PRELOAD and RESTRACK_* if
 * missing and adds the exec marker. out must hold rt_env_count(envp) +
 * RT_ENV_EXTRA entries; strbuf rt_env_strbuf_size(envp) bytes (at most
 * RT_ENV_STRBUF). Returns out, or envp unchanged when the shim is off. */
#define RT_ENV_EXTRA 8
#define RT_ENV_STRBUF (3 * RT_PATH_MAX + 256)
size_t rt_env_count(char *const envp[]) RT_HIDDEN;
/* The bytes of strbuf rt_env_for_exec needs for envp: the marker, plus a
 * rewritten LD_PRELOAD when envp has one. An exec from a forked child
 * then puts a few hundred bytes on the stack instead of 12 KiB, whose
 * pages the child would fault in one by one. */
size_t rt_env_strbuf_size(char *const envp[]) RT_HIDDEN;
/* Whether envp already holds everything rt_env_for_exec would add (the
 * marker aside). */
int rt_env_complete(char *const envp[]) RT_HIDDEN;
char **rt_env_for_exec(char *const envp[], char **out, char *strbuf, size_t size) RT_HIDDEN;
/* A copy of the ring's fd for the next image (not close-on-exec), or -1;
 * the caller closes it if the exec fails. */
int rt_exec_ring_fd(void) RT_HIDDEN;
/* Names fd in the exec marker that rt_env_for_exec put last in env. */
void rt_exec_mark_fd(char **env, int fd) RT_HIDDEN;

/* Finds file on PATH like execvp does, for recording the binary's absolute
 * path. Returns file itself (and sets RT_RF_UNRESOLVED) if not found. */
const char *rt_search_path(const char *file, char *buf, uint16_t *rflags) RT_HIDDEN;

/* Fresh pid/tid (syscalls): for exec hooks, which may run in a vfork child
 * sharing the parent's memory and thread-locals. */
void rt_emit_fresh(const struct rt_call *c) RT_HIDDEN;

/* This process's pid as the shim knows it (refreshed after fork): no
 * system call. */
int32_t rt_self_pid(void) RT_HIDDEN;
/* Non-zero once a seccomp filter may be in force: inherited (found by
 * rt_seccomp_probe at init), installed through the prctl or syscall hooks,
 * or betrayed by an EPERM from the shim's own readlinkat. From then on the
 * shim makes no system call beyond those the program's own call made:
 * paths that would need /proc/self/fd or getcwd stay relative, flagged
 * RT_RF_UNRESOLVED | RT_RF_SANDBOXED and counted. */
extern int rt_sandboxed RT_HIDDEN;
/* What the shim's /proc and getcwd readers return instead of asking. */
#define RT_ERR_SANDBOXED (-4095)
void rt_sandbox_enter(void) RT_HIDDEN;
void rt_seccomp_probe(void) RT_HIDDEN;
/* Set by the vfork hook in the calling thread: records made while it is
 * set check whether they come from the vfork child (shim_core.c). */
extern RT_TLS int rt_vfork_pending RT_HIDDEN;
/* ppid and start time of another process (/proc/PID/stat). 0 or -1. */
int rt_read_stat_pid(int32_t pid, int32_t *ppid, uint64_t *start_ns) RT_HIDDEN;
/* Counts a failure of the shim's own in the ring header's producer_errors. */
void rt_count_error(void) RT_HIDDEN;

/* Small helpers (async-signal-safe, no libc locale or stdio). */
size_t rt_strlen(const char *s) RT_HIDDEN;
char *rt_utoa(char *out, uint64_t v) RT_HIDDEN; /* returns the end (no NUL) */

extern char **environ;

#endif /* RESTRACK_SHIM_H */
