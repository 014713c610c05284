/*
 * ring_abi.h — the one definition of the restrack shared-memory ring ABI.
 *
 * Producers: every traced process (libcshim, any thread, also from signal
 * handlers) appends variable-length records into the sub-ring of the CPU it
 * runs on. Consumer: exactly one collector (it holds flock on the file)
 * drains published records of every sub-ring in bulk, restores each
 * thread's order, and frees their space by advancing each sub-ring's head.
 * Overflow: a producer that finds the ring full waits a bounded time, then
 * drops the record and counts it (records and bytes, by cause) in the header.
 * A producer that dies between reserving and publishing leaves its slots
 * unpublished; after a bounded time the consumer skips them and counts them
 * as abandoned.
 *
 * The Go mirror is ring/abi.go; ring/abi_test.go compiles
 * libcshim/tests/abi_dump.c against this file and proves both agree.
 * docs/ring-abi.md explains the layout, the ownership and the ordering rules,
 * and holds the version history: change it in the same commit as this file.
 */
#ifndef RESTRACK_RING_ABI_H
#define RESTRACK_RING_ABI_H

#include <stdint.h>

/* "RTRING\0\1" read as a little-endian u64. magic, abi_major and abi_minor
 * never move, so that any build can tell any other build's ring apart. */
#define RT_MAGIC UINT64_C(0x0100474e49525452)

/* Major: incompatible layout change. Minor: compatible growth (a new op,
 * a reserved field given a meaning); readers accept any minor. */
#define RT_ABI_MAJOR 2
#define RT_ABI_MINOR 0

#define RT_PAGE_SIZE 4096u
#define RT_HEADER_SIZE 4096u      /* struct rt_ring_header: the first page */
#define RT_CACHE_LINE 64u
#define RT_SLOT_SIZE 64u          /* records start on a slot; one slot = one cache line */
#define RT_SLOT_SHIFT 6u
#define RT_SUB_CTL_SIZE 128u      /* struct rt_sub: a sub-ring's tail line and head line */
#define RT_MAX_SUB 64u            /* sub-rings per ring; a power of two */
#define RT_MIN_SUB_SIZE (64u * 1024u)    /* bytes of one sub-ring, at least */
#define RT_MIN_DATA_SIZE RT_MIN_SUB_SIZE /* all sub-rings together */
#define RT_MAX_DATA_SIZE (UINT64_C(1) << 32)
#define RT_DEFAULT_DATA_SIZE (16u * 1024u * 1024u)
#define RT_NCUTS 64u              /* entries of the consumer's cut table */
#define RT_MAX_RECORD_SIZE (32u * 1024u) /* header + strings; <= RT_MIN_SUB_SIZE / 2 */
#define RT_PATH_MAX 4096u                /* a path of this many bytes (NUL excluded) is never cut */
#define RT_DEFAULT_FULL_WAIT_NS 100000u  /* 100 µs: bounded wait of a producer on a full ring */
#define RT_HIGH_WATER_PERCENT 50u        /* a sub-ring crossing it rings the doorbell */

/* Slot stamp: the first 8 bytes of a record's first slot, written last with
 * release order. Position p (a free-running slot counter of one sub-ring)
 * is published when its stamp equals rt_stamp(p); stale stamps from earlier
 * laps, zeroed memory and payload bytes almost never match (the xor keeps
 * small counters away from values common in payload). */
#define RT_STAMP_XOR UINT64_C(0xa55a3cc3e11e0000)
static inline uint64_t rt_stamp(uint64_t pos) { return pos ^ RT_STAMP_XOR; }

/* Header flags (rt_ring_header.flags). */
#define RT_HF_FUTEX_DOORBELL 1u /* the consumer sleeps on doorbell with futex(2) */

/*
 * The ring file (ABI 2):
 *
 *   0            the header (this struct, one page)
 *   ctl_offset   nsub × struct rt_sub: each sub-ring's tail and head
 *   cut_offset   ncuts × cut_size: the consumer's cut table (struct rt_cut)
 *   data_offset  nsub × sub_size bytes of 64-byte slots, sub-ring i at
 *                data_offset + i × sub_size
 *
 * Every offset is a function of nsub alone (rt_layout below); readers
 * recompute them and refuse a header that says otherwise. Each group of
 * fields sits on its own cache line, grouped by writer, so producers
 * appending write only their sub-ring's tail line and their records.
 */
struct rt_ring_header {
	/* line 0 — written once by the creator before magic; read-only after. */
	uint64_t magic;          /* RT_MAGIC; stored last at creation (release) */
	uint16_t abi_major;
	uint16_t abi_minor;
	uint32_t header_size;    /* RT_HEADER_SIZE */
	uint64_t data_size;      /* bytes of slots of all sub-rings: nsub × sub_size */
	uint32_t slot_size;      /* RT_SLOT_SIZE */
	uint32_t max_record;     /* RT_MAX_RECORD_SIZE */
	uint64_t ring_id;        /* random, per creation: tells a recreated ring apart */
	uint64_t created_ns;     /* CLOCK_REALTIME at creation */
	uint32_t flags;          /* RT_HF_* */
	uint32_t full_wait_ns;   /* suggested bounded wait; 0 = RT_DEFAULT_FULL_WAIT_NS */
	uint32_t nsub;           /* sub-rings: a power of two in [1, RT_MAX_SUB] */
	uint32_t owner_uid;      /* the uid the collector created the ring for: records are its */

	/* line 1 — geometry, written once by the creator; read-only after. */
	uint64_t sub_size;       /* bytes of one sub-ring: a power of two >= RT_MIN_SUB_SIZE */
	uint64_t ctl_offset;     /* file offset of the rt_sub array */
	uint64_t cut_offset;     /* file offset of the cut table */
	uint64_t data_offset;    /* file offset of sub-ring 0's slots */
	uint64_t file_size;      /* data_offset + data_size */
	uint32_t ncuts;          /* RT_NCUTS */
	uint32_t cut_size;       /* bytes of one cut entry: rt_cut_size(nsub) */
	uint64_t reserved1[2];

	/* line 2 — consumer: who drains, and how far it has released. */
	uint64_t consumer_pid;   /* pid holding the consumer's flock, 0 = none */
	uint64_t heartbeat_ns;   /* CLOCK_MONOTONIC of the consumer's last drain */
	uint64_t released_cut;   /* the cut whose positions are every sub-ring's head */
	uint64_t last_cut;       /* the newest cut written to the cut table */
	uint64_t reserved2[4];

	/* line 3 — producers, only on the slow path: drops by cause, attaches. */
	uint64_t dropped_full_records;   /* the ring stayed full for the whole wait */
	uint64_t dropped_full_bytes;
	uint64_t dropped_toobig_records; /* record larger than max_record */
	uint64_t dropped_toobig_bytes;
	uint64_t full_waits;             /* appends that found the ring full, dropped or not */
	uint64_t producer_errors;        /* shim-internal failures, e.g. path resolution */
	uint64_t attached;               /* producers (processes) that attached */
	uint64_t attach_failed;          /* processes that could not attach (counted by whoever learns it) */

	/* line 4 — consumer: what it skipped, consumed and repaired. */
	uint64_t abandoned_records;      /* runs of reserved slots never published */
	uint64_t abandoned_bytes;
	uint64_t corrupted_records;      /* published records that failed validation */
	uint64_t corrupted_bytes;
	uint64_t consumed_records;
	uint64_t consumed_bytes;
	uint64_t repaired_tails;         /* sub-ring tails no producer could have written, set back */
	uint64_t repaired_heads;         /* sub-ring heads written by someone else, set back */

	/* line 5 — producers ring it (fetch-add + futex wake) when a sub-ring
	 * crosses the high-water mark; the consumer sleeps on it. */
	uint32_t doorbell;
	uint32_t reserved5a;
	uint64_t reserved5[7];

	uint8_t reserved_tail[RT_HEADER_SIZE - 6 * RT_CACHE_LINE];
};

/* One sub-ring's control block: producers CAS tail (line 0), the consumer
 * releases head (line 1); producers only load head. */
struct rt_sub {
	uint64_t tail;           /* next free slot position of this sub-ring; free-running */
	uint64_t reserved_t[7];
	uint64_t head;           /* first slot not yet released; free-running */
	uint64_t reserved_h[7];
};

/*
 * A cut: where the consumer stood in every sub-ring after one drain, and
 * what that drain consumed. The consumer hands out cut ids as positions
 * (Batch.End); a collector that committed cut c and died before releasing
 * it resumes by seeking its successor to c. id is stored last (release)
 * and zeroed first while an entry is rewritten.
 */
struct rt_cut {
	uint64_t id;                     /* 0 = being written / empty */
	uint64_t consumed_records;       /* since the previous cut */
	uint64_t consumed_bytes;
	uint64_t abandoned_records;
	uint64_t abandoned_bytes;
	uint64_t corrupted_records;
	uint64_t corrupted_bytes;
	uint64_t reserved;
	uint64_t pos[];                  /* nsub slot positions */
};

static inline uint64_t rt_align_up(uint64_t n, uint64_t a) { return (n + a - 1) & ~(a - 1); }

/* Bytes of one cut entry for nsub sub-rings. */
static inline uint32_t rt_cut_size(uint32_t nsub)
{
	return (uint32_t)rt_align_up(sizeof(struct rt_cut) + 8u * (uint64_t)nsub, RT_CACHE_LINE);
}

/* The file offsets of a ring of nsub sub-rings: every reader recomputes
 * them rather than trusting the header's copies. */
static inline void rt_layout(uint32_t nsub, uint64_t *ctl_offset, uint64_t *cut_offset, uint64_t *data_offset)
{
	*ctl_offset = RT_HEADER_SIZE;
	*cut_offset = *ctl_offset + rt_align_up((uint64_t)nsub * RT_SUB_CTL_SIZE, RT_PAGE_SIZE);
	*data_offset = *cut_offset + rt_align_up((uint64_t)RT_NCUTS * rt_cut_size(nsub), RT_PAGE_SIZE);
}

/* Record types. */
#define RT_TYPE_EVENT 1 /* a file operation: str1 = path, str2 = second path; a
			 * network operation: str1 = endpoint, str2 = peer
			 * (docs/ring-abi.md, "Network endpoints") */
#define RT_TYPE_PROC 2  /* process identity: str1 = exe, str2 = cwd, str3 = argv (NUL-separated) */

/* Access classes, as the planner reads them. */
#define RT_ACCESS_NONE 0  /* context only (chdir, fork, process records) */
#define RT_ACCESS_READ 1
#define RT_ACCESS_WRITE 2
#define RT_ACCESS_LOOKUP 3 /* stat-family: the path's existence or metadata was read */

/* Record flags (rt_record.rflags). */
#define RT_RF_ARGV_TRUNCATED 0x1 /* argv did not fit: str3 holds a prefix of whole arguments */
#define RT_RF_UNRESOLVED 0x2     /* a relative path whose base (cwd or dirfd) was unknown */
#define RT_RF_PRE_INIT 0x4       /* recorded before the shim's constructor ran */
#define RT_RF_PATH2_UNRESOLVED 0x8
#define RT_RF_TOO_LONG 0x10      /* unresolved because base + path exceeds what the kernel names (PATH_MAX) */
#define RT_RF_SANDBOXED 0x20     /* unresolved because a seccomp filter may refuse the shim's own syscall */
#define RT_RF_IN_PROGRESS 0x40   /* a connect that returned EINPROGRESS/EINTR: started, it completes later */

/*
 * A record: this 64-byte header at a slot boundary, then str1, NUL, str2,
 * NUL, str3, NUL. len counts header and strings; the record occupies
 * ceil(len / 64) slots. Strings may wrap around the end of the data area;
 * the header never does (it is exactly one slot).
 */
struct rt_record {
	uint64_t stamp;     /* rt_stamp(position); written last (release) */
	uint32_t len;       /* 64 + len1 + len2 + len3 + 3 */
	uint8_t type;       /* RT_TYPE_* */
	uint8_t access;     /* RT_ACCESS_* */
	uint16_t op;        /* RT_OP_*: the function actually called */
	uint64_t time_ns;   /* CLOCK_MONOTONIC at the call */
	uint64_t start_ns;  /* process start time: /proc/PID/stat starttime in ns since boot */
	int32_t pid;
	int32_t tid;
	int32_t ppid;
	int32_t result;     /* fd or return value; -errno on failure */
	uint32_t flags;     /* open flags, AT_* flags, rename flags … as passed */
	uint32_t mode;      /* creation mode as passed, else 0 */
	uint16_t len1;      /* bytes of str1, NUL excluded */
	uint16_t len2;
	uint16_t len3;
	uint16_t rflags;    /* RT_RF_* */
};

/*
 * Operations: X(NAME, number, "name", default access). The name is the libc
 * function actually called, as `restrack events` prints it. Numbers are ABI:
 * never reuse or renumber one; append new ones (a minor bump).
 */
#define RT_OPS(X)                                            \
	X(OPEN, 1, "open", RT_ACCESS_READ)                   \
	X(OPEN64, 2, "open64", RT_ACCESS_READ)               \
	X(OPENAT, 3, "openat", RT_ACCESS_READ)               \
	X(OPENAT64, 4, "openat64", RT_ACCESS_READ)           \
	X(CREAT, 5, "creat", RT_ACCESS_WRITE)                \
	X(CREAT64, 6, "creat64", RT_ACCESS_WRITE)            \
	X(OPEN_2, 7, "__open_2", RT_ACCESS_READ)             \
	X(OPEN64_2, 8, "__open64_2", RT_ACCESS_READ)         \
	X(OPENAT_2, 9, "__openat_2", RT_ACCESS_READ)         \
	X(OPENAT64_2, 10, "__openat64_2", RT_ACCESS_READ)    \
	X(OPENAT2, 11, "openat2", RT_ACCESS_READ)            \
	X(FOPEN, 20, "fopen", RT_ACCESS_READ)                \
	X(FOPEN64, 21, "fopen64", RT_ACCESS_READ)            \
	X(FREOPEN, 22, "freopen", RT_ACCESS_READ)            \
	X(FREOPEN64, 23, "freopen64", RT_ACCESS_READ)        \
	X(TMPFILE, 24, "tmpfile", RT_ACCESS_WRITE)           \
	X(TMPFILE64, 25, "tmpfile64", RT_ACCESS_WRITE)       \
	X(MKSTEMP, 26, "mkstemp", RT_ACCESS_WRITE)           \
	X(MKSTEMP64, 27, "mkstemp64", RT_ACCESS_WRITE)       \
	X(MKOSTEMP, 28, "mkostemp", RT_ACCESS_WRITE)         \
	X(MKOSTEMP64, 29, "mkostemp64", RT_ACCESS_WRITE)     \
	X(MKSTEMPS, 30, "mkstemps", RT_ACCESS_WRITE)         \
	X(MKSTEMPS64, 31, "mkstemps64", RT_ACCESS_WRITE)     \
	X(MKOSTEMPS, 32, "mkostemps", RT_ACCESS_WRITE)       \
	X(MKOSTEMPS64, 33, "mkostemps64", RT_ACCESS_WRITE)   \
	X(MKDTEMP, 34, "mkdtemp", RT_ACCESS_WRITE)           \
	X(OPENDIR, 35, "opendir", RT_ACCESS_READ)            \
	X(RENAME, 40, "rename", RT_ACCESS_WRITE)             \
	X(RENAMEAT, 41, "renameat", RT_ACCESS_WRITE)         \
	X(RENAMEAT2, 42, "renameat2", RT_ACCESS_WRITE)       \
	X(LINK, 43, "link", RT_ACCESS_WRITE)                 \
	X(LINKAT, 44, "linkat", RT_ACCESS_WRITE)             \
	X(SYMLINK, 45, "symlink", RT_ACCESS_WRITE)           \
	X(SYMLINKAT, 46, "symlinkat", RT_ACCESS_WRITE)       \
	X(UNLINK, 47, "unlink", RT_ACCESS_WRITE)             \
	X(UNLINKAT, 48, "unlinkat", RT_ACCESS_WRITE)         \
	X(REMOVE, 49, "remove", RT_ACCESS_WRITE)             \
	X(RMDIR, 50, "rmdir", RT_ACCESS_WRITE)               \
	X(MKDIR, 51, "mkdir", RT_ACCESS_WRITE)               \
	X(MKDIRAT, 52, "mkdirat", RT_ACCESS_WRITE)           \
	X(MKNOD, 53, "mknod", RT_ACCESS_WRITE)               \
	X(MKNODAT, 54, "mknodat", RT_ACCESS_WRITE)           \
	X(MKFIFO, 55, "mkfifo", RT_ACCESS_WRITE)             \
	X(MKFIFOAT, 56, "mkfifoat", RT_ACCESS_WRITE)         \
	X(TRUNCATE, 57, "truncate", RT_ACCESS_WRITE)         \
	X(TRUNCATE64, 58, "truncate64", RT_ACCESS_WRITE)     \
	X(SYSCALL_OPENAT2, 59, "syscall(openat2)", RT_ACCESS_READ)      \
	X(SYSCALL_RENAMEAT2, 60, "syscall(renameat2)", RT_ACCESS_WRITE) \
	X(EXECVE, 70, "execve", RT_ACCESS_READ)              \
	X(EXECV, 71, "execv", RT_ACCESS_READ)                \
	X(EXECVP, 72, "execvp", RT_ACCESS_READ)              \
	X(EXECVPE, 73, "execvpe", RT_ACCESS_READ)            \
	X(EXECL, 74, "execl", RT_ACCESS_READ)                \
	X(EXECLP, 75, "execlp", RT_ACCESS_READ)              \
	X(EXECLE, 76, "execle", RT_ACCESS_READ)              \
	X(FEXECVE, 77, "fexecve", RT_ACCESS_READ)            \
	X(EXECVEAT, 78, "execveat", RT_ACCESS_READ)          \
	X(POSIX_SPAWN, 79, "posix_spawn", RT_ACCESS_READ)    \
	X(POSIX_SPAWNP, 80, "posix_spawnp", RT_ACCESS_READ)  \
	X(FORK, 81, "fork", RT_ACCESS_NONE)                  \
	X(VFORK, 82, "vfork", RT_ACCESS_NONE)                \
	X(CLONE, 83, "clone", RT_ACCESS_NONE)                \
	X(SYSTEM, 84, "system", RT_ACCESS_READ)              \
	X(POPEN, 85, "popen", RT_ACCESS_READ)                \
	X(CHDIR, 90, "chdir", RT_ACCESS_NONE)                \
	X(FCHDIR, 91, "fchdir", RT_ACCESS_NONE)              \
	X(BIND, 92, "bind", RT_ACCESS_WRITE)                 \
	X(CONNECT, 93, "connect", RT_ACCESS_WRITE)           \
	X(SHM_OPEN, 94, "shm_open", RT_ACCESS_WRITE)         \
	X(MQ_OPEN, 95, "mq_open", RT_ACCESS_WRITE)           \
	X(SHM_UNLINK, 96, "shm_unlink", RT_ACCESS_WRITE)     \
	X(MQ_UNLINK, 97, "mq_unlink", RT_ACCESS_WRITE)       \
	X(DLOPEN, 100, "dlopen", RT_ACCESS_READ)             \
	X(LOADED, 101, "loaded", RT_ACCESS_READ)             \
	X(PROC_START, 110, "proc_start", RT_ACCESS_NONE)     \
	X(PROC_FORK, 111, "proc_fork", RT_ACCESS_NONE)       \
	X(PROC_EXEC, 112, "proc_exec", RT_ACCESS_NONE)       \
	X(PROC_EXIT, 113, "proc_exit", RT_ACCESS_NONE)      \
	X(STAT, 120, "stat", RT_ACCESS_LOOKUP)               \
	X(LSTAT, 121, "lstat", RT_ACCESS_LOOKUP)             \
	X(FSTATAT, 122, "fstatat", RT_ACCESS_LOOKUP)         \
	X(STAT64, 123, "stat64", RT_ACCESS_LOOKUP)           \
	X(LSTAT64, 124, "lstat64", RT_ACCESS_LOOKUP)         \
	X(FSTATAT64, 125, "fstatat64", RT_ACCESS_LOOKUP)     \
	X(XSTAT, 126, "__xstat", RT_ACCESS_LOOKUP)           \
	X(LXSTAT, 127, "__lxstat", RT_ACCESS_LOOKUP)         \
	X(FXSTATAT, 128, "__fxstatat", RT_ACCESS_LOOKUP)     \
	X(XSTAT64, 129, "__xstat64", RT_ACCESS_LOOKUP)       \
	X(LXSTAT64, 130, "__lxstat64", RT_ACCESS_LOOKUP)     \
	X(FXSTATAT64, 131, "__fxstatat64", RT_ACCESS_LOOKUP) \
	X(ACCESS, 132, "access", RT_ACCESS_LOOKUP)           \
	X(FACCESSAT, 133, "faccessat", RT_ACCESS_LOOKUP)     \
	X(STATX, 134, "statx", RT_ACCESS_LOOKUP)             \
	X(READLINK, 135, "readlink", RT_ACCESS_LOOKUP)       \
	X(READLINKAT, 136, "readlinkat", RT_ACCESS_LOOKUP)   \
	X(SEM_OPEN, 137, "sem_open", RT_ACCESS_WRITE)        \
	X(SEM_UNLINK, 138, "sem_unlink", RT_ACCESS_WRITE)    \
	X(SPAWN_OPEN, 139, "posix_spawn(open)", RT_ACCESS_READ) \
	X(LISTEN, 140, "listen", RT_ACCESS_WRITE)            \
	X(ACCEPT, 141, "accept", RT_ACCESS_WRITE)            \
	X(ACCEPT4, 142, "accept4", RT_ACCESS_WRITE)          \
	X(SENDTO, 143, "sendto", RT_ACCESS_WRITE)            \
	X(SENDMSG, 144, "sendmsg", RT_ACCESS_WRITE)

enum rt_op {
#define RT_OP_ENUM(name, num, str, access) RT_OP_##name = num,
	RT_OPS(RT_OP_ENUM)
#undef RT_OP_ENUM
};

#if defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
_Static_assert(sizeof(struct rt_ring_header) == RT_HEADER_SIZE, "header is one page");
_Static_assert(__builtin_offsetof(struct rt_ring_header, sub_size) == 1 * RT_CACHE_LINE, "geometry on line 1");
_Static_assert(__builtin_offsetof(struct rt_ring_header, consumer_pid) == 2 * RT_CACHE_LINE, "consumer on line 2");
_Static_assert(__builtin_offsetof(struct rt_ring_header, dropped_full_records) == 3 * RT_CACHE_LINE, "drops on line 3");
_Static_assert(__builtin_offsetof(struct rt_ring_header, abandoned_records) == 4 * RT_CACHE_LINE, "consumer counters on line 4");
_Static_assert(__builtin_offsetof(struct rt_ring_header, doorbell) == 5 * RT_CACHE_LINE, "doorbell on line 5");
_Static_assert(sizeof(struct rt_record) == RT_SLOT_SIZE, "record header is one slot");
_Static_assert(sizeof(struct rt_sub) == RT_SUB_CTL_SIZE, "a sub-ring's control is two lines");
_Static_assert(__builtin_offsetof(struct rt_sub, head) == RT_CACHE_LINE, "head on its own line");
_Static_assert(sizeof(struct rt_cut) == RT_CACHE_LINE, "cut positions start on a line");
_Static_assert(RT_MAX_RECORD_SIZE <= RT_MIN_SUB_SIZE / 2, "a maximal record fits twice in the smallest sub-ring");
_Static_assert(RT_SLOT_SIZE + 2 * RT_PATH_MAX + 3 <= RT_MAX_RECORD_SIZE, "two whole paths fit in a record");
#endif

#endif /* RESTRACK_RING_ABI_H */
