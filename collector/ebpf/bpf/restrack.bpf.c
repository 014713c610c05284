// SPDX-License-Identifier: (MIT OR GPL-2.0)
//
// restrack's kernel-side tracer: the eBPF comparison mode (docs/ebpf.md).
//
// Producers: syscall tracepoints of the traced process tree and three
// sched tracepoints (tp_btf) that maintain that tree. Consumer: one Go
// reader (collector/ebpf) that drains the BPF ring buffer in bulk every poll
// interval. Overflow: a record that does not fit is dropped and counted in
// the per-CPU `counters` map; nothing here ever waits.
//
// User memory is read at syscall *exit*: the enter program only stashes the
// argument pointers, so a path the caller had not yet faulted in when it
// entered the syscall has been paged in by the kernel itself by the time the
// syscall returns (opensnoop's known blind spot). The exception is exec,
// whose old address space is gone at exit: a successful exec is reported by
// sched_process_exec from the kernel's copy of the filename instead.
//
// Wakeups: records are published with BPF_RB_NO_WAKEUP unless the ring holds
// more than `wake_bytes`, so the reader is woken only near its high-water
// mark and otherwise polls; a wakeup costs microseconds per event.
//
// Rebuild with `make generate` (needs clang); the generated object is
// committed so users need no clang.

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "event.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

// Minimal kernel types, relocated against the running kernel's BTF (CO-RE),
// so no vmlinux.h is needed and field offsets are never hard-coded.
typedef struct {
	int counter;
} atomic_t;

struct signal_struct {
	atomic_t live;
} __attribute__((preserve_access_index));

struct mm_struct {
	unsigned long arg_start;
	unsigned long arg_end;
} __attribute__((preserve_access_index));

struct qstr {
	const unsigned char *name;
} __attribute__((preserve_access_index));

struct dentry {
	struct dentry *d_parent;
} __attribute__((preserve_access_index));

// Since 6.15 d_name and f_path are const members of anonymous unions whose
// writable twins are __d_name and __f_path; CO-RE does not match a local
// field against a const one, so each kernel layout has its own flavour
// (the ___suffix is dropped when matching type names).
struct dentry___new {
	struct qstr __d_name;
} __attribute__((preserve_access_index));

struct dentry___old {
	struct qstr d_name;
} __attribute__((preserve_access_index));

struct vfsmount {
	struct dentry *mnt_root;
} __attribute__((preserve_access_index));

// struct mount is fs/mount.h's: a vfsmount is embedded in it.
struct mount {
	struct mount *mnt_parent;
	struct dentry *mnt_mountpoint;
	struct vfsmount mnt;
} __attribute__((preserve_access_index));

struct path {
	struct vfsmount *mnt;
	struct dentry *dentry;
} __attribute__((preserve_access_index));

struct file___new {
	struct path __f_path;
} __attribute__((preserve_access_index));

struct file___old {
	struct path f_path;
} __attribute__((preserve_access_index));

struct file;

struct fdtable {
	unsigned int max_fds;
	struct file **fd;
} __attribute__((preserve_access_index));

struct files_struct {
	struct fdtable *fdt;
} __attribute__((preserve_access_index));

struct fs_struct {
	struct path pwd;
} __attribute__((preserve_access_index));

struct task_struct {
	int pid;
	int tgid;
	int exit_code;
	__u64 start_boottime;
	struct signal_struct *signal;
	struct mm_struct *mm;
	struct files_struct *files;
	struct fs_struct *fs;
} __attribute__((preserve_access_index));

struct linux_binprm {
	const char *filename;
	struct file *file;
} __attribute__((preserve_access_index));

// Sockets, for the network calls: file->private_data is the struct socket
// of a socket file (only read when the call did not fail with ENOTSOCK).
struct file___priv {
	void *private_data;
} __attribute__((preserve_access_index));

struct rt_in6 {
	__u8 b[16];
};

struct sock_common {
	unsigned short skc_family;
	__u32 skc_rcv_saddr;
	__u16 skc_num;
	struct rt_in6 skc_v6_rcv_saddr;
} __attribute__((preserve_access_index));

struct sock {
	struct sock_common __sk_common;
} __attribute__((preserve_access_index));

struct socket {
	short type;
	struct sock *sk;
} __attribute__((preserve_access_index));

// Set by the loader: wake the reader once this many bytes are unread.
volatile const __u64 wake_bytes = 1 << 20;

// traced holds every process (tgid) of the traced tree. User space seeds
// the root; sched_process_fork adds children, sched_process_exit removes.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, RT_MAX_PROCS);
	__type(key, __u32);
	__type(value, struct rt_proc);
} traced SEC(".maps");

// inflight holds a syscall's arguments from enter to exit, in the calling
// thread's task storage: cheaper than a hash map update and delete per
// call, and freed with the thread, so a thread killed inside a syscall
// leaks nothing. op == 0 marks the slot empty.
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct rt_args);
} inflight SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20); // resized by the loader
} events SEC(".maps");

// scratch builds one variable-length record per CPU before it is copied
// into the ring; a ring reservation must have a constant size, and a
// constant 4 * PATH_MAX reservation would waste most of the ring. One per
// CPU suffices: tracepoint programs run with preemption disabled, and none
// of these runs in interrupt context.
// data holds up to four strings; each starts below 4 * RT_STR_MAX and
// may be RT_STR_MAX long, hence the fifth page of slack for the verifier.
// walk and name are the dentry walk's work areas.
struct scratch {
	struct rt_event ev;
	char data[RT_STR_MAX * 5];
	char walk[RT_STR_MAX];
	char name[RT_NAME_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} scratch_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, RT_COUNTER_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

static __always_inline void count(__u32 which)
{
	__u64 *c = bpf_map_lookup_elem(&counters, &which);
	if (c)
		*c += 1;
}

static __always_inline struct scratch *scratch_get(void)
{
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&scratch_map, &zero);
	if (s)
		__builtin_memset(&s->ev, 0, sizeof(s->ev));
	return s;
}

// emit copies the header and its four strings into the ring, waking the
// reader only past the high-water mark.
static __always_inline void emit(struct scratch *s)
{
	__u64 n = (__u64)s->ev.len1 + s->ev.len2 + s->ev.len3 + s->ev.len4;
	if (n > sizeof(s->data))
		n = sizeof(s->data);
	__u64 flags = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wake_bytes ?
		BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
	if (bpf_ringbuf_output(&events, s, sizeof(s->ev) + n, flags) < 0)
		count(RT_CNT_LOST_RING);
	else
		count(RT_CNT_EMITTED);
}

// read_user_str appends a user string at offset off of the data area and
// returns its length without the NUL (0 and a fault flag when unreadable).
// Offsets are masked so the verifier can bound every write.
static __always_inline __u16 read_user_str(struct scratch *s, __u32 off, const char *p,
					   __u16 fault_flag)
{
	if (!p)
		return 0;
	off &= RT_STR_MAX * 4 - 1;
	long n = bpf_probe_read_user_str(&s->data[off], RT_STR_MAX, p);
	if (n <= 0) {
		s->ev.eflags |= fault_flag;
		count(RT_CNT_FAULT);
		return 0;
	}
	return (__u16)(n - 1);
}

static __always_inline __u16 read_kernel_str(struct scratch *s, __u32 off, const char *p)
{
	if (!p)
		return 0;
	off &= RT_STR_MAX * 4 - 1;
	long n = bpf_probe_read_kernel_str(&s->data[off], RT_STR_MAX, p);
	if (n <= 0)
		return 0;
	return (__u16)(n - 1);
}

static __always_inline void fill_ids(struct scratch *s, __u64 id, struct rt_proc *p)
{
	s->ev.time_ns = bpf_ktime_get_ns();
	s->ev.pid = id >> 32;
	s->ev.tid = (__u32)id;
	s->ev.ppid = p->ppid;
	s->ev.start_ns = p->start_ns;
}

static __always_inline struct path file_path(struct file *f)
{
	struct path p = {};
	if (bpf_core_field_exists(struct file___new, __f_path))
		BPF_CORE_READ_INTO(&p, (struct file___new *)f, __f_path);
	else
		BPF_CORE_READ_INTO(&p, (struct file___old *)f, f_path);
	return p;
}

// The dentry walk's state between bpf_loop steps. The kernel's field
// offsets are resolved (CO-RE) by the caller and passed in: with the same
// BPF_CORE_READs inside the bpf_loop callback, cilium/ebpf v0.22 left them
// poisoned ("bad CO-RE relocation") although every field exists. The steps
// find the scratch buffer by lookup rather than through a pointer here.
struct walk {
	void *vfsmnt;
	void *mnt;
	void *dentry;
	__u32 pos;       // the path so far is walk[pos, RT_STR_MAX)
	int incomplete;
	__u32 o_mnt_root, o_mnt_parent, o_mnt_mountpoint, o_mnt, o_d_parent, o_d_name;
};

static __always_inline void *read_ptr(void *base, __u32 off)
{
	void *p = 0;
	bpf_probe_read_kernel(&p, sizeof(p), base + off);
	return p;
}

// walk_step prepends one name, or crosses one mount, per call.
static long walk_step(__u32 i, void *arg)
{
	struct walk *w = arg;
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&scratch_map, &zero);
	if (!s)
		return 1;
	if (w->dentry == read_ptr(w->vfsmnt, w->o_mnt_root)) {
		void *parent = read_ptr(w->mnt, w->o_mnt_parent);
		if (parent == w->mnt)
			return 1; // the root mount's root: done
		w->dentry = read_ptr(w->mnt, w->o_mnt_mountpoint);
		w->mnt = parent;
		w->vfsmnt = parent + w->o_mnt;
		return 0;
	}
	void *up = read_ptr(w->dentry, w->o_d_parent);
	if (up == w->dentry)
		return 1; // a filesystem root that is not mounted here
	long n = bpf_probe_read_kernel_str(s->name, RT_NAME_MAX, read_ptr(w->dentry, w->o_d_name));
	if (n <= 1)
		return 1;
	__u32 len = n - 1, pos = w->pos;
	if (pos < len + 2 || pos > RT_STR_MAX) {
		w->incomplete = 1;
		return 1;
	}
	pos -= len;
	bpf_probe_read_kernel(&s->walk[pos & (RT_STR_MAX - 1)], len & (RT_NAME_MAX - 1), s->name);
	pos--;
	s->walk[pos & (RT_STR_MAX - 1)] = '/';
	w->pos = pos;
	w->dentry = up;
	if (i == RT_MAX_DEPTH - 1)
		w->incomplete = 1; // the last step, and not at the root yet
	return 0;
}

// put_path writes the absolute path of (vfsmnt, dentry) at offset off of
// the data area and returns its length: names are collected leaf to root
// into the walk area (right to left), crossing mounts up to the root
// mount, then copied out in one piece. This is what d_path does, which
// tracepoint programs may not call. A chroot's paths are given from the
// real root. 0 when unknown or too deep (RT_EF_BASE_INCOMPLETE).
static __always_inline __u16 put_path(struct scratch *s, __u32 off, struct vfsmount *vfsmnt,
				      struct dentry *dentry)
{
	if (!vfsmnt || !dentry)
		return 0;
	__u32 o_mnt = bpf_core_field_offset(struct mount, mnt);
	struct walk w = {
		.vfsmnt = vfsmnt,
		.mnt = (void *)vfsmnt - o_mnt,
		.dentry = dentry,
		.pos = RT_STR_MAX,
		.o_mnt_root = bpf_core_field_offset(struct vfsmount, mnt_root),
		.o_mnt_parent = bpf_core_field_offset(struct mount, mnt_parent),
		.o_mnt_mountpoint = bpf_core_field_offset(struct mount, mnt_mountpoint),
		.o_mnt = o_mnt,
		.o_d_parent = bpf_core_field_offset(struct dentry, d_parent),
	};
	// Since 6.15 d_name is a const member of an anonymous union, and its
	// writable twin __d_name is what CO-RE can match.
	if (bpf_core_field_exists(struct dentry___new, __d_name))
		w.o_d_name = bpf_core_field_offset(struct dentry___new, __d_name.name);
	else
		w.o_d_name = bpf_core_field_offset(struct dentry___old, d_name.name);
	bpf_loop(RT_MAX_DEPTH, walk_step, &w, 0);
	if (w.incomplete) {
		s->ev.eflags |= RT_EF_BASE_INCOMPLETE;
		return 0;
	}
	__u32 pos = w.pos;
	if (pos >= RT_STR_MAX) {
		pos = RT_STR_MAX - 1;
		s->walk[pos] = '/';
	}
	__u32 len = RT_STR_MAX - pos;
	off &= RT_STR_MAX * 4 - 1;
	if (bpf_probe_read_kernel(&s->data[off], len & (RT_STR_MAX - 1), &s->walk[pos & (RT_STR_MAX - 1)]) < 0)
		return 0;
	return len & (RT_STR_MAX - 1);
}

// fd_file is the open file of fd in task, or 0.
static __always_inline struct file *fd_file(struct task_struct *task, __s32 fd)
{
	if (fd < 0)
		return 0;
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	if ((__u32)fd >= BPF_CORE_READ(fdt, max_fds))
		return 0;
	struct file **fds = BPF_CORE_READ(fdt, fd);
	struct file *f = 0;
	if (bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]) < 0)
		return 0;
	return f;
}

// put_base writes the directory a relative path is relative to: the cwd
// for AT_FDCWD, else the directory open as dfd.
static __always_inline __u16 put_base(struct scratch *s, __u32 off, __s32 dfd)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	if (dfd == RT_AT_FDCWD) {
		struct fs_struct *fs = BPF_CORE_READ(task, fs);
		return put_path(s, off, BPF_CORE_READ(fs, pwd.mnt), BPF_CORE_READ(fs, pwd.dentry));
	}
	struct file *f = fd_file(task, dfd);
	if (!f)
		return 0;
	struct path fp = file_path(f);
	return put_path(s, off, fp.mnt, fp.dentry);
}

static __always_inline int relative(struct scratch *s, __u32 off, __u16 len)
{
	return len == 0 || s->data[off & (RT_STR_MAX * 4 - 1)] != '/';
}

// ---- sockets -----------------------------------------------------------------

#define RT_ENOTSOCK 88
#define RT_EBADF 9

// read_sockaddr copies len bytes of a user sockaddr at off (capped).
static __always_inline __u16 read_sockaddr(struct scratch *s, __u32 off, __u64 p, __u32 len, __u16 fault_flag)
{
	if (!p || len == 0)
		return 0;
	if (len > RT_SOCKADDR_MAX)
		len = RT_SOCKADDR_MAX;
	off &= RT_STR_MAX * 4 - 1;
	if (bpf_probe_read_user(&s->data[off], len & (RT_SOCKADDR_MAX * 2 - 1), (void *)p) < 0) {
		s->ev.eflags |= fault_flag;
		count(RT_CNT_FAULT);
		return 0;
	}
	return len;
}

// socket_exit fills a socket call's record: the sockaddr it passed or got
// (the converter formats it as the shim does) and what the socket is.
static __always_inline void socket_exit(struct scratch *s, struct rt_args *a, long ret)
{
	s->ev.eflags |= RT_EF_SOCKET;
	__u16 l1 = 0, l2 = 0;
	if (a->op == RT_OP_BIND || a->op == RT_OP_CONNECT) {
		l1 = read_sockaddr(s, 0, a->p1, a->mode, RT_EF_PATH1_FAULT);
	} else if ((a->op == RT_OP_ACCEPT || a->op == RT_OP_ACCEPT4) && ret >= 0 && a->p1 && a->p2) {
		__u32 len = 0;
		if (bpf_probe_read_user(&len, sizeof(len), (void *)a->p2) == 0)
			l2 = read_sockaddr(s, 0, a->p1, len, RT_EF_PATH2_FAULT);
	}
	s->ev.mode = 0;
	struct rt_sockinfo si = {};
	if (ret != -RT_ENOTSOCK && ret != -RT_EBADF) {
		struct task_struct *task = (void *)bpf_get_current_task();
		struct file *f = fd_file(task, a->dfd1);
		struct socket *sock = f ? BPF_CORE_READ((struct file___priv *)f, private_data) : 0;
		struct sock *sk = sock ? BPF_CORE_READ(sock, sk) : 0;
		if (sk) {
			si.type = BPF_CORE_READ(sock, type);
			si.family = BPF_CORE_READ(sk, __sk_common.skc_family);
			si.port = BPF_CORE_READ(sk, __sk_common.skc_num);
			if (si.family == 2) {
				__u32 v4 = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
				__builtin_memcpy(si.addr, &v4, 4);
			} else if (si.family == 10) {
				BPF_CORE_READ_INTO(&si.addr, sk, __sk_common.skc_v6_rcv_saddr);
			}
		}
	}
	__u32 off = ((__u32)l1 + l2) & (RT_STR_MAX * 4 - 1);
	__builtin_memcpy(&s->data[off], &si, sizeof(si));
	s->ev.len1 = l1;
	s->ev.len2 = l2;
	s->ev.len3 = sizeof(si);
}

// ---- syscall enter: stash the arguments of a traced process's call -------

struct sys_enter_ctx {
	__u64 common;
	__s32 nr;
	__u32 pad;
	__u64 args[6];
};

struct sys_exit_ctx {
	__u64 common;
	__s32 nr;
	__u32 pad;
	__s64 ret;
};

static __always_inline int stash(__u16 op, __s32 dfd1, __u64 p1, __s32 dfd2, __u64 p2,
				 __u32 flags, __u32 mode, __u64 extra)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	struct rt_proc *p = bpf_map_lookup_elem(&traced, &tgid);
	if (!p || (p->flags & RT_PROC_FOLLOW_ONLY))
		return 0;
	struct rt_args *a = bpf_task_storage_get(&inflight, bpf_get_current_task_btf(), 0,
						 BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!a) {
		count(RT_CNT_LOST_INFLIGHT);
		return 0;
	}
	a->p1 = p1;
	a->p2 = p2;
	a->extra = extra;
	a->dfd1 = dfd1;
	a->dfd2 = dfd2;
	a->flags = flags;
	a->mode = mode;
	a->op = op;
	return 0;
}

#define A(i) (ctx->args[i])
#define ENTER(sc) SEC("tracepoint/syscalls/sys_enter_" #sc) int enter_##sc(struct sys_enter_ctx *ctx)

ENTER(open)       { return stash(RT_OP_OPEN, RT_AT_FDCWD, A(0), 0, 0, A(1), A(2), 0); }
ENTER(openat)     { return stash(RT_OP_OPENAT, A(0), A(1), 0, 0, A(2), A(3), 0); }
ENTER(openat2)    { return stash(RT_OP_OPENAT2, A(0), A(1), 0, 0, 0, 0, A(2)); }
ENTER(creat)      { return stash(RT_OP_CREAT, RT_AT_FDCWD, A(0), 0, 0, RT_CREAT_FLAGS, A(1), 0); }
ENTER(rename)     { return stash(RT_OP_RENAME, RT_AT_FDCWD, A(0), RT_AT_FDCWD, A(1), 0, 0, 0); }
ENTER(renameat)   { return stash(RT_OP_RENAMEAT, A(0), A(1), A(2), A(3), 0, 0, 0); }
ENTER(renameat2)  { return stash(RT_OP_RENAMEAT2, A(0), A(1), A(2), A(3), A(4), 0, 0); }
ENTER(link)       { return stash(RT_OP_LINK, RT_AT_FDCWD, A(0), RT_AT_FDCWD, A(1), 0, 0, 0); }
ENTER(linkat)     { return stash(RT_OP_LINKAT, A(0), A(1), A(2), A(3), A(4), 0, 0); }
ENTER(unlink)     { return stash(RT_OP_UNLINK, RT_AT_FDCWD, A(0), 0, 0, 0, 0, 0); }
ENTER(unlinkat)   { return stash(RT_OP_UNLINKAT, A(0), A(1), 0, 0, A(2), 0, 0); }
ENTER(rmdir)      { return stash(RT_OP_RMDIR, RT_AT_FDCWD, A(0), 0, 0, 0, 0, 0); }
ENTER(mkdir)      { return stash(RT_OP_MKDIR, RT_AT_FDCWD, A(0), 0, 0, 0, A(1), 0); }
ENTER(mkdirat)    { return stash(RT_OP_MKDIRAT, A(0), A(1), 0, 0, 0, A(2), 0); }
ENTER(truncate)   { return stash(RT_OP_TRUNCATE, RT_AT_FDCWD, A(0), 0, 0, 0, 0, 0); }
ENTER(execve)     { return stash(RT_OP_EXECVE, RT_AT_FDCWD, A(0), 0, 0, 0, 0, 0); }
ENTER(execveat)   { return stash(RT_OP_EXECVEAT, A(0), A(1), 0, 0, A(4), 0, 0); }
ENTER(chdir)      { return stash(RT_OP_CHDIR, RT_AT_FDCWD, A(0), 0, 0, 0, 0, 0); }
ENTER(fchdir)     { return stash(RT_OP_FCHDIR, A(0), 0, 0, 0, 0, 0, 0); }
// Sockets: dfd1 is the socket's fd, p1 the sockaddr, mode its length
// (accept: p2 the length's address).
ENTER(bind)       { return stash(RT_OP_BIND, A(0), A(1), 0, 0, 0, A(2), 0); }
ENTER(connect)    { return stash(RT_OP_CONNECT, A(0), A(1), 0, 0, 0, A(2), 0); }
ENTER(listen)     { return stash(RT_OP_LISTEN, A(0), 0, 0, 0, A(1), 0, 0); }
ENTER(accept)     { return stash(RT_OP_ACCEPT, A(0), A(1), 0, A(2), 0, 0, 0); }
ENTER(accept4)    { return stash(RT_OP_ACCEPT4, A(0), A(1), 0, A(2), A(3), 0, 0); }

// ---- syscall exit: one program for every sys_exit_* above -----------------

struct open_how_prefix {
	__u64 flags;
	__u64 mode;
};

SEC("tracepoint/syscalls/sys_exit")
int sys_exit(struct sys_exit_ctx *ctx)
{
	struct rt_args *a = bpf_task_storage_get(&inflight, bpf_get_current_task_btf(), 0, 0);
	if (!a || !a->op)
		return 0;
	struct rt_args args = *a;
	a->op = 0;
	__u64 id = bpf_get_current_pid_tgid();

	// A successful exec was reported by sched_process_exec; the pointer
	// into the old address space is meaningless now.
	if ((args.op == RT_OP_EXECVE || args.op == RT_OP_EXECVEAT) && ctx->ret == 0)
		return 0;

	__u32 tgid = id >> 32;
	struct rt_proc *p = bpf_map_lookup_elem(&traced, &tgid);
	if (!p)
		return 0;
	struct scratch *s = scratch_get();
	if (!s)
		return 0;

	fill_ids(s, id, p);
	s->ev.type = RT_TYPE_EVENT;
	s->ev.op = args.op;
	s->ev.result = ctx->ret;
	s->ev.dfd1 = args.dfd1;
	s->ev.dfd2 = args.dfd2;
	s->ev.flags = args.flags;
	s->ev.mode = args.mode;
	if (args.op == RT_OP_OPENAT2 && args.extra) {
		struct open_how_prefix how = {};
		if (bpf_probe_read_user(&how, sizeof(how), (void *)args.extra) == 0) {
			s->ev.flags = how.flags;
			s->ev.mode = how.mode;
		}
	}
	if (args.op == RT_OP_BIND || args.op == RT_OP_CONNECT || args.op == RT_OP_LISTEN ||
	    args.op == RT_OP_ACCEPT || args.op == RT_OP_ACCEPT4) {
		socket_exit(s, &args, ctx->ret);
		emit(s);
		return 0;
	}
	__u16 l1 = read_user_str(s, 0, (const char *)args.p1, RT_EF_PATH1_FAULT);
	__u16 l2 = read_user_str(s, l1, (const char *)args.p2, RT_EF_PATH2_FAULT);
	__u16 l3 = 0, l4 = 0;
	// Bases only for relative paths, read now: the dirfd or cwd may be
	// gone or changed by the time user space reads the record.
	if ((args.p1 || args.op == RT_OP_FCHDIR) && relative(s, 0, l1))
		l3 = put_base(s, (__u32)l1 + l2, args.dfd1);
	if (args.p2 && relative(s, l1, l2))
		l4 = put_base(s, (__u32)l1 + l2 + l3, args.dfd2);
	s->ev.len1 = l1;
	s->ev.len2 = l2;
	s->ev.len3 = l3;
	s->ev.len4 = l4;
	emit(s);
	return 0;
}

// ---- process tree: fork, exec, exit ----------------------------------------

SEC("tp_btf/sched_process_fork")
int BPF_PROG(sched_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 ptgid = BPF_CORE_READ(parent, tgid);
	__u32 ctgid = BPF_CORE_READ(child, tgid);
	// A new thread joins its process, which is already traced (or not).
	if (BPF_CORE_READ(child, pid) != ctgid)
		return 0;
	if (!bpf_map_lookup_elem(&traced, &ptgid))
		return 0;
	struct rt_proc np = {
		.start_ns = BPF_CORE_READ(child, start_boottime),
		.ppid = ptgid,
	};
	if (bpf_map_update_elem(&traced, &ctgid, &np, BPF_ANY) < 0) {
		count(RT_CNT_LOST_PROC);
		return 0;
	}
	struct scratch *s = scratch_get();
	if (!s)
		return 0;
	fill_ids(s, ((__u64)ctgid << 32) | ctgid, &np);
	s->ev.type = RT_TYPE_PROC;
	s->ev.op = RT_OP_PROC_FORK;
	emit(s);
	return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(sched_exec, struct task_struct *task, __s32 old_pid, struct linux_binprm *bprm)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	struct rt_proc *p = bpf_map_lookup_elem(&traced, &tgid);
	if (!p || (p->flags & RT_PROC_FOLLOW_ONLY))
		return 0;

	__u16 op = RT_OP_EXECVE;
	__s32 dfd = RT_AT_FDCWD;
	// The exec's arguments are in the exec'ing thread's storage, which is
	// this task even when a non-leader thread exec'd (it took the leader's
	// pid in de_thread).
	struct rt_args *a = bpf_task_storage_get(&inflight, task, 0, 0);
	if (a && a->op) {
		op = a->op;
		dfd = a->dfd1;
	}

	struct scratch *s = scratch_get();
	if (!s)
		return 0;
	const char *fn = BPF_CORE_READ(bprm, filename);

	// The event: the exec itself, with the kernel's copy of the path and,
	// when that is relative, the cwd (the exec did not change it).
	fill_ids(s, id, p);
	__u16 l1 = read_kernel_str(s, 0, fn);
	__u16 cwd = put_base(s, l1, RT_AT_FDCWD);
	s->ev.type = RT_TYPE_EVENT;
	s->ev.op = op;
	s->ev.dfd1 = dfd;
	s->ev.len1 = l1;
	s->ev.len3 = relative(s, 0, l1) ? cwd : 0;
	emit(s);

	// The process record: exe, cwd and argv of the new image. The exe is
	// the file actually executed, symlinks resolved, as /proc/PID/exe
	// (and the shim) name it; the filename as given if that walk fails.
	s->ev.type = RT_TYPE_PROC;
	s->ev.op = RT_OP_PROC_EXEC;
	struct path xp = file_path(BPF_CORE_READ(bprm, file));
	__u16 exe = put_path(s, 0, xp.mnt, xp.dentry);
	if (!exe)
		exe = read_kernel_str(s, 0, fn);
	cwd = put_base(s, exe, RT_AT_FDCWD);
	s->ev.len1 = exe;
	s->ev.len2 = cwd;
	s->ev.len3 = 0;
	struct mm_struct *mm = BPF_CORE_READ(task, mm);
	unsigned long as = BPF_CORE_READ(mm, arg_start);
	unsigned long ae = BPF_CORE_READ(mm, arg_end);
	__u32 off = ((__u32)exe + cwd) & (RT_STR_MAX * 2 - 1);
	__u64 n = ae - as;
	if (n > RT_STR_MAX - 1) {
		n = RT_STR_MAX - 1;
		s->ev.eflags |= RT_EF_ARGV_TRUNCATED;
	}
	if (bpf_probe_read_user(&s->data[off], n & (RT_STR_MAX - 1), (void *)as) == 0)
		s->ev.len3 = n;
	emit(s);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(sched_exit, struct task_struct *task)
{
	// Only the last thread's exit ends the process.
	if (BPF_CORE_READ(task, signal, live.counter) != 0)
		return 0;
	__u32 tgid = BPF_CORE_READ(task, tgid);
	struct rt_proc *p = bpf_map_lookup_elem(&traced, &tgid);
	if (!p)
		return 0;
	struct scratch *s = (p->flags & RT_PROC_FOLLOW_ONLY) ? 0 : scratch_get();
	if (s) {
		fill_ids(s, ((__u64)tgid << 32) | (__u32)BPF_CORE_READ(task, pid), p);
		s->ev.type = RT_TYPE_PROC;
		s->ev.op = RT_OP_PROC_EXIT;
		s->ev.result = BPF_CORE_READ(task, exit_code);
		emit(s);
	}
	bpf_map_delete_elem(&traced, &tgid);
	return 0;
}
