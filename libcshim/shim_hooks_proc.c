/*
 * shim_hooks_proc.c — hooks of process creation and the working directory:
 * the exec family, posix_spawn, fork, vfork, clone, system, popen, chdir and
 * fchdir.
 *
 * Producer: these hooks. Consumer: the collector via rt_emit* (shim_core.c).
 * Exec hooks record the binary (a read) before the call, because a
 * successful exec never returns; a failed one records a second event with
 * -errno. They hand the new image an environment that still carries
 * LD_PRELOAD and RESTRACK_* (re-inserted when the program removed them) so
 * children stay traced, plus a one-shot marker telling the next image's shim
 * that this is an exec. Nothing here allocates: the new environment lives
 * on the stack. Failure to record never changes what the call does.
 */
#undef _FORTIFY_SOURCE
#include "shim.h"

#include <fcntl.h>
#include <sched.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Environments beyond this many entries are passed on untouched rather
 * than copied onto the stack. */
#define RT_ENV_MAX_COPY 65536

enum rt_exec_kind { RT_X_EXECVE, RT_X_EXECVPE, RT_X_FEXECVE, RT_X_EXECVEAT, RT_X_SPAWN, RT_X_SPAWNP };

struct rt_exec {
	enum rt_exec_kind kind;
	uint16_t op;
	int dirfd, fd, flags;
	const char *path;
	char *const *argv;
	char *const *envp;
	pid_t *pid;
	const posix_spawn_file_actions_t *fa;
	const posix_spawnattr_t *attr;
};

/* Records the executed binary (a read) with result. */
/* The PATH search's buffer is on the stack of the exec*p calls only: an
 * execve from a forked child (a shell's every command) keeps its stack
 * shallow, each page of it a fault in the child. */
static __attribute__((noinline)) void rt_rec_exec_search(struct rt_call *c, const char *file)
{
	char sbuf[RT_PATH_MAX + 1];
	c->path1 = rt_search_path(file, sbuf, &c->rflags);
	rt_emit_fresh(c);
}

static void rt_rec_exec(const struct rt_exec *x, int32_t result)
{
	struct rt_call c = {.op = x->op, .access = RT_ACCESS_READ, .result = result, .flags = (uint32_t)x->flags,
			    .dirfd1 = x->dirfd};
	if (x->kind == RT_X_FEXECVE) {
		rt_emit_fd(x->op, RT_ACCESS_READ, 0, 0, result, x->fd);
		return;
	}
	if (x->kind == RT_X_EXECVPE || x->kind == RT_X_SPAWNP) {
		rt_rec_exec_search(&c, x->path);
		return;
	}
	c.path1 = x->path;
	rt_emit_fresh(&c);
}

static int rt_call_exec(const struct rt_exec *x, char *const *env)
{
	switch (x->kind) {
	case RT_X_EXECVE: {
		RT_REAL(execve);
		if (real_execve)
			return real_execve(x->path, x->argv, env);
		long r = rt_sys3(SYS_execve, x->path, x->argv, env);
		errno = (int)-r;
		return -1;
	}
	case RT_X_EXECVPE: {
		RT_REAL(execvpe);
		if (real_execvpe)
			return real_execvpe(x->path, x->argv, env);
		break;
	}
	case RT_X_FEXECVE: {
		RT_REAL(fexecve);
		if (real_fexecve)
			return real_fexecve(x->fd, x->argv, env);
		break;
	}
	case RT_X_EXECVEAT: {
		RT_REAL(execveat);
		if (real_execveat)
			return real_execveat(x->dirfd, x->path, x->argv, env, x->flags);
		long r = rt_sys(SYS_execveat, x->dirfd, (long)x->path, (long)x->argv, (long)env, x->flags, 0);
		errno = (int)-r;
		return -1;
	}
	case RT_X_SPAWN: {
		RT_REAL(posix_spawn);
		if (real_posix_spawn)
			return real_posix_spawn(x->pid, x->path, x->fa, x->attr, x->argv, env);
		return ENOSYS;
	}
	case RT_X_SPAWNP: {
		RT_REAL(posix_spawnp);
		if (real_posix_spawnp)
			return real_posix_spawnp(x->pid, x->path, x->fa, x->attr, x->argv, env);
		return ENOSYS;
	}
	}
	errno = ENOSYS;
	return -1;
}

/*
 * posix_spawn's file actions (addopen, addchdir_np, addfchdir_np) run in
 * the child, inside libc, before its exec: no hook sees those opens. The
 * shim reads them from the file-actions object after a spawn and records
 * each open under the child's pid. The object's action list is glibc's
 * private layout (spawn_int.h, stable since 2.29); it is used only after
 * the addopen hook has checked, on a real action, that the layout is the
 * one below — otherwise the opens stay unrecorded, as before.
 */
struct rt_spawn_action {
	int tag; /* glibc: close, dup2, open, chdir, fchdir, closefrom, tcsetpgrp */
	union {
		struct {
			int fd;
			char *path;
			int oflag;
			mode_t mode;
		} open;
		struct {
			char *path;
		} chdir;
		struct {
			int fd;
		} fchdir;
	} u;
};
enum { RT_SPAWN_OPEN = 2, RT_SPAWN_CHDIR = 3, RT_SPAWN_FCHDIR = 4 };

/* 1: the layout was checked on a real action; -1: it differs. */
static int rt_spawn_layout;

static const struct rt_spawn_action *rt_spawn_actions(const posix_spawn_file_actions_t *fa, int *n)
{
	*n = fa->__used;
	return (const struct rt_spawn_action *)fa->__actions;
}

RT_EXPORT int posix_spawn_file_actions_addopen(posix_spawn_file_actions_t *fa, int fd, const char *path, int oflag,
					       mode_t mode)
{
	RT_REAL(posix_spawn_file_actions_addopen);
	if (!real_posix_spawn_file_actions_addopen)
		return ENOSYS;
	int ret = real_posix_spawn_file_actions_addopen(fa, fd, path, oflag, mode);
	if (ret == 0 && __atomic_load_n(&rt_spawn_layout, __ATOMIC_RELAXED) == 0) {
		int n;
		const struct rt_spawn_action *a = rt_spawn_actions(fa, &n);
		int ok = n > 0 && a != NULL && a[n - 1].tag == RT_SPAWN_OPEN && a[n - 1].u.open.fd == fd &&
			 a[n - 1].u.open.oflag == oflag && a[n - 1].u.open.mode == mode && a[n - 1].u.open.path &&
			 __builtin_strcmp(a[n - 1].u.open.path, path) == 0;
		__atomic_store_n(&rt_spawn_layout, ok ? 1 : -1, __ATOMIC_RELAXED);
	}
	return ret;
}

/* Joins base and a relative path into out (RT_RESOLVED_MAX bytes). */
static int rt_spawn_join(char *out, const char *base, const char *path)
{
	size_t bl = rt_strlen(base), pl = rt_strlen(path);
	if (path[0] == '/') {
		if (pl > RT_PATH_MAX)
			return -1;
		__builtin_memcpy(out, path, pl + 1);
		return 0;
	}
	if (bl == 0 || bl + 1 + pl > RT_RESOLVED_MAX - 1)
		return -1;
	__builtin_memcpy(out, base, bl);
	if (out[bl - 1] != '/')
		out[bl++] = '/';
	__builtin_memcpy(out + bl, path, pl + 1);
	return 0;
}

static __attribute__((noinline)) void rt_rec_spawn_actions(const posix_spawn_file_actions_t *fa, int ret, pid_t child)
{
	char cwd[RT_RESOLVED_MAX], path[RT_RESOLVED_MAX];
	uint32_t len = 0;
	uint16_t rf = 0;
	int n, known = 1;
	if (__atomic_load_n(&rt_spawn_layout, __ATOMIC_RELAXED) != 1 || !rt_active())
		return;
	const struct rt_spawn_action *a = rt_spawn_actions(fa, &n);
	if (a == NULL)
		return;
	/* The child starts in our cwd; its chdir actions move it. */
	const char *c = rt_resolve_path(AT_FDCWD, ".", cwd, &len, &rf);
	if (c != cwd || (rf & RT_RF_UNRESOLVED))
		known = 0;
	uint64_t start = 0;
	int32_t ppid = 0;
	if (child > 0)
		rt_read_stat_pid(child, &ppid, &start);
	for (int i = 0; i < n; i++) {
		switch (a[i].tag) {
		case RT_SPAWN_CHDIR:
			if (known && rt_spawn_join(path, cwd, a[i].u.chdir.path) == 0)
				__builtin_memcpy(cwd, path, rt_strlen(path) + 1);
			else
				known = 0;
			break;
		case RT_SPAWN_FCHDIR:
			known = 0; /* a directory fd of the child's: not ours to name */
			break;
		case RT_SPAWN_OPEN: {
			/* Spawn succeeded: every action did. Failed: one of them did,
			 * which one libc does not say — each is recorded failed. */
			const char *p = a[i].u.open.path;
			struct rt_call rc = {.op = RT_OP_SPAWN_OPEN, .access = rt_open_access(a[i].u.open.oflag),
					     .flags = (uint32_t)a[i].u.open.oflag, .mode = (uint32_t)a[i].u.open.mode,
					     .result = ret == 0 ? a[i].u.open.fd : -ret, .dirfd1 = AT_FDCWD,
					     .as_pid = child > 0 ? child : 0, .as_start_ns = start};
			if (p[0] != '/' && known && rt_spawn_join(path, cwd, p) == 0) {
				rc.path1 = path;
			} else {
				rc.path1 = p;
				if (p[0] != '/') {
					rc.path1_raw = 1;
					rc.rflags = RT_RF_UNRESOLVED;
				}
			}
			rt_emit(&rc);
			break;
		}
		}
	}
}

/* The common body of every exec and spawn hook. */
static __attribute__((noinline)) int rt_do_exec(const struct rt_exec *x)
{
	size_t n;
	int active = rt_active(), ret, err;
	int spawn = x->kind == RT_X_SPAWN || x->kind == RT_X_SPAWNP;
	char *const *env = x->envp;

	n = rt_env_count(x->envp);
	if (!active || n > RT_ENV_MAX_COPY)
		return rt_call_exec(x, env);

	char *newenv[n + RT_ENV_EXTRA];
	size_t sbsize = rt_env_strbuf_size(x->envp);
	char strbuf[sbsize];
	env = rt_env_for_exec(x->envp, newenv, strbuf, sbsize);
	if (spawn) {
		/* A spawned child is a new process (PROC_START), not an exec of
		 * this one: drop the exec marker, which is always last. */
		size_t m = rt_env_count(env);
		if (m > 0 && env != x->envp)
			newenv[m - 1] = NULL;
		ret = rt_call_exec(x, env);
		err = errno;
		rt_rec_exec(x, ret == 0 ? (x->pid ? *x->pid : 0) : -ret);
		if (x->fa != NULL)
			rt_rec_spawn_actions(x->fa, ret, ret == 0 && x->pid ? *x->pid : 0);
		errno = err;
		return ret;
	}
	int lent = env != x->envp ? rt_exec_ring_fd() : -1;
	rt_exec_mark_fd((char **)env, lent);
	rt_rec_exec(x, 0);
	ret = rt_call_exec(x, env);
	err = errno;
	if (lent >= 0)
		rt_sys1(SYS_close, lent); /* the exec failed: the copy is ours again */
	rt_rec_exec(x, -err); /* only reached when the exec failed */
	errno = err;
	return ret;
}

RT_EXPORT int execve(const char *path, char *const argv[], char *const envp[])
{
	struct rt_exec x = {.kind = RT_X_EXECVE, .op = RT_OP_EXECVE, .dirfd = AT_FDCWD, .path = path,
			    .argv = argv, .envp = envp};
	return rt_do_exec(&x);
}

RT_EXPORT int execv(const char *path, char *const argv[])
{
	struct rt_exec x = {.kind = RT_X_EXECVE, .op = RT_OP_EXECV, .dirfd = AT_FDCWD, .path = path,
			    .argv = argv, .envp = environ};
	return rt_do_exec(&x);
}

RT_EXPORT int execvp(const char *file, char *const argv[])
{
	struct rt_exec x = {.kind = RT_X_EXECVPE, .op = RT_OP_EXECVP, .dirfd = AT_FDCWD, .path = file,
			    .argv = argv, .envp = environ};
	return rt_do_exec(&x);
}

RT_EXPORT int execvpe(const char *file, char *const argv[], char *const envp[])
{
	struct rt_exec x = {.kind = RT_X_EXECVPE, .op = RT_OP_EXECVPE, .dirfd = AT_FDCWD, .path = file,
			    .argv = argv, .envp = envp};
	return rt_do_exec(&x);
}

RT_EXPORT int fexecve(int fd, char *const argv[], char *const envp[])
{
	struct rt_exec x = {.kind = RT_X_FEXECVE, .op = RT_OP_FEXECVE, .dirfd = AT_FDCWD, .fd = fd,
			    .argv = argv, .envp = envp};
	return rt_do_exec(&x);
}

RT_EXPORT int execveat(int dirfd, const char *path, char *const argv[], char *const envp[], int flags)
{
	struct rt_exec x = {.kind = RT_X_EXECVEAT, .op = RT_OP_EXECVEAT, .dirfd = dirfd, .path = path,
			    .argv = argv, .envp = envp, .flags = flags};
	return rt_do_exec(&x);
}

RT_EXPORT int posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa,
			  const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
	struct rt_exec x = {.kind = RT_X_SPAWN, .op = RT_OP_POSIX_SPAWN, .dirfd = AT_FDCWD, .path = path,
			    .argv = argv, .envp = envp, .pid = pid, .fa = fa, .attr = attr};
	return rt_do_exec(&x);
}

RT_EXPORT int posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *fa,
			   const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
	struct rt_exec x = {.kind = RT_X_SPAWNP, .op = RT_OP_POSIX_SPAWNP, .dirfd = AT_FDCWD, .path = file,
			    .argv = argv, .envp = envp, .pid = pid, .fa = fa, .attr = attr};
	return rt_do_exec(&x);
}

/* glibc declares the first argument nonnull, yet programs pass NULL (an
 * empty argv); hide it from the optimiser so the checks below stay. */
static inline const char *rt_launder(const char *p)
{
	__asm__("" : "+r"(p));
	return p;
}

/* execl and friends: the variadic arguments become an argv on the stack,
 * as glibc itself does. */
#define RT_COUNT_ARGS(arg, last, n)                                \
	do {                                                       \
		va_list ap_;                                       \
		va_start(ap_, last);                               \
		for (n = 1; arg != NULL && va_arg(ap_, char *) != NULL; n++) \
			;                                          \
		va_end(ap_);                                       \
	} while (0)

#define RT_FILL_ARGS(argv, arg, last, n, envp_out)           \
	do {                                                 \
		va_list ap_;                                 \
		va_start(ap_, last);                         \
		argv[0] = (char *)arg;                       \
		for (size_t i_ = 1; i_ <= n; i_++)           \
			argv[i_] = i_ < n ? va_arg(ap_, char *) : NULL; \
		if (arg == NULL)                             \
			argv[1] = NULL;                      \
		envp_out;                                    \
		va_end(ap_);                                 \
	} while (0)

RT_EXPORT int execl(const char *path, const char *arg, ...)
{
	const char *a0 = rt_launder(arg);
	size_t n;
	RT_COUNT_ARGS(a0, arg, n);
	char *argv[n + 1];
	RT_FILL_ARGS(argv, a0, arg, n, (void)0);
	struct rt_exec x = {.kind = RT_X_EXECVE, .op = RT_OP_EXECL, .dirfd = AT_FDCWD, .path = path,
			    .argv = argv, .envp = environ};
	return rt_do_exec(&x);
}

RT_EXPORT int execlp(const char *file, const char *arg, ...)
{
	const char *a0 = rt_launder(arg);
	size_t n;
	RT_COUNT_ARGS(a0, arg, n);
	char *argv[n + 1];
	RT_FILL_ARGS(argv, a0, arg, n, (void)0);
	struct rt_exec x = {.kind = RT_X_EXECVPE, .op = RT_OP_EXECLP, .dirfd = AT_FDCWD, .path = file,
			    .argv = argv, .envp = environ};
	return rt_do_exec(&x);
}

RT_EXPORT int execle(const char *path, const char *arg, ...)
{
	const char *a0 = rt_launder(arg);
	size_t n;
	char *const *envp = NULL;
	RT_COUNT_ARGS(a0, arg, n);
	char *argv[n + 1];
	/* After the NULL that ends the arguments comes envp. */
	RT_FILL_ARGS(argv, a0, arg, n, if (a0 != NULL) {
		(void)va_arg(ap_, char *); /* the terminating NULL */
		envp = va_arg(ap_, char *const *);
	});
	if (a0 == NULL) {
		va_list ap;
		va_start(ap, arg);
		envp = va_arg(ap, char *const *);
		va_end(ap);
	}
	struct rt_exec x = {.kind = RT_X_EXECVE, .op = RT_OP_EXECLE, .dirfd = AT_FDCWD, .path = path,
			    .argv = argv, .envp = envp};
	return rt_do_exec(&x);
}

/* ---- exit ---- */

/* The exit hooks record the status, then leave through the real function
 * (or the raw system call if it cannot be found: a traced program must
 * exit exactly when it asks to). */
RT_EXPORT void exit(int status)
{
	rt_note_exit(status);
	RT_REAL(exit);
	if (real_exit)
		real_exit(status);
	rt_sys1(SYS_exit_group, status);
	__builtin_unreachable();
}

RT_EXPORT void _exit(int status)
{
	rt_note_exit(status);
	RT_REAL(_exit);
	if (real__exit)
		real__exit(status);
	rt_sys1(SYS_exit_group, status);
	__builtin_unreachable();
}

RT_EXPORT void _Exit(int status)
{
	rt_note_exit(status);
	RT_REAL(_Exit);
	if (real__Exit)
		real__Exit(status);
	rt_sys1(SYS_exit_group, status);
	__builtin_unreachable();
}

/* ---- fork, vfork, clone ---- */

RT_EXPORT pid_t fork(void)
{
	RT_REAL(fork);
	if (!real_fork) {
		errno = ENOSYS;
		return -1;
	}
	rt_before_fork();
	pid_t r = real_fork();
	if (r == 0) {
		/* The atfork handler did this already unless fork ran before
		 * the constructor registered it; the call is idempotent. */
		rt_after_fork_child();
		return 0;
	}
	if (rt_active())
		rt_emit0(RT_OP_FORK, RT_ACCESS_NONE, 0, rt_result(r, errno));
	return r;
}

/*
 * vfork cannot be wrapped by a C function: the child would return through
 * (and the parent then resume in) a frame the child has clobbered. The
 * exported vfork is an assembly trampoline that records the call, then
 * jumps to the real vfork with the caller's own return address, so the
 * child returns straight to the caller. The child's exec is recorded by the
 * exec hooks with fresh pid/tid (they share this thread's memory).
 */
RT_HIDDEN void *rt_vfork_prepare(void);

static pid_t rt_vfork_missing(void)
{
	errno = ENOSYS;
	return -1;
}

RT_HIDDEN void *rt_vfork_prepare(void)
{
	int saved = errno;
	void *real = rt_real_get(RT_SYM_vfork);
	if (real == NULL)
		real = rt_real_get(RT_SYM_fork);
	if (real == NULL)
		real = (void *)rt_vfork_missing;
	if (rt_active()) {
		rt_emit0(RT_OP_VFORK, RT_ACCESS_NONE, 0, 0);
		/* The child runs on this thread's memory: what it records (an open
		 * between vfork and exec) must carry its own pid, not ours. */
		rt_vfork_pending = 1;
	}
	errno = saved;
	return real;
}

#if defined(__x86_64__)
__asm__(".text\n"
	".globl vfork\n"
	".type vfork, @function\n"
	"vfork:\n"
	"	sub $8, %rsp\n" /* keep the stack 16-byte aligned for the call */
	"	call rt_vfork_prepare\n"
	"	add $8, %rsp\n"
	"	jmp *%rax\n"
	".size vfork, .-vfork\n");
#elif defined(__aarch64__)
__asm__(".text\n"
	".globl vfork\n"
	".type vfork, %function\n"
	"vfork:\n"
	"	stp x29, x30, [sp, #-16]!\n"
	"	mov x29, sp\n"
	"	bl rt_vfork_prepare\n"
	"	ldp x29, x30, [sp], #16\n"
	"	br x0\n"
	".size vfork, .-vfork\n");
#endif

struct rt_clone_arg {
	int (*fn)(void *);
	void *arg;
};

/* Runs first in a fork-like clone child (its own copy of memory). */
static int rt_clone_child(void *p)
{
	struct rt_clone_arg a = *(struct rt_clone_arg *)p;
	rt_after_fork_child();
	return a.fn(a.arg);
}

RT_EXPORT int clone(int (*fn)(void *), void *stack, int flags, void *arg, ...)
{
	va_list ap;
	va_start(ap, arg);
	pid_t *ptid = va_arg(ap, pid_t *);
	void *tls = va_arg(ap, void *);
	pid_t *ctid = va_arg(ap, pid_t *);
	va_end(ap);
	RT_REAL(clone);
	if (!real_clone) {
		errno = ENOSYS;
		return -1;
	}
	int active = rt_active();
	/* Only a child with its own memory is a new process to announce; a
	 * CLONE_VM child is a thread or a vfork-like child that will exec. The
	 * wrapper's argument lives in this frame, which the child has a copy
	 * of. */
	struct rt_clone_arg ca = {fn, arg};
	int wrap = active && !(flags & CLONE_VM);
	if (wrap)
		rt_before_fork();
	int r = real_clone(wrap ? rt_clone_child : fn, stack, flags, wrap ? (void *)&ca : arg, ptid, tls, ctid);
	if (active)
		rt_emit0(RT_OP_CLONE, RT_ACCESS_NONE, (uint32_t)flags, rt_result(r, errno));
	return r;
}

/* ---- system, popen ---- */

/* The shell is the binary read; the command line goes in str3. Children
 * are recorded by their own shim (PROC_START) with this process as ppid. */
static void rt_rec_shell(uint16_t op, const char *cmd, int32_t result)
{
	struct rt_call c = {.op = op, .access = RT_ACCESS_READ, .result = result, .dirfd1 = AT_FDCWD,
			    .path1 = "/bin/sh", .extra = cmd};
	rt_emit(&c);
}

/*
 * system and popen spawn the shell inside libc (posix_spawn with environ),
 * out of the exec hooks' reach. If the program removed LD_PRELOAD or
 * RESTRACK_* from its environment, environ is pointed at a completed copy
 * (on this stack) for the duration of the call, so the shell and its
 * children stay traced; the program's own environment is untouched
 * afterwards. Done only when something is missing: while environ is
 * swapped, a setenv in another thread would be lost.
 */
#define RT_WITH_FULL_ENV(active, call)                                              \
	do {                                                                        \
		size_t n_ = rt_env_count(environ);                                  \
		if (!(active) || rt_env_complete(environ) || n_ > RT_ENV_MAX_COPY) { \
			call;                                                       \
			break;                                                      \
		}                                                                   \
		char *newenv_[n_ + RT_ENV_EXTRA];                                   \
		char sb_[RT_ENV_STRBUF];                                            \
		char **env_ = rt_env_for_exec(environ, newenv_, sb_, sizeof(sb_));   \
		size_t m_ = rt_env_count(env_);                                     \
		if (m_ > 0)                                                         \
			env_[m_ - 1] = NULL; /* drop the exec marker: a new process */ \
		char **old_ = environ;                                              \
		environ = env_;                                                     \
		call;                                                               \
		int e_ = errno;                                                     \
		environ = old_;                                                     \
		errno = e_;                                                         \
	} while (0)

RT_EXPORT int system(const char *cmd)
{
	RT_REAL(system);
	if (!real_system) {
		errno = ENOSYS;
		return -1;
	}
	int active = rt_active(), ret;
	RT_WITH_FULL_ENV(active, ret = real_system(cmd));
	if (active)
		rt_rec_shell(RT_OP_SYSTEM, cmd, ret == -1 ? -errno : ret);
	return ret;
}

RT_EXPORT FILE *popen(const char *cmd, const char *type)
{
	RT_REAL(popen);
	if (!real_popen) {
		errno = ENOSYS;
		return NULL;
	}
	int active = rt_active();
	FILE *fp;
	RT_WITH_FULL_ENV(active, fp = real_popen(cmd, type));
	if (active)
		rt_rec_shell(RT_OP_POPEN, cmd, fp ? fileno_unlocked(fp) : -errno);
	return fp;
}

/* ---- working directory ---- */

RT_EXPORT int chdir(const char *path)
{
	RT_REAL(chdir);
	if (!real_chdir) {
		errno = ENOSYS;
		return -1;
	}
	int ret = real_chdir(path);
	if (ret == 0)
		rt_cwd_invalidate();
	if (rt_active()) {
		/* On success record the new cwd itself (the path resolved as the
		 * call saw it); on failure, the path against the unchanged cwd. */
		int err = errno;
		rt_emit1(RT_OP_CHDIR, RT_ACCESS_NONE, 0, 0, rt_result(ret, err), AT_FDCWD, ret == 0 ? "." : path);
	}
	return ret;
}

RT_EXPORT int fchdir(int fd)
{
	RT_REAL(fchdir);
	if (!real_fchdir) {
		errno = ENOSYS;
		return -1;
	}
	int ret = real_fchdir(fd);
	if (ret == 0)
		rt_cwd_invalidate();
	if (rt_active())
		rt_emit_fd(RT_OP_FCHDIR, RT_ACCESS_NONE, 0, 0, rt_result(ret, errno), fd);
	return ret;
}
