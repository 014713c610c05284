/*
 * probe.c — calls one family of hooked libc functions, for the shim tests
 * (libcshim/shimtest). Usage: probe CASE DIR [EXTRA...]. It changes into
 * DIR, makes the calls of CASE (relative and absolute paths, successes and
 * failures) and prints one line per call: "CALL <op> <result>", where result
 * is what the ring record must carry (the return value, or -errno). The
 * tests run it with and without the shim and require identical output
 * (return values and errno untouched), then match each CALL line against a
 * record. Exit status 0 unless the program itself misbehaves.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/openat2.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>

int __open_2(const char *, int);
int __open64_2(const char *, int);
int __openat_2(int, const char *, int);
int __openat64_2(int, const char *, int);

static const char *self; /* this binary, absolute */
static const char *dir;
static const char *extra; /* argv[3], when a case takes one */

/* Runs one call and prints the value its record's result must hold: the
 * return value, or -errno on failure. */
#define CALL(op, expr)                                  \
	do {                                            \
		errno = 0;                              \
		long r_ = (long)(expr);                 \
		long v_ = r_ < 0 ? -(long)errno : r_;   \
		printf("CALL %s %ld errno=%d\n", op, v_, r_ < 0 ? errno : 0); \
	} while (0)
/* For calls returning a pointer: result is the fd (or 0) / -errno. */
#define CALLP(op, ptr, okval)                                          \
	do {                                                           \
		errno = 0;                                             \
		void *p_ = (void *)(ptr);                              \
		int e_ = errno;                                        \
		printf("CALL %s %ld errno=%d\n", op, p_ ? (long)(okval) : -(long)e_, p_ ? 0 : e_); \
	} while (0)

/* Marks the end of a case's setup: the tests match records after it. */
static void begin(void)
{
	int fd = open("/RT-BEGIN", O_RDONLY);
	if (fd >= 0)
		close(fd);
}

static void closeit(long fd)
{
	if (fd >= 0)
		close((int)fd);
}

static int c_open(void)
{
	int fd;
	begin();
	CALL("open", fd = open("a.txt", O_CREAT | O_WRONLY | O_TRUNC, 0640));
	closeit(fd);
	CALL("open", fd = open("a.txt", O_RDONLY));
	closeit(fd);
	CALL("open", fd = open("missing/none", O_RDONLY));
	CALL("open64", fd = open64("./a.txt", O_RDWR));
	closeit(fd);
	return 0;
}

static int c_openat(void)
{
	int d = open(".", O_RDONLY | O_DIRECTORY), fd;
	mkdir("sub", 0755);
	int s = open("sub", O_RDONLY | O_DIRECTORY);
	begin();
	CALL("openat", fd = openat(s, "b.txt", O_CREAT | O_WRONLY, 0600));
	closeit(fd);
	CALL("openat", fd = openat(AT_FDCWD, "sub/b.txt", O_RDONLY));
	closeit(fd);
	CALL("openat64", fd = openat64(s, "b.txt", O_RDONLY | O_APPEND));
	closeit(fd);
	CALL("openat64", fd = openat64(s, "nope", O_RDONLY));
	close(s);
	close(d);
	return 0;
}

static int c_creat(void)
{
	int fd;
	begin();
	CALL("creat", fd = creat("c.txt", 0644));
	closeit(fd);
	CALL("creat64", fd = creat64("c64.txt", 0644));
	closeit(fd);
	CALL("creat", fd = creat("nodir/c.txt", 0644));
	return 0;
}

static int c_fortify(void)
{
	int fd, s;
	close(open("f.txt", O_CREAT | O_WRONLY, 0644));
	mkdir("sub", 0755);
	s = open("sub", O_RDONLY | O_DIRECTORY);
	begin();
	CALL("__open_2", fd = __open_2("f.txt", O_RDONLY));
	closeit(fd);
	CALL("__open64_2", fd = __open64_2("f.txt", O_WRONLY | O_APPEND));
	closeit(fd);
	CALL("__openat_2", fd = __openat_2(s, "..", O_RDONLY | O_DIRECTORY));
	closeit(fd);
	CALL("__openat64_2", fd = __openat64_2(AT_FDCWD, "missing", O_RDONLY));
	close(s);
	return 0;
}

static int c_stdio(void)
{
	FILE *f, *g;
	begin();
	CALLP("fopen", f = fopen("s.txt", "w"), fileno(f));
	if (f) {
		fputs("hello\n", f);
		fclose(f);
	}
	CALLP("fopen", f = fopen("s.txt", "r"), fileno(f));
	CALLP("freopen", g = freopen("s.txt", "a+", f), fileno(g));
	if (g)
		fclose(g);
	CALLP("fopen64", f = fopen64("s.txt", "re"), fileno(f));
	CALLP("freopen64", g = freopen64("/nonexistent/x", "r", f), fileno(g));
	CALLP("fopen", f = fopen("missing.txt", "r"), 0);
	return 0;
}

static int c_tmp(void)
{
	char t1[] = "tmpXXXXXX", t2[] = "tmpXXXXXX.c", t3[] = "dXXXXXX", t4[] = "tmpXXXXXX", t5[] = "zXXXXXX.s";
	char t6[] = "q64XXXXXX", t7[] = "p64XXXXXX", t8[] = "o64XXXXXX.x", t9[] = "n64XXXXXX.y";
	int fd;
	FILE *f;
	begin();
	CALL("mkstemp", fd = mkstemp(t1));
	closeit(fd);
	printf("NAME %s\n", t1);
	CALL("mkstemps", fd = mkstemps(t2, 2));
	closeit(fd);
	printf("NAME %s\n", t2);
	CALL("mkostemp", fd = mkostemp(t4, O_CLOEXEC));
	closeit(fd);
	printf("NAME %s\n", t4);
	CALL("mkostemps", fd = mkostemps(t5, 2, O_APPEND));
	closeit(fd);
	printf("NAME %s\n", t5);
	CALL("mkstemp64", fd = mkstemp64(t6));
	closeit(fd);
	printf("NAME %s\n", t6);
	CALL("mkostemp64", fd = mkostemp64(t7, 0));
	closeit(fd);
	printf("NAME %s\n", t7);
	CALL("mkstemps64", fd = mkstemps64(t8, 2));
	closeit(fd);
	printf("NAME %s\n", t8);
	CALL("mkostemps64", fd = mkostemps64(t9, 2, 0));
	closeit(fd);
	printf("NAME %s\n", t9);
	CALLP("mkdtemp", mkdtemp(t3), 0);
	printf("NAME %s\n", t3);
	CALLP("tmpfile", f = tmpfile(), fileno(f));
	if (f)
		fclose(f);
	CALLP("tmpfile64", f = tmpfile64(), fileno(f));
	if (f)
		fclose(f);
	char bad[] = "noXs";
	CALL("mkstemp", mkstemp(bad));
	return 0;
}

static int c_opendir(void)
{
	DIR *d;
	mkdir("dd", 0755);
	begin();
	CALLP("opendir", d = opendir("dd"), dirfd(d));
	if (d)
		closedir(d);
	CALLP("opendir", d = opendir("nodir"), 0);
	return 0;
}

static int c_namespace(void)
{
	int d;
	close(open("n1", O_CREAT | O_WRONLY, 0644));
	mkdir("nd", 0755);
	d = open("nd", O_RDONLY | O_DIRECTORY);
	begin();
	CALL("rename", rename("n1", "n2"));
	CALL("renameat", renameat(AT_FDCWD, "n2", d, "n3"));
	CALL("renameat2", renameat2(d, "n3", AT_FDCWD, "n4", RENAME_NOREPLACE));
	CALL("link", link("n4", "n5"));
	CALL("linkat", linkat(AT_FDCWD, "n5", d, "n6", 0));
	CALL("symlink", symlink("n4", "s1"));
	CALL("symlinkat", symlinkat("../n4", d, "s2"));
	CALL("unlink", unlink("s1"));
	CALL("unlinkat", unlinkat(d, "s2", 0));
	CALL("remove", remove("n5"));
	CALL("mkdir", mkdir("m1", 0750));
	CALL("mkdirat", mkdirat(d, "m2", 0700));
	CALL("rmdir", rmdir("m1"));
	CALL("unlinkat", unlinkat(d, "m2", AT_REMOVEDIR));
	CALL("mkfifo", mkfifo("ff", 0600));
	CALL("mkfifoat", mkfifoat(d, "ff2", 0600));
	CALL("mknod", mknod("nod", S_IFREG | 0600, 0));
	CALL("mknodat", mknodat(d, "nod2", S_IFREG | 0600, 0));
	CALL("truncate", truncate("n4", 0));
	CALL("truncate64", truncate64("n4", 1));
	CALL("rename", rename("missing", "x"));
	CALL("unlink", unlink("missing"));
	close(d);
	return 0;
}

static int c_syscall(void)
{
	struct open_how how = {.flags = O_CREAT | O_WRONLY, .mode = 0600};
	long fd;
	begin();
	CALL("syscall(openat2)", fd = syscall(SYS_openat2, AT_FDCWD, "o2", &how, sizeof(how)));
	closeit(fd);
	how.flags = O_RDONLY;
	how.mode = 0;
	CALL("syscall(openat2)", fd = syscall(SYS_openat2, AT_FDCWD, "missing", &how, sizeof(how)));
	CALL("syscall(renameat2)", syscall(SYS_renameat2, AT_FDCWD, "o2", AT_FDCWD, "o3", 0));
	/* Any other syscall passes through untouched. */
	printf("getpid-ok %d\n", (pid_t)syscall(SYS_getpid) == getpid());
	return 0;
}

static int c_chdir(void)
{
	int fd, d;
	mkdir("cd1", 0755);
	mkdir("cd2", 0755);
	d = open("cd2", O_RDONLY | O_DIRECTORY);
	begin();
	CALL("chdir", chdir("cd1"));
	CALL("open", fd = open("x", O_CREAT | O_WRONLY, 0600)); /* DIR/cd1/x */
	closeit(fd);
	CALL("fchdir", fchdir(d));
	CALL("open", fd = open("y", O_CREAT | O_WRONLY, 0600)); /* DIR/cd2/y */
	closeit(fd);
	CALL("chdir", chdir("nonexistent"));
	close(d);
	return 0;
}

static int c_ipc(void)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	int s = socket(AF_UNIX, SOCK_STREAM, 0), c = socket(AF_UNIX, SOCK_STREAM, 0), fd;
	char name[64];
	snprintf(a.sun_path, sizeof(a.sun_path), "sock");
	begin();
	CALL("bind", bind(s, (struct sockaddr *)&a, sizeof(a)));
	listen(s, 1);
	CALL("connect", connect(c, (struct sockaddr *)&a, sizeof(a)));
	close(c);
	close(s);
	snprintf(name, sizeof(name), "/rt-probe-%d", getpid());
	CALL("shm_open", fd = shm_open(name, O_CREAT | O_RDWR, 0600));
	closeit(fd);
	CALL("shm_unlink", shm_unlink(name));
	struct mq_attr at = {.mq_maxmsg = 1, .mq_msgsize = 8};
	mqd_t q;
	CALL("mq_open", q = mq_open(name, O_CREAT | O_RDWR, 0600, &at));
	if (q != (mqd_t)-1)
		mq_close(q);
	CALL("mq_unlink", mq_unlink(name));
	printf("NAME %s\n", name);
	return 0;
}

/* Deeper than PATH_MAX, reached with relative *at calls: neither getcwd nor
 * /proc/self/fd can name the directory any more. */
static int c_deep(void)
{
	char name[201];
	int dfd = open(".", O_RDONLY | O_DIRECTORY), fd;
	memset(name, 'd', 200);
	name[200] = 0;
	for (int i = 0; i < 25 && dfd >= 0; i++) { /* 25 × 201 bytes > 4096 */
		mkdirat(dfd, name, 0700);
		int next = openat(dfd, name, O_RDONLY | O_DIRECTORY);
		close(dfd);
		dfd = next;
	}
	if (dfd < 0)
		return 1;
	begin();
	CALL("openat", fd = openat(dfd, "deep_at.txt", O_CREAT | O_WRONLY, 0600));
	closeit(fd);
	CALL("fchdir", fchdir(dfd));
	CALL("open", fd = open("deep_cwd.txt", O_CREAT | O_WRONLY, 0600));
	closeit(fd);
	close(dfd);
	return 0;
}

int __xstat(int ver, const char *path, struct stat *st);

/* Stat-family lookups. A repeat of the same lookup within a second and a
 * stat of the dirfd itself (AT_EMPTY_PATH) make no record: no CALL line. */
static int c_lookup(void)
{
	struct stat st;
	struct statx sx;
	char buf[256];
	int fd = open("l.txt", O_CREAT | O_WRONLY, 0600), d = open(".", O_RDONLY | O_DIRECTORY);
	closeit(fd);
	mkdir("ld", 0700);
	if (symlink("l.txt", "ln") != 0)
		return 1;
	begin();
	CALL("stat", stat("l.txt", &st));
	stat("l.txt", &st); /* a repeat */
	CALL("lstat", lstat("ln", &st));
	CALL("fstatat", fstatat(d, "ld", &st, 0));
	fstatat(d, "", &st, AT_EMPTY_PATH); /* the dirfd itself */
	CALL("stat64", stat64("/", (struct stat64 *)&st));
	CALL("access", access("missing", F_OK));
	CALL("faccessat", faccessat(d, "l.txt", R_OK, 0));
	CALL("statx", statx(AT_FDCWD, "ld/../l.txt", 0, STATX_BASIC_STATS, &sx));
	CALL("readlink", readlink("ln", buf, sizeof(buf)));
	CALL("readlinkat", readlinkat(d, "l.txt", buf, sizeof(buf)));
	CALL("__xstat", __xstat(1, "l.txt", &st));
	CALL("stat", stat("appears", &st));
	fd = open("appears", O_CREAT | O_WRONLY, 0600);
	printf("CALL open %d errno=0\n", fd);
	closeit(fd);
	CALL("stat", stat("appears", &st)); /* not a repeat: the file exists now */
	close(d);
	return 0;
}

/* A sandboxed program: a seccomp filter refusing the syscalls the program
 * never makes but a shim might (readlinkat, getcwd, gettid, faccessat).
 * EXTRA: "kill" (prctl, SECCOMP_RET_KILL_PROCESS), "errno" (syscall(2),
 * SECCOMP_RET_ERRNO(EPERM)) or "kill-exec" (the filter is inherited by the
 * next image, which makes the calls). */
static int seccomp_calls(void)
{
	int fd, d = open("sub", O_RDONLY | O_DIRECTORY);
	begin();
	CALL("openat", fd = openat(d, "at.txt", O_RDONLY));
	closeit(fd);
	CALL("open", fd = open("rel.txt", O_RDONLY));
	closeit(fd);
	return 0;
}

static int c_seccomp(void)
{
	const char *mode = extra ? extra : "kill";
	unsigned action = strcmp(mode, "errno") == 0 ? SECCOMP_RET_ERRNO | EPERM : SECCOMP_RET_KILL_PROCESS;
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_readlinkat, 4, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getcwd, 3, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_gettid, 2, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_faccessat, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_RET | BPF_K, action),
	};
	struct sock_fprog prog = {.len = sizeof(f) / sizeof(f[0]), .filter = f};
	mkdir("sub", 0700);
	closeit(open("sub/at.txt", O_CREAT | O_WRONLY, 0600));
	closeit(open("rel.txt", O_CREAT | O_WRONLY, 0600));
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		return 3;
	if (strcmp(mode, "errno") == 0 ? syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0
				      : prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
		return 3;
	if (strcmp(mode, "kill-exec") == 0) {
		char *argv[] = {"probe", "seccomp-child", (char *)dir, NULL};
		execv(self, argv);
		return 4;
	}
	return seccomp_calls();
}

static int waitchild(pid_t p);

/* posix_spawn's file actions open files in the child, inside libc; a vfork
 * child opens a file before it exits. Prints "CHILD <pid>" for each. */
static int c_spawnfa(void)
{
	posix_spawn_file_actions_t fa;
	pid_t pid;
	char *argv[] = {"true", NULL};
	mkdir("sub", 0700);
	closeit(open("sub/in.txt", O_CREAT | O_WRONLY, 0600));
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, "spawn-out.txt", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	posix_spawn_file_actions_addchdir_np(&fa, "sub");
	posix_spawn_file_actions_addopen(&fa, 0, "in.txt", O_RDONLY, 0);
	begin();
	int r = posix_spawn(&pid, "/bin/true", &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (r != 0)
		return 3;
	printf("CHILD %d\n", (int)pid);
	waitchild(pid);
	pid = vfork();
	if (pid == 0) {
		int fd = open("vchild.txt", O_CREAT | O_WRONLY, 0600);
		if (fd >= 0)
			close(fd);
		_exit(0);
	}
	printf("CHILD %d\n", (int)pid);
	waitchild(pid);
	closeit(open("parent.txt", O_CREAT | O_WRONLY, 0600)); /* the parent's own again */
	return 0;
}

/* Named semaphores: glibc's files /dev/shm/sem.NAME. */
static int c_sem(void)
{
	char name[64], missing[64];
	sem_t *s;
	snprintf(name, sizeof(name), "/rt-probe-sem-%d", getpid());
	snprintf(missing, sizeof(missing), "/rt-probe-nosem-%d", getpid());
	begin();
	CALLP("sem_open", s = sem_open(name, O_CREAT | O_EXCL, 0600, 1), 0);
	if (s != SEM_FAILED)
		sem_close(s);
	CALLP("sem_open", s = sem_open(missing, 0), 0);
	CALL("sem_unlink", sem_unlink(name));
	CALL("sem_unlink", sem_unlink(missing));
	printf("NAME %s\n", name);
	return 0;
}

static int c_dlopen(void)
{
	void *h;
	/* By absolute path: recorded with its result. */
	begin();
	CALLP("dlopen", h = dlopen("/lib/x86_64-linux-gnu/libm.so.6", RTLD_NOW), 0);
	if (h)
		dlclose(h);
	/* A failed dlopen sets no errno: the record says -ENOENT. */
	h = dlopen("./nolib.so", RTLD_NOW);
	printf("CALL dlopen %d errno=0\n", h ? 0 : -ENOENT);
	/* A bare name from a caller without RUNPATH: the file the loader
	 * found, or a failure. */
	h = dlopen("libm.so.6", RTLD_NOW);
	printf("CALL dlopen %d errno=0\n", h ? 0 : -ENOENT);
	h = dlopen("libdoesnotexist.so", RTLD_NOW);
	printf("CALL dlopen %d errno=0\n", h ? 0 : -ENOENT);
	/* A library with dependencies (EXTRA: its absolute path). */
	if (extra) {
		h = dlopen(extra, RTLD_NOW);
		printf("CALL dlopen %d errno=0\n", h ? 0 : -ENOENT);
	}
	return 0;
}

/* ---- processes ---- */

static char *const child_argv[] = {"probe", "exit0", ".", NULL};

static int waitchild(pid_t p)
{
	int st;
	if (p <= 0)
		return -1;
	while (waitpid(p, &st, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static int c_exec(const char *which)
{
	pid_t p = fork();
	extern char **environ;
	if (p == 0) {
		char *argv[] = {(char *)self, "exit0", (char *)dir, NULL};
		if (!strcmp(which, "execve"))
			execve(self, argv, environ);
		else if (!strcmp(which, "execv"))
			execv(self, argv);
		else if (!strcmp(which, "execvp"))
			execvp(self, argv);
		else if (!strcmp(which, "execvpe"))
			execvpe(self, argv, environ);
		else if (!strcmp(which, "execl"))
			execl(self, self, "exit0", dir, (char *)NULL);
		else if (!strcmp(which, "execlp"))
			execlp(self, self, "exit0", dir, (char *)NULL);
		else if (!strcmp(which, "execle"))
			execle(self, self, "exit0", dir, (char *)NULL, environ);
		else if (!strcmp(which, "fexecve")) {
			int fd = open(self, O_RDONLY | O_CLOEXEC);
			fexecve(fd, argv, environ);
		} else if (!strcmp(which, "execveat"))
			execveat(AT_FDCWD, self, argv, environ, 0);
		_exit(127);
	}
	printf("child exit %d\n", waitchild(p));
	return 0;
}

static int c_exec_fail(void)
{
	/* Recorded before the call (a successful exec never returns), then
	 * again with -errno when it fails. */
	begin();
	printf("CALL execve 0 errno=0\n");
	CALL("execve", execve("./not-there", child_argv, NULL));
	return 0;
}

static int c_spawn(void)
{
	pid_t p;
	extern char **environ;
	char *argv[] = {(char *)self, "exit0", (char *)dir, NULL};
	begin();
	int r = posix_spawn(&p, self, NULL, NULL, argv, environ);
	printf("CALL posix_spawn %ld errno=0\n", r == 0 ? (long)p : -(long)r);
	printf("child exit %d\n", waitchild(p));
	r = posix_spawnp(&p, "true", NULL, NULL, argv, environ);
	printf("CALL posix_spawnp %ld errno=0\n", r == 0 ? (long)p : -(long)r);
	printf("child exit %d\n", waitchild(p));
	return 0;
}

static int c_fork(void)
{
	int fd;
	pid_t p = fork();
	if (p == 0) {
		/* Fork without exec: the child's records carry its own pid. */
		fd = open("child.txt", O_CREAT | O_WRONLY, 0600);
		close(fd);
		_exit(0);
	}
	printf("FORK %d\n", p);
	printf("child exit %d\n", waitchild(p));
	return 0;
}

static int c_vfork(void)
{
	extern char **environ;
	char *argv[] = {(char *)self, "exit0", (char *)dir, NULL};
	volatile int shared = 0;
	pid_t p = vfork();
	if (p == 0) {
		shared = 1; /* vfork shares memory: the parent must see this */
		execve(self, argv, environ);
		_exit(127);
	}
	printf("VFORK %d shared=%d\n", p, shared);
	printf("child exit %d\n", waitchild(p));
	return 0;
}

/* Children leaving by every door: exit, _exit, _Exit, a return from main,
 * and a vfork child's _exit (whose exit is not the parent's). */
static int c_exits(void)
{
	pid_t p[4];
	for (int i = 0; i < 4; i++) {
		p[i] = fork();
		if (p[i] == 0) {
			if (i == 0)
				exit(3);
			if (i == 1)
				_exit(4);
			if (i == 2)
				_Exit(5);
			return 0; /* i == 3: back through main */
		}
	}
	pid_t v = vfork();
	if (v == 0)
		_exit(6);
	printf("EXITS %d %d %d %d %d\n", p[0], p[1], p[2], p[3], v);
	for (int i = 0; i < 4; i++)
		printf("STATUS %d\n", waitchild(p[i]));
	printf("STATUS %d\n", waitchild(v));
	return 0;
}

static char clone_stack[256 * 1024] __attribute__((aligned(16)));
static int clone_fn(void *arg)
{
	(void)arg;
	close(open("cloned.txt", O_CREAT | O_WRONLY, 0600));
	return 0;
}

static int c_clone(void)
{
	pid_t p = clone(clone_fn, clone_stack + sizeof(clone_stack), SIGCHLD, NULL);
	printf("CLONE %d\n", p);
	printf("child exit %d\n", waitchild(p));
	return 0;
}

static int c_shell(void)
{
	char cmd[512];
	FILE *f;
	snprintf(cmd, sizeof(cmd), "%s exit0 %s", self, dir);
	begin();
	int r = system(cmd);
	printf("CALL system %d errno=0\n", r);
	CALLP("popen", f = popen(cmd, "r"), fileno(f));
	if (f)
		printf("pclose %d\n", pclose(f));
	return 0;
}

/* Clears the environment, then execs: the child must still be traced. */
static int c_clearenv(void)
{
	char *argv[] = {(char *)self, "exit0", (char *)dir, NULL};
	clearenv();
	pid_t p = fork();
	if (p == 0) {
		execv(self, argv);
		_exit(127);
	}
	printf("child exit %d\n", waitchild(p));
	char *empty[] = {NULL};
	p = fork();
	if (p == 0) {
		execve(self, argv, empty);
		_exit(127);
	}
	printf("child exit %d\n", waitchild(p));
	/* system() and popen() spawn inside libc, out of the exec hooks' reach. */
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "%s env %s", self, dir);
	int r = system(cmd);
	printf("system %d\n", r);
	FILE *f = popen(cmd, "r");
	char line[256];
	while (f && fgets(line, sizeof(line), f))
		printf("popen child: %s", line);
	if (f)
		printf("pclose %d\n", pclose(f));
	/* Our own environment is still empty. */
	extern char **environ;
	printf("environ empty %d\n", environ == NULL || environ[0] == NULL);
	return 0;
}

/* Prints the environment it sees (the exec marker must not be there). */
static int c_env(void)
{
	extern char **environ;
	for (char **e = environ; *e; e++)
		if (!strncmp(*e, "RESTRACK_", 9) || !strncmp(*e, "LD_PRELOAD=", 11))
			printf("ENV %s\n", *e);
	return 0;
}

/* ---- transparency ---- */

static volatile sig_atomic_t handler_fd = -2;
static void on_usr1(int sig)
{
	(void)sig;
	int saved = errno;
	int fd = open("from-handler.txt", O_CREAT | O_WRONLY, 0600);
	handler_fd = fd;
	if (fd >= 0)
		close(fd);
	errno = saved;
}

static int c_signal(void)
{
	struct sigaction sa = {.sa_handler = on_usr1};
	stack_t ss = {.ss_sp = malloc(16384), .ss_size = 16384};
	sigaltstack(&ss, NULL);
	sa.sa_flags = SA_ONSTACK;
	sigaction(SIGUSR1, &sa, NULL);
	raise(SIGUSR1);
	printf("handler fd %d\n", handler_fd);
	return 0;
}

#define NTHREADS 8
#define NPERTHREAD 200
static void *thread_fn(void *arg)
{
	char name[64];
	long id = (long)arg;
	for (int i = 0; i < NPERTHREAD; i++) {
		snprintf(name, sizeof(name), "t%ld-%d", id, i % 4);
		int fd = open(name, O_CREAT | O_WRONLY, 0600);
		if (fd < 0)
			return (void *)1;
		close(fd);
	}
	return NULL;
}

static int c_threads(void)
{
	pthread_t t[NTHREADS];
	void *r;
	int bad = 0;
	for (long i = 0; i < NTHREADS; i++)
		pthread_create(&t[i], NULL, thread_fn, (void *)i);
	for (int i = 0; i < NTHREADS; i++) {
		pthread_join(t[i], &r);
		bad |= r != NULL;
	}
	printf("threads ok %d\n", !bad);
	return bad;
}

/* Threads opening relative paths, a timer signal whose handler opens too,
 * chdir back and forth, and forks whose children open and exit, all at
 * once: the shim must neither deadlock nor corrupt a record. */
static volatile sig_atomic_t chaos_stop;
static void on_alarm(int sig)
{
	(void)sig;
	int saved = errno;
	int fd = open("alarm.txt", O_CREAT | O_WRONLY, 0600);
	if (fd >= 0)
		close(fd);
	errno = saved;
}

static void *chaos_thread(void *arg)
{
	long id = (long)arg;
	char name[32];
	snprintf(name, sizeof(name), "c%ld", id);
	/* Bounded so that every record fits the test's ring undrained. */
	for (int i = 0; i < 8000 && !chaos_stop; i++) {
		int fd = open(name, O_CREAT | O_WRONLY, 0600);
		if (fd >= 0)
			close(fd);
		FILE *f = fopen(name, "r");
		if (f)
			fclose(f);
	}
	return NULL;
}

static int c_chaos(void)
{
	pthread_t t[4];
	struct sigaction sa = {.sa_handler = on_alarm, .sa_flags = SA_RESTART};
	sigaction(SIGALRM, &sa, NULL);
	struct itimerval it = {.it_interval = {0, 500}, .it_value = {0, 500}};
	mkdir("sub", 0755);
	for (long i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, chaos_thread, (void *)i);
	setitimer(ITIMER_REAL, &it, NULL);
	int bad = 0;
	for (int i = 0; i < 100; i++) {
		pid_t p = fork();
		if (p == 0) {
			int fd = open("forked.txt", O_CREAT | O_WRONLY, 0600);
			_exit(fd >= 0 ? 0 : 1);
		}
		bad |= waitchild(p) != 0;
		if (chdir(i % 2 ? ".." : "sub") != 0)
			bad = 1;
	}
	if (chdir(dir) != 0)
		bad = 1;
	struct itimerval off = {0};
	setitimer(ITIMER_REAL, &off, NULL);
	chaos_stop = 1;
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	printf("chaos ok %d\n", !bad);
	return bad;
}

/* errno set before a successful call must survive the shim untouched. */
static int c_errno(void)
{
	int fd;
	errno = 1234;
	fd = open("e.txt", O_CREAT | O_WRONLY, 0600);
	printf("errno after success %d\n", errno);
	close(fd);
	errno = 0;
	fd = open("missing/e", O_RDONLY);
	printf("ret %d errno %d\n", fd, errno);
	errno = 0;
	FILE *f = fopen("missing/e", "r");
	printf("fopen %p errno %d\n", (void *)f, errno);
	errno = 777;
	f = fopen("e.txt", "r");
	printf("errno after fopen %d\n", errno);
	fclose(f);
	errno = 0;
	int r = rename("missing", "x");
	printf("rename %d errno %d\n", r, errno);
	return 0;
}

/* Closes every descriptor, then keeps working. */
static int c_closeall(void)
{
	for (int fd = 3; fd < 4096; fd++)
		close(fd);
	int fd;
	begin();
	CALL("open", fd = open("after-close.txt", O_CREAT | O_WRONLY, 0600));
	closeit(fd);
	return 0;
}

/* An *at call whose dirfd is not a directory in the tree (a socket): the
 * base cannot be named, so the path is recorded as given and flagged. */
static int c_unresolved(void)
{
	int s = socket(AF_UNIX, SOCK_STREAM, 0);
	begin();
	CALL("openat", openat(s, "x", O_RDONLY));
	close(s);
	return 0;
}

/* Reports whether the loader ran us in secure-execution mode (setuid). */
static int c_secure(void)
{
	printf("secure %lu euid %d\n", getauxval(AT_SECURE), (int)geteuid());
	int fd = open("secure.txt", O_CREAT | O_WRONLY, 0600);
	printf("fd %d\n", fd);
	return 0;
}

/* Opens many files to compare fd numbers with and without the shim. */
static int c_fds(void)
{
	for (int i = 0; i < 5; i++) {
		int fd = open("fd.txt", O_CREAT | O_RDONLY, 0600);
		printf("fd %d\n", fd);
	}
	return 0;
}

static int c_spin(int n)
{
	for (int i = 0; i < n; i++) {
		int fd = open("spin.txt", O_CREAT | O_WRONLY, 0600);
		if (fd < 0)
			return 1;
		close(fd);
	}
	printf("spin done\n");
	return 0;
}

int main(int argc, char **argv)
{
	static char selfbuf[4096];
	ssize_t n;
	if (argc < 3) {
		fprintf(stderr, "usage: probe CASE DIR\n");
		return 2;
	}
	n = readlink("/proc/self/exe", selfbuf, sizeof(selfbuf) - 1);
	if (n < 0)
		return 2;
	selfbuf[n] = 0;
	self = selfbuf;
	dir = argv[2];
	extra = argc > 3 ? argv[3] : NULL;
	if (chdir(dir) != 0) {
		perror("chdir");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	const char *c = argv[1];
	if (!strcmp(c, "exit0"))
		return 0;
	if (!strcmp(c, "open"))
		return c_open();
	if (!strcmp(c, "openat"))
		return c_openat();
	if (!strcmp(c, "creat"))
		return c_creat();
	if (!strcmp(c, "fortify"))
		return c_fortify();
	if (!strcmp(c, "stdio"))
		return c_stdio();
	if (!strcmp(c, "tmp"))
		return c_tmp();
	if (!strcmp(c, "opendir"))
		return c_opendir();
	if (!strcmp(c, "namespace"))
		return c_namespace();
	if (!strcmp(c, "syscall"))
		return c_syscall();
	if (!strcmp(c, "chdir"))
		return c_chdir();
	if (!strcmp(c, "ipc"))
		return c_ipc();
	if (!strcmp(c, "deep"))
		return c_deep();
	if (!strcmp(c, "spawnfa"))
		return c_spawnfa();
	if (!strcmp(c, "seccomp"))
		return c_seccomp();
	if (!strcmp(c, "seccomp-child"))
		return seccomp_calls();
	if (!strcmp(c, "lookup"))
		return c_lookup();
	if (!strcmp(c, "sem"))
		return c_sem();
	if (!strcmp(c, "dlopen"))
		return c_dlopen();
	if (!strncmp(c, "exec:", 5))
		return c_exec(c + 5);
	if (!strcmp(c, "execfail"))
		return c_exec_fail();
	if (!strcmp(c, "spawn"))
		return c_spawn();
	if (!strcmp(c, "fork"))
		return c_fork();
	if (!strcmp(c, "vfork"))
		return c_vfork();
	if (!strcmp(c, "clone"))
		return c_clone();
	if (!strcmp(c, "exits"))
		return c_exits();
	if (!strcmp(c, "shell"))
		return c_shell();
	if (!strcmp(c, "clearenv"))
		return c_clearenv();
	if (!strcmp(c, "env"))
		return c_env();
	if (!strcmp(c, "signal"))
		return c_signal();
	if (!strcmp(c, "chaos"))
		return c_chaos();
	if (!strcmp(c, "threads"))
		return c_threads();
	if (!strcmp(c, "errno"))
		return c_errno();
	if (!strcmp(c, "closeall"))
		return c_closeall();
	if (!strcmp(c, "unresolved"))
		return c_unresolved();
	if (!strcmp(c, "secure"))
		return c_secure();
	if (!strcmp(c, "fds"))
		return c_fds();
	if (!strcmp(c, "spin"))
		return c_spin(argc > 3 ? atoi(argv[3]) : 1000);
	fprintf(stderr, "probe: unknown case %s\n", c);
	return 2;
}
