/* SPDX-License-Identifier: (MIT OR GPL-2.0) */
/*
 * event.h — the record the BPF programs write into the ring buffer, and the
 * constants shared by restrack.bpf.c and its Go reader (collector/ebpf).
 *
 * Producer: the BPF programs. Consumer: collector/ebpf's decoder, whose
 * layout constants event_test.go checks against this file. Op numbers are
 * libcshim/ring_abi.h's (RT_OPS); that header cannot be compiled for the
 * BPF target, so the numbers used here are repeated and a Go test proves
 * they agree with the ring package.
 */
#ifndef RESTRACK_BPF_EVENT_H
#define RESTRACK_BPF_EVENT_H

#include <linux/types.h>

#define RT_STR_MAX 4096          /* PATH_MAX: the kernel refuses longer paths */
#define RT_NAME_MAX 256          /* NAME_MAX + NUL: one path component */
#define RT_MAX_DEPTH 64          /* path components (and mount crossings) walked up to the root */
#define RT_MAX_PROCS 65536       /* processes of the traced tree alive at once */
#define RT_AT_FDCWD (-100)
#define RT_CREAT_FLAGS 01101     /* O_CREAT|O_WRONLY|O_TRUNC: what creat(2) means */

#define RT_TYPE_EVENT 1
#define RT_TYPE_PROC 2

/* Ops: the numbers of libcshim/ring_abi.h. */
#define RT_OP_OPEN 1
#define RT_OP_OPENAT 3
#define RT_OP_CREAT 5
#define RT_OP_OPENAT2 11
#define RT_OP_RENAME 40
#define RT_OP_RENAMEAT 41
#define RT_OP_RENAMEAT2 42
#define RT_OP_LINK 43
#define RT_OP_LINKAT 44
#define RT_OP_UNLINK 47
#define RT_OP_UNLINKAT 48
#define RT_OP_RMDIR 50
#define RT_OP_MKDIR 51
#define RT_OP_MKDIRAT 52
#define RT_OP_TRUNCATE 57
#define RT_OP_EXECVE 70
#define RT_OP_EXECVEAT 78
#define RT_OP_CHDIR 90
#define RT_OP_FCHDIR 91
#define RT_OP_BIND 92
#define RT_OP_CONNECT 93
#define RT_OP_LISTEN 140
#define RT_OP_ACCEPT 141
#define RT_OP_ACCEPT4 142
#define RT_OP_PROC_FORK 111
#define RT_OP_PROC_EXEC 112
#define RT_OP_PROC_EXIT 113

/* rt_event.eflags */
#define RT_EF_PATH1_FAULT 0x1     /* the first path could not be read */
#define RT_EF_PATH2_FAULT 0x2
#define RT_EF_ARGV_TRUNCATED 0x4  /* argv longer than RT_STR_MAX: a prefix */
#define RT_EF_BASE_INCOMPLETE 0x8 /* a base directory deeper than RT_MAX_DEPTH or RT_STR_MAX: not sent */
#define RT_EF_SOCKET 0x10         /* a socket call: str1 the sockaddr passed (bind, connect), str2 the
				   * peer's (accept), raw; str3 a struct rt_sockinfo of the socket */

/* rt_proc.flags */
#define RT_PROC_FOLLOW_ONLY 0x1   /* follow this process's children, report none of its own calls */

/* Indexes of the per-CPU counters map. */
#define RT_CNT_EMITTED 0          /* records written into the ring */
#define RT_CNT_LOST_RING 1        /* records dropped: ring full */
#define RT_CNT_LOST_INFLIGHT 2    /* syscalls not reported: no task storage for their arguments */
#define RT_CNT_LOST_PROC 3        /* children not followed: traced map full */
#define RT_CNT_FAULT 4            /* user strings that could not be read */
#define RT_COUNTER_MAX 5

/* What the kernel says of a socket at the call's exit (RT_EF_SOCKET). */
struct rt_sockinfo {
	__u16 family;     /* AF_INET 2, AF_INET6 10, AF_UNIX 1; 0: not read */
	__u16 type;       /* SOCK_STREAM 1, SOCK_DGRAM 2, SOCK_SEQPACKET 5 */
	__u16 port;       /* local port, host order */
	__u16 pad;
	__u8 addr[16];    /* local address: 4 bytes for AF_INET */
};
#define RT_SOCKADDR_MAX 112 /* sizeof(struct sockaddr_un) + slack; inet needs 28 */

/* A traced process. */
struct rt_proc {
	__u64 start_ns;   /* task->start_boottime of the group leader */
	__u32 ppid;
	__u32 flags;      /* RT_PROC_* */
};

/* A traced syscall's arguments, from enter to exit; op 0 = none. */
struct rt_args {
	__u64 p1;         /* user pointer: first path */
	__u64 p2;         /* user pointer: second path */
	__u64 extra;      /* openat2: struct open_how pointer */
	__s32 dfd1;
	__s32 dfd2;
	__u32 flags;
	__u32 mode;
	__u16 op;
	__u16 pad[3];
};

/*
 * One ring-buffer record: this 64-byte header, then len1 bytes of str1,
 * len2 of str2, len3 of str3, len4 of str4 (no NULs). Little-endian, the
 * host's order. A base is the absolute path of the directory a relative
 * path is relative to (its dirfd, or the cwd), walked up from the dentry by
 * the kernel side at syscall exit; empty when the path is absolute.
 */
struct rt_event {
	__u16 type;       /* RT_TYPE_* */
	__u16 op;         /* RT_OP_* */
	__u16 len1;       /* event: path;        proc: exe */
	__u16 len2;       /* event: second path; proc exec: cwd */
	__u16 len3;       /* event: base of the path; proc exec: argv, NUL-separated */
	__u16 eflags;     /* RT_EF_* */
	__u32 pid;        /* tgid */
	__u32 tid;
	__u32 ppid;
	__s32 result;     /* syscall return: fd, 0 or -errno; exit: exit code */
	__s32 dfd1;       /* directory fd the first path is relative to */
	__s32 dfd2;
	__u32 flags;
	__u32 mode;
	__u16 len4;       /* event: base of the second path */
	__u16 pad;
	__u64 time_ns;    /* CLOCK_MONOTONIC */
	__u64 start_ns;   /* task->start_boottime: ns since boot */
};

#endif
