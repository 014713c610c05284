/*
 * shim_core.c — state, initialisation, identity, path resolution and the two
 * transports of librestrack.so.
 *
 * Producer: the hooks, in any thread of a traced process (also in signal
 * handlers, after fork, before the constructor ran). Consumer: the collector,
 * which drains the ring (ring mode, the default) or reads one record per
 * read(2) from a named pipe (FIFO mode, the paper's transport). Overflow and
 * failure: a full ring means a bounded wait then a counted drop
 * (ring_producer.c); a full pipe means a bounded poll then a drop; a missing
 * or invalid ring or pipe turns the shim off for the process, silently. In
 * every case the traced program sees exactly what it would see without the
 * shim: the hot path never allocates, locks, prints or aborts, and preserves
 * errno.
 *
 * Platforms: Linux, and FreeBSD (docs/freebsd.md), whose differences sit in
 * the blocks marked "platform:" below — raw system calls, the thread id, the
 * cwd, an fd's path, and the process's start time, executable and argv
 * (/proc on Linux, sysctl and fcntl(F_KINFO) on FreeBSD). RT_LIBC_BUILD is
 * FreeBSD's drop-in libc build, where this file is linked into libc itself.
 */
#undef _FORTIFY_SOURCE
#include "shim.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/auxv.h>
#endif
#ifdef __FreeBSD__ /* platform: sysctl(3) and kinfo_* for the process's identity */
#include <sys/param.h> /* sys/user.h needs it first */
#include <sys/user.h>
#include <sys/sysctl.h>
#include <sys/time.h>
#endif

#include "ring_producer.h"
#include "rt_raw_syscall.h"

enum { RT_MODE_RING = 1, RT_MODE_FIFO = 2 };

int rt_state;
RT_TLS int rt_in_shim;
void *rt_real_tab[RT_SYM_COUNT];

static const char *const rt_sym_names[RT_SYM_COUNT] = {
#define RT_SYM_NAME(n) #n,
	RT_SYMS(RT_SYM_NAME)
#undef RT_SYM_NAME
};

static struct {
	int mode;
	struct rt_producer prod;
	uint64_t fifo_wait_ns; /* bounded wait on a full pipe */
	int ctor_done;         /* records before it carry RT_RF_PRE_INIT */
	int secure;            /* AT_SECURE (setuid/setgid image): no RESTRACK_* variable is trusted */
	int debug;             /* RESTRACK_DEBUG=1: say why the process is not traced */
	uint64_t tick_ns;      /* one clock tick of /proc/PID/stat's start time */
	int32_t pid, ppid;
	uint64_t start_ns;
	long exe_len, argv_len; /* -1: not known yet */
	int lent_fd;            /* the ring fd the exec'ing image lent us, or -1 */
	int argv_cut;           /* the constructor's argv did not fit g.argv */
	/* This library, as the loader named it: its link map's name, which
	 * lives as long as the library (a preloaded one is never unloaded).
	 * A pointer, not a copy: a start writes one page fewer. */
	const char *self_path;
	/* argv right after the fields every start writes: its first bytes
	 * (all of a short command line) share their page. */
	char argv[RT_MAX_RECORD_SIZE]; /* NUL-separated, as /proc/PID/cmdline */
	char exe[RT_PATH_MAX + 1];
} g = {.exe_len = -1, .argv_len = -1, .lent_fd = -1};

/* g.self_path, "" until the library knows its name. */
static inline const char *rt_self_path(void)
{
	return g.self_path ? g.self_path : "";
}

/* FIFO mode's write end [0] and a read end [1] we never read (so writes
 * never raise SIGPIPE), guarded by shim_fdguard.c; -1 when unused. */
int rt_guarded_fds[RT_GUARDED_MAX] = {-1, -1, -1};

#ifdef __linux__ /* platform: the rendezvous is Linux's for now */
/* The rendezvous answer (static: 4 KiB of text, and init may run on a
 * signal handler's small stack). */
static struct rt_rdv_result rt_rdv;
#endif

static RT_TLS int32_t rt_tid;

/* Environment entries re-inserted on exec ("KEY=value"), saved at init
 * because the program may clear or change its environment later. */
static const char *const rt_env_keys[] = {"LD_PRELOAD", RT_ENV_RING, RT_ENV_MODE, RT_ENV_FIFO,
					  RT_ENV_FULL_WAIT, RT_ENV_SOCKET, RT_ENV_DEBUG};
#define RT_NENV (sizeof(rt_env_keys) / sizeof(rt_env_keys[0]))
/* Packed one after another in one buffer (rt_env_saved[k] points into it,
 * NULL when unset): a process start writes the page or two the values
 * fill, not one page per key (each fault of a fresh page costs a start
 * about a µs). Each value is bounded as before. */
#define RT_ENV_ENTRY_MAX (RT_PATH_MAX + 32)
static char rt_env_buf[RT_NENV * RT_ENV_ENTRY_MAX];
static const char *rt_env_saved[RT_NENV];

/* ------------------------------------------------------------------ */
/* raw system calls                                                    */

long rt_sys(long nr, long a1, long a2, long a3, long a4, long a5, long a6)
{
#if defined(__FreeBSD__)
	/* platform: FreeBSD's kernel reports errors in the carry flag, and its
	 * libc has __syscall(2), which neither build hooks (in the drop-in
	 * libc it is libc's own stub). Converted to the -errno convention. */
	int saved = errno;
	long ret = (long)__syscall((quad_t)nr, a1, a2, a3, a4, a5, a6);
	if (ret == -1)
		ret = -errno;
	errno = saved;
	return ret;
#elif defined(RT_RAW_SYSCALL_LINUX)
	return rt_raw_syscall6(nr, a1, a2, a3, a4, a5, a6); /* rt_raw_syscall.h */
#else
	/* Portable fallback through libc's syscall(2), looked up past our own
	 * hook of it; converted to the kernel's -errno convention. */
	int saved = errno;
	long (*fn)(long, ...) = (long (*)(long, ...))rt_real_get(RT_SYM_syscall);
	long ret = fn ? fn(nr, a1, a2, a3, a4, a5, a6) : -1;
	if (ret == -1)
		ret = fn ? -errno : -ENOSYS;
	errno = saved;
	return ret;
#endif
}

/* ------------------------------------------------------------------ */
/* small helpers                                                       */

size_t rt_strlen(const char *s)
{
	return __builtin_strlen(s);
}

char *rt_utoa(char *out, uint64_t v)
{
	char tmp[24];
	int n = 0;
	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		*out++ = tmp[--n];
	return out;
}

static char *rt_stpcpy(char *d, const char *s)
{
	size_t n = rt_strlen(s);
	__builtin_memcpy(d, s, n);
	return d + n;
}

#ifndef __FreeBSD__ /* platform: the /proc readers; FreeBSD asks sysctl(3) and fcntl(2) */
/* readlink via a raw syscall; NUL-terminates. Returns the length or
 * -errno; -ENAMETOOLONG when the answer may have been cut. */
static long rt_readlink(const char *path, char *buf, size_t cap)
{
	if (RT_UNLIKELY(rt_sandboxed))
		return RT_ERR_SANDBOXED; /* the program made no readlinkat: a filter may refuse ours */
	long n = rt_sys4(SYS_readlinkat, AT_FDCWD, path, buf, cap - 1);
	if (n == -EPERM || n == -ENOSYS || n == -EACCES) {
		/* /proc/self is ours to read unless a filter says otherwise
		 * (SECCOMP_RET_ERRNO, or a filter installed by raw syscall that
		 * the prctl hook did not see): stay out of its way from now on. */
		rt_sandbox_enter();
		return RT_ERR_SANDBOXED;
	}
	if (n < 0)
		return n;
	if ((size_t)n >= cap - 1)
		return -ENAMETOOLONG; /* possibly cut: never pass on a cut path */
	buf[n] = 0;
	return n;
}
#endif

/* The path fd refers to, NUL-terminated in buf (cap bytes). Returns its
 * length or -1. Not necessarily absolute ("socket:[…]" on Linux). */
static long rt_fd_path(int fd, char *buf, size_t cap)
{
#if defined(__FreeBSD__)
	/* platform: fcntl(F_KINFO) (FreeBSD 13.1+); no /proc needed. */
#ifdef F_KINFO
	struct kinfo_file kf;
	size_t n;
	kf.kf_structsize = sizeof(kf);
	if (rt_sys3(SYS_fcntl, fd, F_KINFO, &kf) < 0)
		return -1;
	n = strnlen(kf.kf_path, sizeof(kf.kf_path));
	if (n == 0 || n >= cap)
		return -1;
	__builtin_memcpy(buf, kf.kf_path, n);
	buf[n] = 0;
	return (long)n;
#else
	(void)fd, (void)buf, (void)cap;
	return -1;
#endif
#else
	char link[32];
	char *p = rt_stpcpy(link, "/proc/self/fd/");
	p = rt_utoa(p, (uint64_t)(unsigned)fd);
	*p = 0;
	return rt_readlink(link, buf, cap);
#endif
}

#ifndef __FreeBSD__
/* Reads a whole small file (raw syscalls). Returns bytes read or -1. */
static long rt_read_file(const char *path, char *buf, size_t cap)
{
	long fd = rt_sys4(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC, 0);
	long total = 0, n;
	if (fd < 0)
		return -1;
	while ((size_t)total < cap) {
		n = rt_sys3(SYS_read, fd, buf + total, cap - (size_t)total);
		if (n == -EINTR)
			continue;
		if (n <= 0)
			break;
		total += n;
	}
	rt_sys1(SYS_close, fd);
	return total;
}
#endif /* !__FreeBSD__ */

static const char *rt_getenv(const char *name)
{
	size_t n = rt_strlen(name);
	if (environ == NULL)
		return NULL;
	for (char **e = environ; *e; e++)
		if (__builtin_strncmp(*e, name, n) == 0 && (*e)[n] == '=')
			return *e + n + 1;
	return NULL;
}

static uint64_t rt_parse_u64(const char *s, int *ok)
{
	uint64_t v = 0;
	*ok = s && *s;
	for (; s && *s; s++) {
		if (*s < '0' || *s > '9') {
			*ok = 0;
			return 0;
		}
		v = v * 10 + (uint64_t)(*s - '0');
	}
	return v;
}

/* ------------------------------------------------------------------ */
/* symbol resolution                                                   */

void *rt_resolve_sym(enum rt_sym i)
{
	void *p;
	int saved = errno;
	/* dlsym may call hooked functions (or malloc, which may); those
	 * nested hooks must only forward. */
	rt_in_shim++;
	p = dlsym(RTLD_NEXT, rt_sym_names[i]);
	rt_in_shim--;
	if (p)
		__atomic_store_n(&rt_real_tab[i], p, __ATOMIC_RELAXED);
	errno = saved;
	return p;
}

#if defined(__linux__) && defined(__GLIBC__) && !defined(RT_LIBC_BUILD)
/*
 * The constructor's lookup of every real function in one pass, without
 * dlsym: ~100 dlsym(RTLD_NEXT) calls cost a process start some 10-20 µs
 * (each finds its caller's object, takes the loader's lock, hashes the
 * name and searches). Here each name is looked up in the GNU hash table of
 * the objects after ours in load order (what RTLD_NEXT searches), up to
 * and including libc; the default version of a versioned name is the one
 * taken, as dlsym takes it. Anything unusual (no GNU hash, an IFUNC, a
 * name libc lacks) is left NULL for dlsym to find. Runs once, in the
 * constructor, before any hook needs it.
 */
struct rt_fast {
	uintptr_t self;  /* an address inside this library */
	int past_self;   /* the walk has passed our own object */
	int done;        /* libc was searched */
};

static uint32_t rt_gnu_hash(const char *s)
{
	uint32_t h = 5381;
	for (; *s; s++)
		h = h * 33 + (unsigned char)*s;
	return h;
}

static int rt_obj_has(const struct dl_phdr_info *info, uintptr_t addr)
{
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
		if (ph->p_type == PT_LOAD && addr >= lo && addr - lo < ph->p_memsz)
			return 1;
	}
	return 0;
}

static int rt_fast_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct rt_fast *f = arg;
	const ElfW(Dyn) *dyn = NULL;
	const uint32_t *gh = NULL;
	const ElfW(Sym) *symtab = NULL;
	const char *strtab = NULL;
	const ElfW(Versym) *versym = NULL;
	int is_libc;
	(void)size;

	if (!f->past_self) {
		f->past_self = rt_obj_has(info, f->self);
		return 0;
	}
	for (int i = 0; i < info->dlpi_phnum; i++)
		if (info->dlpi_phdr[i].p_type == PT_DYNAMIC)
			dyn = (const ElfW(Dyn) *)(info->dlpi_addr + info->dlpi_phdr[i].p_vaddr);
	if (dyn == NULL)
		return 0;
	for (; dyn->d_tag != DT_NULL; dyn++) {
		/* glibc relocates these in place; the vDSO's stay offsets. */
		uintptr_t v = dyn->d_un.d_ptr;
		if (v < info->dlpi_addr)
			v += info->dlpi_addr;
		switch (dyn->d_tag) {
		case DT_GNU_HASH: gh = (const uint32_t *)v; break;
		case DT_SYMTAB: symtab = (const ElfW(Sym) *)v; break;
		case DT_STRTAB: strtab = (const char *)v; break;
		case DT_VERSYM: versym = (const ElfW(Versym) *)v; break;
		}
	}
	is_libc = info->dlpi_name != NULL && __builtin_strstr(info->dlpi_name, "/libc.so.") != NULL;
	if (gh != NULL && symtab != NULL && strtab != NULL && gh[0] != 0 && gh[2] != 0) {
		uint32_t nbuckets = gh[0], symoffset = gh[1], bloom_size = gh[2], shift = gh[3];
		const ElfW(Addr) *bloom = (const ElfW(Addr) *)(gh + 4);
		const uint32_t *buckets = (const uint32_t *)(bloom + bloom_size);
		const uint32_t *chain = buckets + nbuckets;
		const unsigned bits = sizeof(ElfW(Addr)) * 8;
		for (int i = 0; i < RT_SYM_COUNT; i++) {
			const char *name = rt_sym_names[i];
			uint32_t h, ix;
			if (__atomic_load_n(&rt_real_tab[i], __ATOMIC_RELAXED) != NULL)
				continue;
			h = rt_gnu_hash(name);
			ElfW(Addr) word = bloom[(h / bits) % bloom_size];
			ElfW(Addr) mask = ((ElfW(Addr))1 << (h % bits)) | ((ElfW(Addr))1 << ((h >> shift) % bits));
			if ((word & mask) != mask)
				continue;
			ix = buckets[h % nbuckets];
			if (ix < symoffset)
				continue;
			for (;; ix++) {
				uint32_t h2 = chain[ix - symoffset];
				const ElfW(Sym) *sym = &symtab[ix];
				if ((h | 1) == (h2 | 1) && __builtin_strcmp(name, strtab + sym->st_name) == 0 &&
				    sym->st_shndx != SHN_UNDEF && sym->st_value != 0 &&
				    (versym == NULL || (versym[ix] & 0x7fff) < 2 || !(versym[ix] & 0x8000))) {
					/* An IFUNC needs its resolver run: dlsym's job. */
					if (ELF32_ST_TYPE(sym->st_info) == STT_FUNC) /* same macro for ELF64 */
						__atomic_store_n(&rt_real_tab[i], (void *)(info->dlpi_addr + sym->st_value),
								 __ATOMIC_RELAXED);
					break;
				}
				if (h2 & 1)
					break;
			}
		}
	}
	if (is_libc) {
		f->done = 1;
		return 1; /* past libc the walk could meet a dlopen'ed object outside RTLD_NEXT's scope */
	}
	return 0;
}

static void rt_resolve_fast(void)
{
	struct rt_fast f = {.self = (uintptr_t)&rt_fast_cb};
	dl_iterate_phdr(rt_fast_cb, &f);
}
#else
static void rt_resolve_fast(void) {}
#endif

#ifdef RT_TEST_RESOLVE
/* Test-only (TestTheConstructorFindsEveryRealFunctionWhereDlsymDoes):
 * every pointer the fast pass found, checked against dlsym(RTLD_NEXT),
 * and the count on stderr. */
static void rt_test_resolve_report(void)
{
	char b[64], *p;
	int found = 0, wrong = 0;
	for (int i = 0; i < RT_SYM_COUNT; i++) {
		void *d = dlsym(RTLD_NEXT, rt_sym_names[i]);
		if (rt_real_tab[i] == NULL)
			continue;
		found++;
		if (rt_real_tab[i] != d) {
			wrong++;
			rt_sys3(SYS_write, 2, rt_sym_names[i], rt_strlen(rt_sym_names[i]));
			rt_sys3(SYS_write, 2, " differs from dlsym\n", 20);
		}
	}
	p = rt_stpcpy(b, "resolve: fast ");
	p = rt_utoa(p, (uint64_t)found);
	p = rt_stpcpy(p, " of ");
	p = rt_utoa(p, RT_SYM_COUNT);
	p = rt_stpcpy(p, ", wrong ");
	p = rt_utoa(p, (uint64_t)wrong);
	*p++ = '\n';
	rt_sys3(SYS_write, 2, b, p - b);
}
#endif

void rt_resolve_all(void)
{
	int saved = errno;
	rt_resolve_fast();
#ifdef RT_TEST_RESOLVE
	rt_test_resolve_report();
#endif
	errno = saved;
	for (int i = 0; i < RT_SYM_COUNT; i++)
		if (__atomic_load_n(&rt_real_tab[i], __ATOMIC_RELAXED) == NULL)
			rt_resolve_sym((enum rt_sym)i);
}

/* ------------------------------------------------------------------ */
/* the cwd cache                                                       */

/*
 * Relative paths are resolved against the cwd, which only chdir/fchdir
 * change: caching it saves a getcwd syscall per relative open. A seqlock
 * guards the copy; the writer is whoever wins a try-lock, so a signal handler
 * interrupting a refresh on the same thread never waits (it falls back to
 * the syscall). cwd_epoch is bumped after every chdir/fchdir: a copy made
 * under an older epoch is stale.
 */
static struct {
	uint32_t seq;   /* odd while being written */
	uint32_t lock;  /* writer try-lock */
	uint64_t epoch; /* cwd_epoch the copy was taken under */
	uint32_t len;   /* 0 = empty */
	char buf[RT_PATH_MAX + 1];
} rt_cwd;
static uint64_t rt_cwd_epoch = 1;

void rt_cwd_invalidate(void)
{
	__atomic_fetch_add(&rt_cwd_epoch, 1, __ATOMIC_SEQ_CST);
}

uint64_t rt_cwd_epoch_now(void)
{
	return __atomic_load_n(&rt_cwd_epoch, __ATOMIC_RELAXED);
}

/* Copies the cwd into out (RT_PATH_MAX + 1 bytes). Returns its length,
 * -ENAMETOOLONG when the cwd is longer than that, or another negative value. */
static long rt_cwd_get(char *out)
{
	uint64_t epoch = __atomic_load_n(&rt_cwd_epoch, __ATOMIC_ACQUIRE);
	uint32_t s1 = __atomic_load_n(&rt_cwd.seq, __ATOMIC_ACQUIRE), len;
	long n;

	if (!(s1 & 1) && rt_cwd.len != 0 && rt_cwd.epoch == epoch) {
		len = rt_cwd.len;
		if (len <= RT_PATH_MAX) {
			__builtin_memcpy(out, rt_cwd.buf, len);
			/* Acquire fence: the copy is read before seq is re-checked. */
			__atomic_thread_fence(__ATOMIC_ACQUIRE);
			if (__atomic_load_n(&rt_cwd.seq, __ATOMIC_RELAXED) == s1) {
				out[len] = 0;
				return len;
			}
		}
	}
#ifdef __FreeBSD__
	/* platform: FreeBSD's __getcwd returns 0, not the length. */
	n = rt_sys2(SYS___getcwd, out, RT_PATH_MAX + 1) == 0 ? 1 : -1;
#else
	if (RT_UNLIKELY(rt_sandboxed))
		return RT_ERR_SANDBOXED; /* see rt_sandbox_enter: the cache was primed before */
	n = rt_sys2(SYS_getcwd, out, RT_PATH_MAX + 1);
	if (n == -ERANGE || n == -ENAMETOOLONG)
		return -ENAMETOOLONG; /* the cwd is deeper than PATH_MAX */
#endif
	if (n <= 0 || out[0] != '/')
		return -1; /* error, or "(unreachable)/…" */
	n = (long)rt_strlen(out);
	if (__atomic_exchange_n(&rt_cwd.lock, 1, __ATOMIC_ACQUIRE) == 0) {
		__atomic_store_n(&rt_cwd.seq, rt_cwd.seq + 1, __ATOMIC_RELAXED);
		__atomic_thread_fence(__ATOMIC_RELEASE);
		__builtin_memcpy(rt_cwd.buf, out, (size_t)n);
		rt_cwd.len = (uint32_t)n;
		rt_cwd.epoch = epoch; /* read before getcwd: a racing chdir makes it stale */
		__atomic_store_n(&rt_cwd.seq, rt_cwd.seq + 1, __ATOMIC_RELEASE);
		__atomic_store_n(&rt_cwd.lock, 0, __ATOMIC_RELEASE);
	}
	return n;
}

/* ------------------------------------------------------------------ */
/* path resolution                                                     */

/* Counts a failure of the shim's own (a base directory it could not read,
 * a process record it had to skip) in the ring header, where the collector
 * reports it: the record still goes out, flagged, but the count says the
 * trace is less precise than it should be. */
void rt_count_error(void)
{
	struct rt_ring_header *hdr = g.prod.hdr;
	if (hdr != NULL)
		__atomic_fetch_add(&hdr->producer_errors, 1, __ATOMIC_RELAXED);
}

int32_t rt_self_pid(void) { return __atomic_load_n(&g.pid, __ATOMIC_RELAXED); }

/* ------------------------------------------------------------------ */
/* seccomp                                                             */

int rt_sandboxed;

static inline int32_t rt_kernel_tid(void);

void rt_sandbox_enter(void)
{
	if (__atomic_load_n(&rt_sandboxed, __ATOMIC_RELAXED))
		return;
	/* Last chance to ask the kernel: cache the cwd and this thread's tid
	 * while the syscalls that give them are still certainly allowed. */
	if (__atomic_load_n(&rt_state, __ATOMIC_ACQUIRE) == RT_ST_READY) {
		char cwd[RT_PATH_MAX + 1];
		(void)rt_cwd_get(cwd);
		if (rt_tid == 0)
			rt_tid = rt_kernel_tid();
	}
	__atomic_store_n(&rt_sandboxed, 1, __ATOMIC_RELEASE);
	rt_producer_forbid_syscalls(&g.prod);
}

#ifndef __FreeBSD__
/* A filter inherited across exec is in force before the shim runs: the
 * Seccomp field of /proc/self/status (1 strict, 2 filter). Opening and
 * reading a file are what the loader itself just did to map this library,
 * so no filter that let the program start refuses them. */
void rt_seccomp_probe(void)
{
	char buf[2048];
	long n = rt_read_file("/proc/self/status", buf, sizeof(buf) - 1);
	if (n <= 0)
		return;
	buf[n] = 0;
	const char *p = __builtin_strstr(buf, "\nSeccomp:");
	if (p == NULL)
		return;
	for (p += 9; *p == ' ' || *p == '\t'; p++)
		;
	if (*p >= '1' && *p <= '9')
		rt_sandbox_enter();
}
#else
void rt_seccomp_probe(void) {}
#endif

const char *rt_resolve_path(int dirfd, const char *path, char *buf, uint32_t *len, uint16_t *rflags)
{
	size_t plen, blen;
	long n;

	if (path == NULL) {
		*rflags |= RT_RF_UNRESOLVED;
		*len = 0;
		return "";
	}
	plen = rt_strlen(path);
	if (path[0] == '/') {
		*len = (uint32_t)plen;
		return path;
	}
	if (plen > RT_PATH_MAX) {
		*rflags |= RT_RF_TOO_LONG;
		goto unresolved; /* the call failed with ENAMETOOLONG; keep it whole */
	}
	if (dirfd == AT_FDCWD) {
		n = rt_cwd_get(buf);
	} else {
		n = rt_fd_path(dirfd, buf, RT_PATH_MAX + 1);
		if (n > 0 && buf[0] != '/')
			n = -1; /* not a directory in the tree (socket:[…], anon_inode:…) */
	}
	if (n <= 0) {
		/* The kernel names no path longer than PATH_MAX (getcwd says
		 * ERANGE, /proc/self/fd ENAMETOOLONG): deep in a tree reached with
		 * relative *at calls, the base has no name to give. */
		if (n == -ENAMETOOLONG)
			*rflags |= RT_RF_TOO_LONG;
		else if (n == RT_ERR_SANDBOXED)
			*rflags |= RT_RF_SANDBOXED;
		rt_count_error();
		goto unresolved;
	}
	blen = (size_t)n;
	/* Lexical clean-up only where it cannot change the meaning: leading
	 * "./" components and a lone ".". ".." is kept (symlinks). */
	while (path[0] == '.' && path[1] == '/') {
		path += 2;
		while (path[0] == '/')
			path++;
	}
	if (path[0] == '.' && path[1] == 0)
		path++;
	plen = rt_strlen(path);
	if (plen == 0) {
		*len = (uint32_t)blen;
		return buf;
	}
	if (buf[blen - 1] != '/')
		buf[blen++] = '/';
	__builtin_memcpy(buf + blen, path, plen + 1);
	*len = (uint32_t)(blen + plen);
	return buf;

unresolved:
	*rflags |= RT_RF_UNRESOLVED;
	*len = (uint32_t)plen;
	return path;
}


/* ------------------------------------------------------------------ */
/* transports                                                          */

/* The kernel's id of the calling thread. */
static inline int32_t rt_kernel_tid(void)
{
#ifdef __FreeBSD__
	/* platform: thr_self(2); FreeBSD's thread ids start above PID_MAX and
	 * fit in 32 bits. */
	long id = 0;
	rt_sys1(SYS_thr_self, &id);
	return (int32_t)id;
#else
	/* Under seccomp a thread born after the filter has no tid to offer:
	 * 0 (each thread's tid is cached before rt_sandbox_enter sets in). */
	if (RT_UNLIKELY(rt_sandboxed))
		return 0;
	return (int32_t)rt_sys0(SYS_gettid);
#endif
}

static inline __attribute__((always_inline)) int32_t rt_gettid(void)
{
	int32_t t = rt_tid;
	if (RT_UNLIKELY(t == 0)) {
		t = rt_kernel_tid();
		rt_tid = t;
	}
	return t;
}

/* FIFO mode: the whole record in one write(2), so it stays atomic on the
 * pipe (POSIX: writes up to PIPE_BUF bytes are never interleaved). Larger
 * records are dropped: they could be torn by concurrent writers. */
static void rt_fifo_write(const struct rt_event *ev)
{
	unsigned char buf[PIPE_BUF];
	struct rt_record *r = (struct rt_record *)buf;
	uint64_t len = sizeof(*r) + ev->len[0] + ev->len[1] + ev->len[2] + 3;
	unsigned char *p;
	long n;
	int fd = __atomic_load_n(&rt_guarded_fds[RT_GUARD_FIFO_W], __ATOMIC_RELAXED);

	if (fd < 0 || len > sizeof(buf))
		return;
	__builtin_memset(r, 0, sizeof(*r));
	rt_fill_header(r, ev, (uint32_t)len, ev->time_ns ? ev->time_ns : rt_now_ns());
	p = buf + sizeof(*r);
	for (int i = 0; i < 3; i++) {
		if (ev->len[i])
			__builtin_memcpy(p, ev->str[i], ev->len[i]);
		p += ev->len[i];
		*p++ = 0;
	}
	for (int attempt = 0; attempt < 2; attempt++) {
		n = rt_sys3(SYS_write, fd, buf, len);
		if (n == (long)len)
			return;
		if (n == -EINTR) {
			attempt--;
			continue;
		}
		if (n != -EAGAIN || attempt == 1)
			break;
		/* Full pipe: wait a bounded time for the reader, like the ring. */
		struct pollfd pfd = {.fd = fd, .events = POLLOUT};
		struct timespec ts = {.tv_sec = (time_t)(g.fifo_wait_ns / 1000000000u),
				      .tv_nsec = (long)(g.fifo_wait_ns % 1000000000u)};
		rt_sys4(SYS_ppoll, &pfd, 1, &ts, NULL);
	}
	if (n == -EBADF)
		__atomic_store_n(&rt_guarded_fds[RT_GUARD_FIFO_W], -1, __ATOMIC_RELAXED); /* closed behind libc's back */
}

/* Every record goes through the one producer core (ring_producer.c), which
 * also prefaults ring pages; it never changes errno. */
static void rt_send(struct rt_event *ev)
{
	if (RT_LIKELY(g.mode == RT_MODE_RING)) {
		rt_producer_append(&g.prod, ev);
	} else {
		rt_fifo_write(ev);
	}
}

RT_TLS int rt_vfork_pending;
static RT_TLS int32_t rt_vfork_child;
static RT_TLS uint64_t rt_vfork_child_start;

static int rt_read_stat(int32_t *ppid, uint64_t *start_ns);

/* After this thread called vfork: a vfork child shares the parent's memory
 * and this thread's thread-locals, so the cached identity is the parent's.
 * The first record made after the parent resumed clears the mark. */
static __attribute__((noinline)) void rt_vfork_identity(struct rt_event *ev)
{
	int32_t pid = (int32_t)rt_sys0(SYS_getpid);
	if (pid == g.pid) {
		rt_vfork_pending = 0; /* the parent runs again: the child is gone */
		return;
	}
	if (rt_vfork_child != pid) {
		int32_t ppid = g.pid;
		rt_vfork_child_start = 0;
		rt_read_stat(&ppid, &rt_vfork_child_start);
		rt_vfork_child = pid;
	}
	ev->pid = ev->tid = pid; /* a vfork child is one thread: tid = pid */
	ev->ppid = g.pid;
	ev->start_ns = rt_vfork_child_start;
}

static inline __attribute__((always_inline)) void rt_fill_identity(struct rt_event *ev)
{
	ev->pid = g.pid;
	ev->tid = rt_gettid();
	ev->ppid = g.ppid;
	ev->start_ns = g.start_ns;
	if (RT_UNLIKELY(!g.ctor_done))
		ev->rflags |= RT_RF_PRE_INIT;
	if (RT_UNLIKELY(rt_vfork_pending))
		rt_vfork_identity(ev);
}

static void rt_send_call(const struct rt_call *c, const char *s1, uint32_t l1, const char *s2, uint32_t l2,
			 uint16_t rflags, int fresh);

RT_HOT void rt_emit1(uint16_t op, uint8_t access, uint32_t flags, uint32_t mode, int32_t result, int dirfd,
		     const char *path)
{
	if (RT_UNLIKELY(result == -EFAULT))
		path = NULL; /* the pointer may be bad: never read it */
	if (RT_LIKELY(path != NULL && path[0] == '/')) {
		/* The hot path: an absolute path goes to the ring as it is. */
		struct rt_event ev;
		ev.type = RT_TYPE_EVENT;
		ev.access = access;
		ev.op = op;
		ev.rflags = 0;
		ev.result = result;
		ev.flags = flags;
		ev.mode = mode;
		ev.time_ns = 0;
		rt_fill_identity(&ev);
		ev.str[0] = path;
		ev.len[0] = (uint32_t)rt_strlen(path);
		ev.len[1] = ev.len[2] = 0;
		ev.str[1] = ev.str[2] = NULL;
		rt_send(&ev);
		return;
	}
	struct rt_call c = {.op = op, .access = access, .flags = flags, .mode = mode, .result = result,
			    .dirfd1 = dirfd, .path1 = path};
	rt_emit(&c);
}

/*
 * Resolving a relative path needs RT_RESOLVED_MAX bytes. They come from a
 * per-thread buffer, not the stack: a signal handler may run on a small
 * alternate stack (SIGSTKSZ is 8 KiB on older systems). A handler that
 * interrupts a hook while the buffer is in use gets a stack buffer instead
 * (rt_emit_nested), the only case that needs that much stack.
 */
static RT_TLS char rt_tls_path[RT_RESOLVED_MAX];
static RT_TLS int rt_tls_path_busy;

static void rt_emit_with(const struct rt_call *c, int fresh, char *b1);

static __attribute__((noinline)) void rt_emit_nested(const struct rt_call *c, int fresh)
{
	char b1[RT_RESOLVED_MAX];
	rt_emit_with(c, fresh, b1);
}

static void rt_emit_impl(const struct rt_call *c, int fresh)
{
	if (rt_tls_path_busy) {
		rt_emit_nested(c, fresh);
		return;
	}
	rt_tls_path_busy = 1;
	__atomic_signal_fence(__ATOMIC_SEQ_CST); /* a handler sees busy before we use the buffer */
	rt_emit_with(c, fresh, rt_tls_path);
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	rt_tls_path_busy = 0;
}

/* Two-path calls (rename, link, symlink) are never hot: the second buffer
 * is on the stack. */
static __attribute__((noinline)) void rt_emit_two(const struct rt_call *c, int fresh, const char *s1, uint32_t l1,
						  uint16_t rf)
{
	char b2[RT_RESOLVED_MAX];
	uint32_t l2 = 0;
	uint16_t rf2 = 0;
	const char *s2;
	if (c->path2_raw) {
		s2 = c->path2;
		l2 = (uint32_t)rt_strlen(s2);
	} else {
		s2 = rt_resolve_path(c->dirfd2, c->path2, b2, &l2, &rf2);
		if (rf2 & RT_RF_UNRESOLVED)
			rf |= RT_RF_PATH2_UNRESOLVED;
	}
	rt_send_call(c, s1, l1, s2, l2, rf, fresh);
}

static void rt_emit_with(const struct rt_call *c, int fresh, char *b1)
{
	uint32_t l1 = 0;
	uint16_t rf = c->rflags;
	int bad = c->result == -EFAULT; /* a path pointer may be bad: read none */
	const char *s1;
	if (c->path1_raw && c->path1 != NULL && !bad) {
		s1 = c->path1;
		l1 = (uint32_t)rt_strlen(s1);
	} else {
		s1 = rt_resolve_path(c->dirfd1, bad ? NULL : c->path1, b1, &l1, &rf);
	}
	if (c->path2 != NULL && !bad)
		rt_emit_two(c, fresh, s1, l1, rf);
	else
		rt_send_call(c, s1, l1, NULL, 0, rf, fresh);
}

void rt_emit(const struct rt_call *c)
{
	int saved = errno;
	rt_emit_impl(c, 0);
	errno = saved;
}

void rt_emit_fresh(const struct rt_call *c)
{
	int saved = errno;
	rt_emit_impl(c, 1);
	errno = saved;
}

#ifdef __FreeBSD__
/* platform: the process's identity from sysctl(3), FreeBSD having no /proc
 * by default. Each preserves errno. */

/* ppid and start time from kern.proc.pid.<pid>. start_ns is ki_start minus
 * kern.boottime: the kernel stores the start as uptime and adds the boot
 * time when the sysctl is read, so the difference is the same whenever the
 * process is asked (ns, at µs precision). */
static int rt_read_stat(int32_t *ppid, uint64_t *start_ns)
{
	int mib[4] = {CTL_KERN, KERN_PROC, KERN_PROC_PID, (int)rt_sys0(SYS_getpid)};
	int bmib[2] = {CTL_KERN, KERN_BOOTTIME};
	struct kinfo_proc kp;
	struct timeval boot;
	size_t len = sizeof(kp), blen = sizeof(boot);
	uint64_t st, b;
	int saved = errno, ret = -1;

	if (sysctl(mib, 4, &kp, &len, NULL, 0) == 0 && len == sizeof(kp)) {
		*ppid = (int32_t)kp.ki_ppid;
		st = (uint64_t)kp.ki_start.tv_sec * 1000000u + (uint64_t)kp.ki_start.tv_usec;
		if (sysctl(bmib, 2, &boot, &blen, NULL, 0) == 0 && blen == sizeof(boot)) {
			b = (uint64_t)boot.tv_sec * 1000000u + (uint64_t)boot.tv_usec;
			if (st >= b)
				st -= b;
		}
		*start_ns = st * 1000u;
		ret = 0;
	}
	errno = saved;
	return ret;
}

/* The executable (kern.proc.pathname), NUL-terminated. Length or -1. The
 * mibs name the pid: kern.proc.args has no -1 for "this process". */
static long rt_self_exe(char *buf, size_t cap)
{
	int mib[4] = {CTL_KERN, KERN_PROC, KERN_PROC_PATHNAME, (int)rt_sys0(SYS_getpid)};
	size_t len = cap;
	int saved = errno;
	long n = -1;
	if (sysctl(mib, 4, buf, &len, NULL, 0) == 0 && len > 1 && len <= cap) {
		buf[len - 1] = 0; /* len counts the NUL */
		n = (long)len - 1;
	}
	errno = saved;
	return n;
}

/* argv, NUL-separated like Linux's /proc/self/cmdline (kern.proc.args).
 * A buffer too small gets what fits (ENOMEM): the caller cuts to whole
 * arguments anyway. Bytes or -1. */
static long rt_self_argv(char *buf, size_t cap)
{
	int mib[4] = {CTL_KERN, KERN_PROC, KERN_PROC_ARGS, (int)rt_sys0(SYS_getpid)};
	size_t len = cap;
	int saved = errno, r;
	long n = -1;
	r = sysctl(mib, 4, buf, &len, NULL, 0);
	if ((r == 0 || errno == ENOMEM) && len <= cap)
		n = (long)len;
	errno = saved;
	return n;
}
#else
/* Whether s is one of argv[1], argv[2] (g.argv, NUL-separated): where the
 * kernel puts the script's path when it runs a #! script, whose executable
 * is the interpreter, not the path that was exec'd. */
static int rt_argv12_is(const char *s)
{
	const char *a = g.argv, *end = g.argv + g.argv_len;
	for (int i = 0; i < 3 && a < end; i++) {
		if (i > 0 && __builtin_strcmp(a, s) == 0)
			return 1;
		a += rt_strlen(a) + 1;
	}
	return 0;
}

/* The executable: the path exec was given (AT_EXECFN, in the aux vector,
 * no system call) when it is plainly the program's own: absolute, no "."
 * or ".." component, not a descriptor (fexecve, execveat), not a script
 * (whose executable is its interpreter). It may name a symlink (/bin/true
 * for /usr/bin/true): the file that was exec'd. Otherwise, or when argv is
 * unknown, /proc/self/exe. */
static long rt_self_exe(char *buf, size_t cap)
{
	const char *fn = (const char *)getauxval(AT_EXECFN);
	if (fn != NULL && fn[0] == '/' && g.argv_len >= 0 && __builtin_strncmp(fn, "/dev/fd/", 8) != 0 &&
	    __builtin_strncmp(fn, "/proc/", 6) != 0 && __builtin_strstr(fn, "/./") == NULL &&
	    __builtin_strstr(fn, "/../") == NULL && !rt_argv12_is(fn)) {
		size_t n = rt_strlen(fn);
		size_t last = n >= 3 ? n - 3 : 0;
		if (n < cap && __builtin_strcmp(fn + last, "/..") != 0 && __builtin_strcmp(fn + (n >= 2 ? n - 2 : 0), "/.") != 0) {
			__builtin_memcpy(buf, fn, n + 1);
			return (long)n;
		}
	}
	return rt_readlink("/proc/self/exe", buf, cap);
}

static long rt_self_argv(char *buf, size_t cap)
{
	return rt_read_file("/proc/self/cmdline", buf, cap);
}

/* Parses /proc/self/stat: ppid (field 4) and starttime (field 22). */
static int rt_read_stat_path(const char *path, int32_t *ppid, uint64_t *start_ns);

static int rt_read_stat(int32_t *ppid, uint64_t *start_ns)
{
	return rt_read_stat_path("/proc/self/stat", ppid, start_ns);
}

int rt_read_stat_pid(int32_t pid, int32_t *ppid, uint64_t *start_ns)
{
	char path[48];
	char *p = rt_stpcpy(path, "/proc/");
	p = rt_utoa(p, (uint64_t)(uint32_t)pid);
	rt_stpcpy(p, "/stat")[0] = 0;
	return rt_read_stat_path(path, ppid, start_ns);
}

static int rt_read_stat_path(const char *path, int32_t *ppid, uint64_t *start_ns)
{
	char buf[1024];
	long n = rt_read_file(path, buf, sizeof(buf) - 1);
	char *p = NULL;
	int field = 2;
	uint64_t v;
	long tck;

	if (n <= 0)
		return -1;
	buf[n] = 0;
	for (long i = n - 1; i >= 0; i--)
		if (buf[i] == ')') {
			p = buf + i + 1;
			break;
		}
	if (p == NULL)
		return -1;
	/* p is at " S ppid …": field 3 starts after the first space. */
	while (*p) {
		if (*p == ' ') {
			field++;
			p++;
			if (field == 4 || field == 22) {
				v = 0;
				while (*p >= '0' && *p <= '9')
					v = v * 10 + (uint64_t)(*p++ - '0');
				if (field == 4) {
					*ppid = (int32_t)v;
				} else {
					tck = (long)getauxval(AT_CLKTCK);
					if (tck <= 0)
						tck = 100;
					*start_ns = v * (1000000000u / (uint64_t)tck);
					return 0;
				}
			}
			continue;
		}
		p++;
	}
	return -1;
}
#endif /* __FreeBSD__ */

static void rt_send_call(const struct rt_call *c, const char *s1, uint32_t l1, const char *s2, uint32_t l2,
			 uint16_t rflags, int fresh)
{
	struct rt_event ev = {.type = RT_TYPE_EVENT, .access = c->access, .op = c->op, .result = c->result,
			      .flags = c->flags, .mode = c->mode, .rflags = rflags};
	rt_fill_identity(&ev);
	if (c->as_pid) {
		/* Made by this process on behalf of a child (posix_spawn's file
		 * actions run in the child, inside libc). */
		ev.pid = ev.tid = c->as_pid;
		ev.ppid = g.pid;
		ev.start_ns = c->as_start_ns;
	} else if (fresh) {
		/* An exec hook: maybe in a vfork child, which shares the
		 * parent's memory and thread-locals. */
		ev.pid = (int32_t)rt_sys0(SYS_getpid);
		ev.tid = rt_kernel_tid();
		if (ev.pid != g.pid)
			rt_read_stat(&ev.ppid, &ev.start_ns);
	}
	ev.str[0] = s1;
	ev.len[0] = l1;
	if (s2) {
		ev.str[1] = s2;
		ev.len[1] = l2;
	}
	if (c->extra) {
		ev.str[2] = c->extra;
		ev.len[2] = (uint32_t)rt_strlen(c->extra);
	}
	rt_send(&ev);
}

void rt_emit_fd(uint16_t op, uint8_t access, uint32_t flags, uint32_t mode, int32_t result, int fd)
{
	char buf[RT_PATH_MAX + 1];
	int saved = errno;
	struct rt_call c = {.op = op, .access = access, .flags = flags, .mode = mode, .result = result};
	long n = -1;
	if (fd >= 0)
		n = rt_fd_path(fd, buf, sizeof(buf));
	if (n < 0) {
		c.rflags |= RT_RF_UNRESOLVED;
		if (n == -ENAMETOOLONG)
			c.rflags |= RT_RF_TOO_LONG;
		else if (n == RT_ERR_SANDBOXED)
			c.rflags |= RT_RF_SANDBOXED;
		buf[0] = 0;
		n = 0;
	}
	rt_send_call(&c, buf, (uint32_t)n, NULL, 0, c.rflags, 0);
	errno = saved;
}

void rt_emit0(uint16_t op, uint8_t access, uint32_t flags, int32_t result)
{
	int saved = errno;
	struct rt_call c = {.op = op, .access = access, .flags = flags, .result = result};
	rt_send_call(&c, "", 0, NULL, 0, 0, 0);
	errno = saved;
}

/* ------------------------------------------------------------------ */
/* process records                                                     */

/* Static, not stack: argv may be 28 KiB and a lazy init can run on a
 * signal handler's small stack. Only one process record is built at a time
 * (init, or a fork child, both single-threaded in practice); a concurrent
 * attempt is skipped rather than waited for. */
static struct {
	uint32_t busy;
	char cwd[RT_PATH_MAX + 1];
} rt_pbuf;

/* The executable and argv are learned once per image (from the collector's
 * answer and the constructor's arguments; from /proc only when neither
 * came) and reused by forked children, which share both. */
static void rt_learn_exe_argv(void)
{
	long n;
	if (g.exe_len < 0) {
		n = rt_self_exe(g.exe, sizeof(g.exe));
		g.exe_len = n < 0 ? 0 : n;
	}
	if (g.argv_len < 0) {
		n = rt_self_argv(g.argv, sizeof(g.argv));
		if (n > 0 && g.argv[n - 1] == 0)
			n--; /* the ABI separates arguments; it does not terminate the last */
		g.argv_len = n < 0 ? 0 : n;
	}
}

static void rt_emit_proc(uint16_t op)
{
	struct rt_event ev = {.type = RT_TYPE_PROC, .access = RT_ACCESS_NONE, .op = op};
	long exe_len, cwd_len, argv_len, room;
	int saved = errno;

	if (__atomic_exchange_n(&rt_pbuf.busy, 1, __ATOMIC_ACQUIRE) != 0) {
		rt_count_error();
		goto out;
	}
	rt_fill_identity(&ev);
	rt_learn_exe_argv();
	exe_len = g.exe_len;
	cwd_len = rt_cwd_get(rt_pbuf.cwd);
	if (cwd_len < 0)
		cwd_len = 0;
	room = (long)(g.mode == RT_MODE_FIFO ? PIPE_BUF : RT_MAX_RECORD_SIZE) - (long)sizeof(struct rt_record) -
	       exe_len - cwd_len - 3;
	argv_len = g.argv_len;
	if (argv_len > room) {
		/* Keep whole arguments only, and say so. */
		argv_len = room > 0 ? room : 0;
		while (argv_len > 0 && g.argv[argv_len] != 0)
			argv_len--;
		ev.rflags |= RT_RF_ARGV_TRUNCATED;
	}
	if (g.argv_cut)
		ev.rflags |= RT_RF_ARGV_TRUNCATED;
	ev.str[0] = g.exe;
	ev.len[0] = (uint32_t)exe_len;
	ev.str[1] = rt_pbuf.cwd;
	ev.len[1] = (uint32_t)cwd_len;
	ev.str[2] = g.argv;
	ev.len[2] = (uint32_t)argv_len;
	rt_send(&ev);
	__atomic_store_n(&rt_pbuf.busy, 0, __ATOMIC_RELEASE);
out:
	errno = saved;
}

/*
 * One PROC_EXIT record per process, so plans can say a process has ended:
 * from exit(), _exit() or _Exit() (result = the status passed), or from the
 * destructor when main returns (glibc then calls exit internally, past our
 * hook: result 0, the status being unknown to us). A process killed by a
 * signal leaves no exit record.
 */
static int rt_exit_noted;

void rt_note_exit(int status)
{
	if (!rt_active())
		return;
	int saved = errno;
	/* A vfork child shares our memory and still carries its parent's
	 * identity: its _exit must neither speak for the parent nor set the
	 * parent's flag. */
	if ((int32_t)rt_sys0(SYS_getpid) == g.pid && !__atomic_exchange_n(&rt_exit_noted, 1, __ATOMIC_RELAXED)) {
		struct rt_event ev = {.type = RT_TYPE_PROC, .access = RT_ACCESS_NONE, .op = RT_OP_PROC_EXIT,
				      .result = status};
		rt_fill_identity(&ev);
		rt_send(&ev);
	}
	errno = saved;
}

__attribute__((destructor)) static void rt_destructor(void)
{
	rt_note_exit(0);
}

/*
 * A forked child's start time without reading /proc: the kernel stamps a
 * new process with CLOCK_BOOTTIME inside fork, and /proc/PID/stat shows
 * that stamp rounded down to a clock tick (10 ms). The forking thread reads
 * the clock just before fork (t0, thread-local: the child is a copy of that
 * thread) and the child just after (t1); the kernel's stamp lies between.
 * When both fall in the same tick, that tick is the start time, exactly
 * what /proc would say. Otherwise (a fork slower than the rest of its tick,
 * about 1 in 100 for a large process) the child reads /proc/self/stat.
 */
static RT_TLS uint64_t rt_fork_t0;

static uint64_t rt_boottime_ns(void)
{
#ifdef CLOCK_BOOTTIME
	struct timespec ts;
	if (clock_gettime(CLOCK_BOOTTIME, &ts) == 0) /* vDSO: no system call, no cancellation point */
		return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
#endif
	return 0;
}

void rt_before_fork(void)
{
	if (__atomic_load_n(&rt_state, __ATOMIC_ACQUIRE) == RT_ST_READY)
		rt_fork_t0 = rt_boottime_ns();
}

static uint64_t rt_fork_start_ns(void)
{
	uint64_t t0 = rt_fork_t0, t1, start = 0;
	int32_t ppid;
	rt_fork_t0 = 0;
	t1 = rt_boottime_ns();
#ifndef RT_FORK_START_FROM_PROC /* for measuring what the clock saves */
	if (t0 != 0 && g.tick_ns != 0 && t0 <= t1 && t0 / g.tick_ns == t1 / g.tick_ns)
		return t1 / g.tick_ns * g.tick_ns;
#endif
	rt_read_stat(&ppid, &start);
	return start;
}

void rt_after_fork_child(void)
{
	int32_t pid;
	if (__atomic_load_n(&rt_state, __ATOMIC_ACQUIRE) != RT_ST_READY)
		return;
	pid = (int32_t)rt_sys0(SYS_getpid);
	if (pid == g.pid)
		return; /* already refreshed (atfork handler and fork hook both call us) */
	int saved = errno;
	/* The child is single-threaded: a try-lock another parent thread held
	 * at fork time would otherwise stay taken forever, and a cwd copy it was
	 * writing would stay half-written. */
	__atomic_store_n(&rt_pbuf.busy, 0, __ATOMIC_RELAXED);
	if (rt_cwd.seq & 1) {
		rt_cwd.len = 0;
		rt_cwd.seq++;
	}
	__atomic_store_n(&rt_cwd.lock, 0, __ATOMIC_RELAXED);
	/* fork does not copy the page tables of shared file mappings. */
	rt_producer_after_fork(&g.prod);
	__atomic_store_n(&rt_exit_noted, 0, __ATOMIC_RELAXED); /* the parent's flag is not ours */
	g.pid = pid;
	rt_tid = 0;
	g.ppid = (int32_t)rt_sys0(SYS_getppid);
	g.start_ns = rt_fork_start_ns();
	rt_emit_proc(RT_OP_PROC_FORK);
	errno = saved;
}

#ifndef RT_LIBC_BUILD
static void rt_atfork_child(void)
{
	rt_after_fork_child();
}
#endif


/* ------------------------------------------------------------------ */
/* exec support                                                        */

size_t rt_env_count(char *const envp[])
{
	size_t n = 0;
	if (envp)
		while (envp[n])
			n++;
	return n;
}

static int rt_env_is(const char *entry, const char *key)
{
	/* The first byte settles nearly every entry (the keys start with L
	 * or R): an exec from a forked child compares each of ~40 entries
	 * with 8 keys, and a call to strncmp each is most of that. */
	if (entry[0] != key[0])
		return 0;
	size_t n = rt_strlen(key);
	return __builtin_strncmp(entry, key, n) == 0 && entry[n] == '=';
}

/* The marker ("RESTRACK_EXEC_MARK=pid:start:fd") and its terminator fit
 * in this with room to spare. */
#define RT_ENV_MARK_ROOM 128

size_t rt_env_strbuf_size(char *const envp[])
{
	size_t need = RT_ENV_MARK_ROOM;
	/* Every LD_PRELOAD entry may be rewritten (with our path added); a
	 * rewrite is at most 2 * RT_PATH_MAX, and beyond RT_ENV_STRBUF there
	 * is room for that and the marker. */
	for (size_t i = 0; envp && envp[i] && need < RT_ENV_STRBUF; i++)
		if (rt_env_is(envp[i], "LD_PRELOAD"))
			need += rt_strlen(envp[i]) + rt_strlen(rt_self_path()) + 2;
	return need < RT_ENV_STRBUF ? need : RT_ENV_STRBUF;
}

/* Whether the colon/space-separated list holds this library. */
static int rt_preload_has_self(const char *list)
{
	const char *self = rt_self_path();
	size_t n = rt_strlen(self);
	const char *p = list;
	if (n == 0)
		return 1;
	while ((p = __builtin_strstr(p, self)) != NULL) {
		if ((p == list || p[-1] == ':' || p[-1] == ' ') && (p[n] == 0 || p[n] == ':' || p[n] == ' '))
			return 1;
		p += n;
	}
	return 0;
}

char **rt_env_for_exec(char *const envp[], char **out, char *strbuf, size_t size)
{
	size_t n = 0, k;
	int have[RT_NENV] = {0};
	char *sp = strbuf;
	/* The marker's room is kept back from the rewrites. */
	char *room_end = strbuf + (size > RT_ENV_MARK_ROOM ? size - RT_ENV_MARK_ROOM : 0);

	if (__atomic_load_n(&rt_state, __ATOMIC_ACQUIRE) != RT_ST_READY)
		return (char **)envp;
	for (size_t i = 0; envp && envp[i]; i++) {
		char *e = envp[i];
		if (rt_env_is(e, RT_ENV_EXEC_MARK))
			continue;
		for (k = 0; k < RT_NENV; k++)
			if (rt_env_is(e, rt_env_keys[k]))
				have[k] = 1;
		if (rt_env_is(e, "LD_PRELOAD") && !rt_preload_has_self(e + 11) &&
		    rt_strlen(e) + rt_strlen(rt_self_path()) + 2 < RT_PATH_MAX * 2 &&
		    rt_strlen(e) + rt_strlen(rt_self_path()) + 2 <= (size_t)(room_end - sp)) {
			/* The program replaced LD_PRELOAD: keep its libraries, add us. */
			char *start = sp;
			sp = rt_stpcpy(sp, "LD_PRELOAD=");
			sp = rt_stpcpy(sp, rt_self_path());
			if (e[11] != 0) {
				*sp++ = ':';
				sp = rt_stpcpy(sp, e + 11);
			}
			*sp++ = 0;
			e = start;
		}
		out[n++] = e;
	}
	for (k = 0; k < RT_NENV; k++)
		if (!have[k] && rt_env_saved[k])
			out[n++] = (char *)rt_env_saved[k];
	/* The marker: the next image's shim records PROC_EXEC, not PROC_START,
	 * and keeps the start time (exec does not change it; not in a vfork
	 * child, whose start is not ours). rt_exec_mark_fd may add the ring. */
	out[n++] = sp;
	sp = rt_stpcpy(sp, RT_ENV_EXEC_MARK "=");
	int32_t pid = (int32_t)rt_sys0(SYS_getpid);
	sp = rt_utoa(sp, (uint64_t)(uint32_t)pid);
	if (pid == g.pid && g.start_ns != 0) {
		*sp++ = ':';
		sp = rt_utoa(sp, g.start_ns);
	}
	*sp = 0;
	out[n] = NULL;
	return out;
}

/*
 * The ring travels across exec: the exec'ing image lends the next one a
 * copy of its ring descriptor (not close-on-exec, made just before the
 * exec, closed again if it fails) and names it in the marker, so the next
 * image maps it at once instead of asking the collector: a process started
 * by a traced parent pays no round trip. The next image takes it only when
 * the marker is its own (same pid), it is not setuid, and the ring belongs
 * to its effective uid (a program that changed user before exec, like
 * runuser, asks the collector for the ring of its new uid).
 */
int rt_exec_ring_fd(void)
{
#ifdef __linux__ /* platform: the next image takes it in the Linux attach path only */
	int fd = __atomic_load_n(&rt_guarded_fds[RT_GUARD_RING], __ATOMIC_RELAXED);
	if (fd < 0 || __atomic_load_n(&rt_state, __ATOMIC_ACQUIRE) != RT_ST_READY ||
	    __atomic_load_n(&rt_sandboxed, __ATOMIC_ACQUIRE))
		return -1; /* under seccomp the shim makes no call of its own */
	long dup = rt_sys3(SYS_fcntl, fd, F_DUPFD, RT_HIGH_FD_BASE);
	return dup < 0 ? -1 : (int)dup;
#else
	return -1;
#endif
}

void rt_exec_mark_fd(char **env, int fd)
{
	size_t n = rt_env_count(env);
	char *m, *p;
	if (fd < 0 || n == 0 || !rt_env_is(env[n - 1], RT_ENV_EXEC_MARK))
		return;
	m = env[n - 1];
	p = m + rt_strlen(m);
	if (__builtin_strchr(m, ':') == NULL) {
		*p++ = ':';
		*p++ = '0';
	}
	*p++ = ':';
	p = rt_utoa(p, (uint64_t)(unsigned)fd);
	*p = 0;
}

int rt_env_complete(char *const envp[])
{
	int have[RT_NENV] = {0};
	for (size_t i = 0; envp && envp[i]; i++)
		for (size_t k = 0; k < RT_NENV; k++)
			if (rt_env_is(envp[i], rt_env_keys[k])) {
				have[k] = 1;
				if (k == 0 && !rt_preload_has_self(envp[i] + 11))
					return 0;
			}
	for (size_t k = 0; k < RT_NENV; k++)
		if (!have[k] && rt_env_saved[k])
			return 0;
	return 1;
}

const char *rt_search_path(const char *file, char *buf, uint16_t *rflags)
{
	const char *path, *p, *end;
	size_t flen, dlen;

	if (file == NULL || file[0] == 0 || __builtin_strchr(file, '/'))
		return file;
	if (rt_sandboxed) {
		*rflags |= RT_RF_UNRESOLVED | RT_RF_SANDBOXED;
		return file; /* each probe would be a faccessat the program never made */
	}
	flen = rt_strlen(file);
	path = rt_getenv("PATH");
	if (path == NULL)
		path = "/bin:/usr/bin"; /* glibc's default for execvp */
	for (p = path; ; p = end + 1) {
		end = __builtin_strchr(p, ':');
		if (end == NULL)
			end = p + rt_strlen(p);
		dlen = (size_t)(end - p);
		if (dlen + flen + 2 <= RT_PATH_MAX) {
			if (dlen == 0) {
				__builtin_memcpy(buf, file, flen + 1); /* empty entry = cwd */
			} else {
				__builtin_memcpy(buf, p, dlen);
				buf[dlen] = '/';
				__builtin_memcpy(buf + dlen + 1, file, flen + 1);
			}
			if (rt_sys4(SYS_faccessat, AT_FDCWD, buf, X_OK, 0) == 0)
				return buf;
		}
		if (*end == 0)
			break;
	}
	*rflags |= RT_RF_UNRESOLVED;
	return file;
}

/* ------------------------------------------------------------------ */
/* initialisation                                                      */

static void rt_save_env(void)
{
	char *p = rt_env_buf;
	for (size_t k = 0; k < RT_NENV; k++) {
		const char *v = rt_getenv(rt_env_keys[k]);
		size_t kl = rt_strlen(rt_env_keys[k]);
		rt_env_saved[k] = NULL;
		if (v == NULL || kl + 1 + rt_strlen(v) + 1 > RT_ENV_ENTRY_MAX)
			continue;
		rt_env_saved[k] = p;
		p = rt_stpcpy(p, rt_env_keys[k]);
		*p++ = '=';
		p = rt_stpcpy(p, v);
		*p++ = 0;
	}
}

/* "pid[:start_ns[:ring_fd]]": each field a decimal number. */
static int rt_parse_mark(const char *s, uint64_t v[3])
{
	int i = 0, digits = 0;
	v[0] = v[1] = 0;
	v[2] = UINT64_MAX;
	for (;; s++) {
		if (*s >= '0' && *s <= '9') {
			if (i == 2 && digits == 0)
				v[2] = 0;
			v[i] = v[i] * 10 + (uint64_t)(*s - '0');
			digits++;
		} else if (*s == ':' && digits > 0 && i < 2) {
			i++;
			digits = 0;
		} else {
			return *s == 0 && digits > 0;
		}
	}
}

/* Removes the exec marker from environ (in place, as unsetenv would, but
 * without its lock) and reports whether it names this process; when it
 * does, its start time and lent ring descriptor (-1 if none) come back. */
static int rt_take_exec_mark(uint64_t *start_ns, int *ring_fd)
{
	int mine = 0;
	char **src, **dst;
	uint64_t v[3];
	*start_ns = 0;
	*ring_fd = -1;
	if (environ == NULL)
		return 0;
	for (src = dst = environ; *src; src++) {
		if (rt_env_is(*src, RT_ENV_EXEC_MARK)) {
			if (rt_parse_mark(*src + sizeof(RT_ENV_EXEC_MARK), v) && (int32_t)v[0] == g.pid) {
				mine = 1;
				*start_ns = v[1];
				if (v[2] < (uint64_t)INT_MAX)
					*ring_fd = (int)v[2];
			}
			continue;
		}
		*dst++ = *src;
	}
	*dst = NULL;
	return mine;
}

static int rt_high_fd(int fd)
{
	/* Keep our descriptors away from the low numbers programs reuse. */
	long hi = rt_sys3(SYS_fcntl, fd, F_DUPFD_CLOEXEC, RT_HIGH_FD_BASE);
	if (hi < 0)
		return fd;
	rt_sys1(SYS_close, fd);
	return (int)hi;
}

/* RESTRACK_DEBUG=1: one line on stderr saying why this process is not
 * traced (raw write: no stdio, no locale, nothing buffered). */
static void rt_debug_untraced(const char *why, const char *where, int err, const char *detail)
{
	char buf[512 + RT_RDV_TEXT_MAX];
	char *p = buf, *end = buf + sizeof(buf) - 64;
	const char *parts[] = {"restrack: pid ", NULL, " not traced: ", why, where ? " (" : NULL, where,
			       where ? ")" : NULL, detail && detail[0] ? ": " : NULL, detail};
	char num[24];
	*rt_utoa(num, (uint64_t)(uint32_t)g.pid) = 0;
	parts[1] = num;
	if (!g.debug)
		return;
	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		size_t n = parts[i] ? rt_strlen(parts[i]) : 0;
		if (n > (size_t)(end - p))
			n = (size_t)(end - p);
		__builtin_memcpy(p, parts[i] ? parts[i] : "", n);
		p += n;
	}
	if (err) {
		p = rt_stpcpy(p, " [errno ");
		p = rt_utoa(p, (uint64_t)(unsigned)err);
		*p++ = ']';
	}
	*p++ = '\n';
	rt_sys3(SYS_write, 2, buf, p - buf);
}

/* Finishes attaching a mapped ring; keeps its fd (guarded, close-on-exec)
 * to lend to the next image at exec. */
static void rt_ring_attached(const char *wait, uint64_t wait_ns, int fd)
{
	if (!__atomic_load_n(&rt_sandboxed, __ATOMIC_ACQUIRE))
		fd = rt_high_fd(fd); /* fcntl: not under a filter that may refuse it */
	__atomic_store_n(&rt_guarded_fds[RT_GUARD_RING], fd, __ATOMIC_RELAXED);
	if (wait)
		g.prod.full_wait_ns = wait_ns;
	g.mode = RT_MODE_RING;
}

#ifdef __linux__
/* The default: ask the collector at its socket for this uid's ring. */
static int rt_attach_rendezvous(const char *wait, uint64_t wait_ns)
{
	const char *sock = g.secure ? NULL : rt_getenv(RT_ENV_SOCKET);
	long fd;
	int rc;
	if (sock == NULL || sock[0] == 0)
		sock = RT_RDV_DEFAULT_SOCKET;
	if (__atomic_load_n(&rt_sandboxed, __ATOMIC_ACQUIRE)) {
		rt_debug_untraced("a seccomp filter is in force: the shim makes no socket calls", sock, 0, NULL);
		return -1;
	}
	fd = rt_rdv_register(sock, g.secure, &rt_rdv);
	if (fd < 0) {
		rt_debug_untraced(rt_rdv.why, sock, rt_rdv.err, rt_rdv.status ? rt_rdv.text : NULL);
		return -1;
	}
	rc = rt_producer_attach(&g.prod, (int)fd);
	if (rc != 0) {
		rt_sys1(SYS_close, fd);
		rt_debug_untraced("the collector's ring cannot be mapped", sock, rc < 0 ? -rc : rc, NULL);
		return -1;
	}
	g.start_ns = rt_rdv.start_ns;
	if (rt_rdv.text_len > 0 && rt_rdv.text_len <= RT_PATH_MAX && rt_rdv.text[0] == '/') {
		__builtin_memcpy(g.exe, rt_rdv.text, rt_rdv.text_len + 1);
		g.exe_len = (long)rt_rdv.text_len;
	}
	rt_ring_attached(wait, wait_ns, (int)fd);
	return 0;
}

/* The ring the exec'ing image lent us (rt_exec_ring_fd): taken only when
 * it is a ring of our effective uid; otherwise closed (the marker named
 * this process, so the descriptor was ours to close). */
static int rt_attach_lent(int fd, const char *wait, uint64_t wait_ns)
{
	struct stat st;
	/* The effective uid from the aux vector: no system call, which an
	 * inherited seccomp filter might refuse. */
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != (uid_t)getauxval(AT_EUID) ||
	    rt_producer_attach(&g.prod, fd) != 0) {
		rt_sys1(SYS_close, fd);
		return -1;
	}
	rt_ring_attached(wait, wait_ns, fd);
	return 0;
}
#endif

static int rt_attach(void)
{
	/* A setuid/setgid image runs with privileges its caller's
	 * environment must not steer: no ring or pipe path, socket, mode or
	 * wait from it; only the well-known socket. */
	const char *mode = g.secure ? NULL : rt_getenv(RT_ENV_MODE);
	const char *wait = g.secure ? NULL : rt_getenv(RT_ENV_FULL_WAIT);
	uint64_t wait_ns = RT_DEFAULT_FULL_WAIT_NS;
	int ok;
	long fd;

	if (wait) {
		uint64_t us = rt_parse_u64(wait, &ok);
		if (ok && us <= 1000000)
			wait_ns = us * 1000;
	}
	if (mode == NULL || mode[0] == 0 || __builtin_strcmp(mode, "ring") == 0) {
		const char *path = g.secure ? NULL : rt_getenv(RT_ENV_RING);
#ifdef __linux__
		/* Never in a setuid image: the number comes from the environment. */
		if (!g.secure && g.lent_fd >= 0 && rt_attach_lent(g.lent_fd, wait, wait_ns) == 0)
			return 0;
#endif
		if (path == NULL || path[0] == 0) {
#ifdef __linux__
			return rt_attach_rendezvous(wait, wait_ns);
#else
			return -1; /* platform: no rendezvous yet; RESTRACK_RING only */
#endif
		}
		fd = rt_sys4(SYS_openat, AT_FDCWD, path, O_RDWR | O_CLOEXEC, 0);
		if (fd < 0) {
			rt_debug_untraced("cannot open the ring named by " RT_ENV_RING, path, (int)-fd, NULL);
			return -1;
		}
		ok = rt_producer_attach(&g.prod, (int)fd);
		if (ok != 0) {
			rt_sys1(SYS_close, fd);
			rt_debug_untraced("cannot map the ring named by " RT_ENV_RING, path, ok < 0 ? -ok : ok, NULL);
			return -1;
		}
		rt_ring_attached(wait, wait_ns, (int)fd);
		return 0;
	}
	if (__builtin_strcmp(mode, "fifo") == 0) {
		const char *path = rt_getenv(RT_ENV_FIFO);
		if (path == NULL || path[0] == 0)
			return -1;
		/* O_WRONLY|O_NONBLOCK fails (ENXIO) when no reader has it open:
		 * then there is no collector and the shim stays off. */
		fd = rt_sys4(SYS_openat, AT_FDCWD, path, O_WRONLY | O_NONBLOCK | O_CLOEXEC, 0);
		if (fd < 0) {
			rt_debug_untraced("no reader on the pipe named by " RT_ENV_FIFO, path, (int)-fd, NULL);
			return -1;
		}
		long rfd = rt_sys4(SYS_openat, AT_FDCWD, path, O_RDONLY | O_NONBLOCK | O_CLOEXEC, 0);
		if (rfd < 0) {
			rt_sys1(SYS_close, fd);
			return -1;
		}
		__atomic_store_n(&rt_guarded_fds[RT_GUARD_FIFO_W], rt_high_fd((int)fd), __ATOMIC_RELAXED);
		__atomic_store_n(&rt_guarded_fds[RT_GUARD_FIFO_R], rt_high_fd((int)rfd), __ATOMIC_RELAXED);
		g.fifo_wait_ns = wait_ns;
		g.mode = RT_MODE_FIFO;
		return 0;
	}
	return -1;
}

static void rt_init(void)
{
	Dl_info info;
	int exec_mark;
	uint64_t mark_start;

	rt_in_shim++;
#ifdef __linux__
	g.secure = getauxval(AT_SECURE) != 0;
	long tck = (long)getauxval(AT_CLKTCK);
#else
	g.secure = issetugid() != 0; /* platform: FreeBSD's AT_SECURE */
	long tck = 0;
#endif
	g.tick_ns = 1000000000u / (uint64_t)(tck > 0 ? tck : 100);
	if (!g.secure) {
		const char *dbg = rt_getenv(RT_ENV_DEBUG);
		g.debug = dbg != NULL && dbg[0] == '1' && dbg[1] == 0;
	}
	g.pid = (int32_t)rt_sys0(SYS_getpid);
	g.ppid = (int32_t)rt_sys0(SYS_getppid);
	exec_mark = rt_take_exec_mark(&mark_start, &g.lent_fd);
	if (exec_mark && mark_start != 0)
		g.start_ns = mark_start; /* exec keeps the process's start */
	/* Before attaching: under an inherited filter the rendezvous's
	 * socket calls may be refused (SIGSYS), a lent ring is still mapped.
	 * A lent ring says the exec'ing image had no filter in force (it lends
	 * none when sandboxed: rt_exec_ring_fd), and exec adds none: then
	 * nothing is read (the probe's open/read/close of /proc/self/status
	 * is the dearest part of a traced exec). A setuid image trusts no
	 * marker and probes. */
	if (!exec_mark || g.lent_fd < 0 || g.secure)
		rt_seccomp_probe();
	if (rt_attach() != 0) {
		__atomic_store_n(&rt_state, RT_ST_OFF, __ATOMIC_RELEASE);
		rt_in_shim--;
		return;
	}
	rt_save_env();
	if (dladdr((void *)rt_init, &info) && info.dli_fname && rt_strlen(info.dli_fname) < RT_PATH_MAX)
		g.self_path = info.dli_fname;
	/* The collector read the start time at registration; with an
	 * explicit RESTRACK_RING there was none. */
	if (g.start_ns == 0)
		rt_read_stat(&g.ppid, &g.start_ns);

	__atomic_store_n(&rt_state, RT_ST_READY, __ATOMIC_RELEASE);
	rt_emit_proc(exec_mark ? RT_OP_PROC_EXEC : RT_OP_PROC_START);
	rt_in_shim--;
}

void rt_lazy_init(void)
{
	int expected = RT_ST_UNINIT;
	/* One initialiser; anyone arriving meanwhile (another thread, or a
	 * signal handler on this one) forwards without recording. */
	if (__atomic_compare_exchange_n(&rt_state, &expected, RT_ST_INITIALIZING, 0, __ATOMIC_ACQ_REL,
					__ATOMIC_ACQUIRE))
		rt_init();
}

static int rt_loaded_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size;
	(void)arg;
	if (info->dlpi_name && info->dlpi_name[0] == '/')
		rt_emit1(RT_OP_LOADED, RT_ACCESS_READ, 0, 0, 0, AT_FDCWD, info->dlpi_name);
	return 0;
}

/* argv as glibc hands it to constructors, NUL-separated into g.argv:
 * reading /proc/self/cmdline instead costs a process start tens of µs. */
static void rt_keep_argv(int argc, char **argv)
{
	long n = 0;
	if (argv == NULL || argc < 0 || g.argv_len >= 0)
		return;
	for (int i = 0; i < argc && argv[i]; i++) {
		size_t l = rt_strlen(argv[i]);
		if ((size_t)n + l + 1 > sizeof(g.argv)) {
			g.argv_cut = 1;
			break;
		}
		__builtin_memcpy(g.argv + n, argv[i], l + 1);
		n += (long)l + 1;
	}
	g.argv_len = n > 0 ? n - 1 : 0;
}

/* glibc passes (argc, argv, envp) to ELF constructors; other platforms'
 * loaders may not, so they read argv from the system instead. */
__attribute__((constructor)) static void rt_constructor(int argc, char **argv, char **envp)
{
	int saved = errno;
	(void)envp;
#if defined(__linux__) && defined(__GLIBC__)
	rt_keep_argv(argc, argv);
#else
	(void)argc, (void)argv, (void)rt_keep_argv;
#endif
	/* From here on records are made by (or after) the constructor. */
	__atomic_store_n(&g.ctor_done, 1, __ATOMIC_RELEASE);
	rt_lazy_init();
	/* platform: in FreeBSD's drop-in libc the real functions are libc's own
	 * (nothing for dlsym(RTLD_NEXT) to find) and fork is hooked directly,
	 * libc's pthread_atfork being a stub in programs without libthr. */
#ifndef RT_LIBC_BUILD
	rt_in_shim++;
	rt_resolve_all();
	rt_in_shim--;
#endif
	if (__atomic_load_n(&rt_state, __ATOMIC_ACQUIRE) == RT_ST_READY) {
#ifndef RT_LIBC_BUILD
		pthread_atfork(rt_before_fork, NULL, rt_atfork_child);
#endif
		/* The libraries the loader mapped before we ran are reads too. */
		dl_iterate_phdr(rt_loaded_cb, NULL);
	}
	errno = saved;
}
