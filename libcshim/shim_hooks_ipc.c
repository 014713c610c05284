/*
 * shim_hooks_ipc.c — hooks of things named by a path that are not plain
 * files: AF_UNIX sockets (bind, connect; their inet addresses go on to
 * shim_hooks_net.c), POSIX shared memory and message queues (shm_open,
 * mq_open and their unlinks), named semaphores (sem_open, sem_unlink), and
 * libraries (dlopen).
 *
 * Producer: these hooks. Consumer: the collector via rt_emit*. IPC objects
 * are write-like (both sides share state), so their access is always
 * "write". Recording never changes the call: the real function runs first
 * and its result and errno are returned untouched.
 */
#undef _FORTIFY_SOURCE
#include "shim.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <link.h>
#include <mqueue.h>
#include <semaphore.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>

/* ---- AF_UNIX sockets ---- */

/* AF_INET and AF_INET6 addresses are shim_hooks_net.c's. */
void rt_net_bind(int fd, const struct sockaddr *addr, socklen_t len, int ret) RT_HIDDEN;
void rt_net_connect(int fd, const struct sockaddr *addr, socklen_t len, int ret) RT_HIDDEN;

static void rt_rec_sock(uint16_t op, const struct sockaddr *addr, socklen_t len, int ret)
{
	char path[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
	size_t off = offsetof(struct sockaddr_un, sun_path), n;
	int err = errno;

	if (addr == NULL || (ret < 0 && err == EFAULT) || len <= off || addr->sa_family != AF_UNIX)
		return;
	n = len - off;
	if (n > sizeof(path) - 1)
		n = sizeof(path) - 1;
	__builtin_memcpy(path, ((const struct sockaddr_un *)addr)->sun_path, n);
	path[n] = 0;
	if (path[0] == 0)
		return; /* abstract socket: not in the file system */
	if (rt_active())
		rt_emit1(op, RT_ACCESS_WRITE, 0, 0, rt_result(ret, err), AT_FDCWD, path);
}

RT_EXPORT int bind(int fd, const struct sockaddr *addr, socklen_t len)
{
	RT_REAL(bind);
	if (!real_bind) {
		errno = ENOSYS;
		return -1;
	}
	int ret = real_bind(fd, addr, len);
	rt_rec_sock(RT_OP_BIND, addr, len, ret);
	rt_net_bind(fd, addr, len, ret);
	return ret;
}

RT_EXPORT int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
	RT_REAL(connect);
	if (!real_connect) {
		errno = ENOSYS;
		return -1;
	}
	int ret = real_connect(fd, addr, len);
	rt_rec_sock(RT_OP_CONNECT, addr, len, ret);
	rt_net_connect(fd, addr, len, ret);
	return ret;
}

/* ---- POSIX shared memory and message queues ---- */

/* Records name as the file it is on Linux: prefix + "/" + name, or prefix
 * + name when prefix ends in '.' (semaphores: "/dev/shm/sem." + name). */
static void rt_rec_named(uint16_t op, const char *prefix, const char *name, int flags, mode_t mode, int ret)
{
	char path[RT_PATH_MAX + 64];
	int err = errno;
	size_t pl, nl;
	if (!rt_active())
		return;
	if (name == NULL || (ret < 0 && err == EFAULT)) {
		rt_emit1(op, RT_ACCESS_WRITE, (uint32_t)flags, (uint32_t)mode, rt_result(ret, err), AT_FDCWD, NULL);
		return;
	}
	while (name[0] == '/')
		name++;
	pl = rt_strlen(prefix);
	nl = rt_strlen(name);
	if (nl > RT_PATH_MAX)
		nl = RT_PATH_MAX; /* the call failed with ENAMETOOLONG long before */
	__builtin_memcpy(path, prefix, pl);
	if (prefix[pl - 1] != '.')
		path[pl++] = '/';
	__builtin_memcpy(path + pl, name, nl);
	path[pl + nl] = 0;
	rt_emit1(op, RT_ACCESS_WRITE, (uint32_t)flags, (uint32_t)mode, rt_result(ret, err), AT_FDCWD, path);
}

RT_EXPORT int shm_open(const char *name, int flags, mode_t mode)
{
	RT_REAL(shm_open);
	if (!real_shm_open) {
		errno = ENOSYS;
		return -1;
	}
	int ret = real_shm_open(name, flags, mode);
	rt_rec_named(RT_OP_SHM_OPEN, "/dev/shm", name, flags, mode, ret);
	return ret;
}

RT_EXPORT int shm_unlink(const char *name)
{
	RT_REAL(shm_unlink);
	if (!real_shm_unlink) {
		errno = ENOSYS;
		return -1;
	}
	int ret = real_shm_unlink(name);
	rt_rec_named(RT_OP_SHM_UNLINK, "/dev/shm", name, 0, 0, ret);
	return ret;
}

RT_EXPORT mqd_t mq_open(const char *name, int flags, ...)
{
	mode_t mode = 0;
	struct mq_attr *attr = NULL;
	mqd_t ret;
	RT_REAL(mq_open);
	if (!real_mq_open) {
		errno = ENOSYS;
		return (mqd_t)-1;
	}
	if (flags & O_CREAT) {
		va_list ap;
		va_start(ap, flags);
		mode = va_arg(ap, mode_t);
		attr = va_arg(ap, struct mq_attr *);
		va_end(ap);
		ret = real_mq_open(name, flags, mode, attr);
	} else {
		ret = real_mq_open(name, flags);
	}
	rt_rec_named(RT_OP_MQ_OPEN, "/dev/mqueue", name, flags, mode, (int)ret);
	return ret;
}

RT_EXPORT int mq_unlink(const char *name)
{
	RT_REAL(mq_unlink);
	if (!real_mq_unlink) {
		errno = ENOSYS;
		return -1;
	}
	int ret = real_mq_unlink(name);
	rt_rec_named(RT_OP_MQ_UNLINK, "/dev/mqueue", name, 0, 0, ret);
	return ret;
}

/* ---- POSIX named semaphores ---- */

/* glibc keeps a named semaphore "/NAME" in the file /dev/shm/sem.NAME; two
 * processes opening the same name share it like an shm_open object. */
RT_EXPORT sem_t *sem_open(const char *name, int flags, ...)
{
	mode_t mode = 0;
	unsigned int value = 0;
	sem_t *ret;
	RT_REAL(sem_open);
	if (!real_sem_open) {
		errno = ENOSYS;
		return SEM_FAILED;
	}
	if (flags & O_CREAT) {
		va_list ap;
		va_start(ap, flags);
		mode = va_arg(ap, mode_t);
		value = va_arg(ap, unsigned int);
		va_end(ap);
		ret = real_sem_open(name, flags, mode, value);
	} else {
		ret = real_sem_open(name, flags);
	}
	rt_rec_named(RT_OP_SEM_OPEN, "/dev/shm/sem.", name, flags, mode, ret == SEM_FAILED ? -1 : 0);
	return ret;
}

RT_EXPORT int sem_unlink(const char *name)
{
	RT_REAL(sem_unlink);
	if (!real_sem_unlink) {
		errno = ENOSYS;
		return -1;
	}
	int ret = real_sem_unlink(name);
	rt_rec_named(RT_OP_SEM_UNLINK, "/dev/shm/sem.", name, 0, 0, ret);
	return ret;
}

/* ---- dlopen ---- */

/*
 * glibc's dlopen looks at its return address to find the calling object:
 * a name without '/' is searched with that object's RPATH/RUNPATH (and its
 * loaders' RPATHs), "$ORIGIN" expands to its directory, and the library
 * joins the caller's link-map namespace. A C hook calling the real dlopen
 * makes the shim the caller. So the exported dlopen is an assembly
 * trampoline that asks rt_dlopen_route where to jump, with the caller's
 * return address untouched:
 *   - when the caller cannot change the outcome — a path with '/' and no
 *     '$', or a bare name asked by an object without RPATH/RUNPATH, in the
 *     base namespace, in a process where no object has an RPATH — jump to
 *     rt_dlopen_full, which calls the real dlopen itself and records what
 *     the loader mapped: the file (its link map's name) with the real
 *     result, and every library loaded along with it;
 *   - otherwise record the request as given (unresolved, result 0) and jump
 *     to the real dlopen, which then sees the caller's own address.
 */
RT_HIDDEN void *rt_dlopen_route(const char *file, int flags, const void *caller);
RT_HIDDEN void *rt_dlopen_full(const char *file, int flags);

static void *rt_dlopen_missing(const char *file, int flags)
{
	(void)file;
	(void)flags;
	return NULL;
}

/* The objects mapped before a dlopen, by program-header address (unique
 * per loaded object while it stays loaded). Past the cap, objects are taken
 * for new ones: recorded twice at worst, never missed. */
#define RT_DL_SNAP 1024
struct rt_dl_snap {
	size_t n;
	const void *phdr[RT_DL_SNAP];
	const char *skip; /* the dlopen'd file itself, recorded as dlopen */
	int rpath;        /* some loaded object has a DT_RPATH */
};

static int rt_has_dyn(const ElfW(Dyn) *d, ElfW(Sxword) tag1, ElfW(Sxword) tag2)
{
	for (; d != NULL && d->d_tag != DT_NULL; d++)
		if (d->d_tag == tag1 || d->d_tag == tag2)
			return 1;
	return 0;
}

static int rt_dl_snap_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct rt_dl_snap *s = arg;
	(void)size;
	if (s->n < RT_DL_SNAP)
		s->phdr[s->n++] = info->dlpi_phdr;
	for (int i = 0; i < info->dlpi_phnum && !s->rpath; i++)
		if (info->dlpi_phdr[i].p_type == PT_DYNAMIC)
			s->rpath = rt_has_dyn((const ElfW(Dyn) *)(info->dlpi_addr + info->dlpi_phdr[i].p_vaddr), DT_RPATH,
					      DT_RPATH);
	return 0;
}

static int rt_dl_new_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
	const struct rt_dl_snap *s = arg;
	(void)size;
	for (size_t i = 0; i < s->n; i++)
		if (s->phdr[i] == info->dlpi_phdr)
			return 0;
	/* Called under the loader's lock: rt_emit1 makes no loader call. */
	if (info->dlpi_name && info->dlpi_name[0] == '/' &&
	    !(s->skip && __builtin_strcmp(s->skip, info->dlpi_name) == 0))
		rt_emit1(RT_OP_LOADED, RT_ACCESS_READ, 0, 0, 0, AT_FDCWD, info->dlpi_name);
	return 0;
}

RT_HIDDEN void *rt_dlopen_full(const char *file, int flags)
{
	void *(*real)(const char *, int) = (void *(*)(const char *, int))rt_real_get(RT_SYM_dlopen);
	/* 8 KiB of stack: dlopen is not async-signal-safe, so this never runs
	 * on a signal handler's small stack. */
	struct rt_dl_snap snap;
	int active = rt_active();
	snap.n = 0;
	snap.rpath = 0;
	snap.skip = NULL;
	if (active)
		dl_iterate_phdr(rt_dl_snap_cb, &snap);
	void *h = real(file, flags);
	if (active) {
		int err = errno;
		struct link_map *lm = NULL;
		if (h != NULL && dlinfo(h, RTLD_DI_LINKMAP, &lm) == 0 && lm && lm->l_name && lm->l_name[0] == '/') {
			rt_emit1(RT_OP_DLOPEN, RT_ACCESS_READ, (uint32_t)flags, 0, 0, AT_FDCWD, lm->l_name);
			snap.skip = lm->l_name;
		} else {
			/* A failed dlopen names no file (dlerror says why; errno is
			 * not part of its contract): recorded as given, as a failure.
			 * A bare name that loaded without a path in its link map
			 * (the vDSO…) stays as given too. */
			struct rt_call c = {.op = RT_OP_DLOPEN, .access = RT_ACCESS_READ, .flags = (uint32_t)flags,
					    .result = h ? 0 : -ENOENT, .dirfd1 = AT_FDCWD, .path1 = file,
					    .path1_raw = __builtin_strchr(file, '/') == NULL};
			if (c.path1_raw)
				c.rflags = RT_RF_UNRESOLVED;
			rt_emit(&c);
		}
		if (h != NULL)
			dl_iterate_phdr(rt_dl_new_cb, &snap);
		errno = err;
	}
	return h;
}

/* Whether the object holding caller would search a bare name exactly as the
 * shim would: no RPATH or RUNPATH of its own, in the base namespace, and no
 * RPATH anywhere in the process (the loaders of an object lend it theirs). */
static int rt_dlopen_caller_neutral(const void *caller)
{
	Dl_info info;
	struct link_map *lm = NULL;
	Lmid_t lmid = -1;
	struct rt_dl_snap snap;
	if (caller == NULL || !dladdr1(caller, &info, (void **)&lm, RTLD_DL_LINKMAP) || lm == NULL)
		return 0;
	if (rt_has_dyn(lm->l_ld, DT_RPATH, DT_RUNPATH))
		return 0;
	if (dlinfo(lm, RTLD_DI_LMID, &lmid) != 0 || lmid != LM_ID_BASE)
		return 0;
	snap.n = 0;
	snap.rpath = 0;
	dl_iterate_phdr(rt_dl_snap_cb, &snap);
	return !snap.rpath;
}

RT_HIDDEN void *rt_dlopen_route(const char *file, int flags, const void *caller)
{
	int saved = errno;
	void *real = rt_real_get(RT_SYM_dlopen);
	if (real == NULL)
		return (void *)rt_dlopen_missing;
	if (file == NULL)
		return real; /* the main program: nothing is opened */
	if (__builtin_strchr(file, '$') == NULL &&
	    (__builtin_strchr(file, '/') != NULL || !rt_active() || rt_dlopen_caller_neutral(caller))) {
		errno = saved;
		return (void *)rt_dlopen_full;
	}
	if (rt_active()) {
		struct rt_call c = {.op = RT_OP_DLOPEN, .access = RT_ACCESS_READ, .flags = (uint32_t)flags,
				    .rflags = RT_RF_UNRESOLVED, .dirfd1 = AT_FDCWD, .path1 = file,
				    .path1_raw = 1};
		rt_emit(&c); /* the caller's RUNPATH, or "$ORIGIN/…": kept as written */
	}
	errno = saved;
	return real;
}

#if defined(__x86_64__)
__asm__(".text\n"
	".globl dlopen\n"
	".type dlopen, @function\n"
	"dlopen:\n"
	"	mov (%rsp), %rdx\n" /* the caller's return address */
	"	push %rdi\n"
	"	push %rsi\n"
	"	sub $8, %rsp\n" /* 16-byte alignment for the call */
	"	call rt_dlopen_route\n"
	"	add $8, %rsp\n"
	"	pop %rsi\n"
	"	pop %rdi\n"
	"	jmp *%rax\n"
	".size dlopen, .-dlopen\n");
#elif defined(__aarch64__)
__asm__(".text\n"
	".globl dlopen\n"
	".type dlopen, %function\n"
	"dlopen:\n"
	"	mov x2, x30\n" /* the caller's return address */
	"	stp x29, x30, [sp, #-32]!\n"
	"	mov x29, sp\n"
	"	stp x0, x1, [sp, #16]\n"
	"	bl rt_dlopen_route\n"
	"	mov x16, x0\n"
	"	ldp x0, x1, [sp, #16]\n"
	"	ldp x29, x30, [sp], #32\n"
	"	br x16\n"
	".size dlopen, .-dlopen\n");
#else
/* Elsewhere a C hook: names without '/' are searched as if the shim called. */
RT_EXPORT void *dlopen(const char *file, int flags)
{
	void *(*target)(const char *, int) =
		(void *(*)(const char *, int))rt_dlopen_route(file, flags, __builtin_return_address(0));
	return target(file, flags);
}
#endif
