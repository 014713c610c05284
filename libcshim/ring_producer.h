/*
 * ring_producer.h — the C producer side of the restrack ring.
 *
 * Used by the shim from inside traced programs, so every function here is
 * lock-free, allocation-free and async-signal-safe once attached: it may run
 * in a signal handler, in a child after fork, and in many threads at once.
 * Appending calls nothing from libc but clock_gettime (the vDSO); its
 * system calls (futex wake, the full-ring nap, the prefault) are raw traps
 * (rt_raw_syscall.h): no cancellation point, errno untouched.
 * Attaching (mmap) is done once, outside the hot path.
 */
#ifndef RESTRACK_RING_PRODUCER_H
#define RESTRACK_RING_PRODUCER_H

#include <stddef.h>
#include <stdint.h>

#include "ring_abi.h"

/* Records a process makes in unmapped chunks before it starts prefaulting
 * them: most processes are short (a shell's cat, a compiler's as), and their
 * few records fault in a page or two, far cheaper than mapping a chunk. */
#define RT_PREFAULT_SKIP 64u

/* Results of rt_producer_append. */
enum rt_append_result {
	RT_APPENDED = 0,
	RT_DROPPED_FULL = 1,   /* counted in dropped_full_* */
	RT_DROPPED_TOOBIG = 2, /* counted in dropped_toobig_* */
	RT_NOT_ATTACHED = 3,   /* no ring: nothing counted anywhere */
};

/* Errors of rt_producer_attach (returned negated). */
enum rt_attach_error {
	RT_EBADMAGIC = 1001,
	RT_EABI = 1002,
	RT_ESIZE = 1003,
};

/*
 * A producer's private view of one ring. The geometry is copied out of the
 * shared header once, validated, at attach: a same-uid process can rewrite
 * the header at any time, so the append path never takes a size, an offset
 * or a count from shared memory again. Shared memory is only written
 * through the positions this struct bounds.
 */
struct rt_producer {
	struct rt_ring_header *hdr; /* NULL when detached; counters and doorbell only */
	struct rt_sub *sub;         /* nsub sub-ring control blocks */
	unsigned char *data;        /* sub-ring 0's first slot */
	uint64_t data_size;         /* bytes of all sub-rings */
	uint64_t sub_size;          /* bytes of one sub-ring (a power of two) */
	uint64_t sub_slots;         /* slots of one sub-ring */
	uint32_t sub_mask;          /* nsub - 1 */
	uint32_t flags;             /* RT_HF_*, as the header said at attach */
	size_t map_len;
	uint64_t full_wait_ns;      /* bounded wait on a full ring */
	uint64_t high_water;        /* slots in use in a sub-ring whose crossing rings the doorbell */
	unsigned chunk_shift;       /* log2 of a prefault chunk; 0 = never prefault */
	uint32_t prefault_skip;     /* records left before prefaulting starts (short processes never do) */
	uint64_t populated[RT_MAX_SUB]; /* bit i of [s]: chunk i of sub-ring s is mapped here */
	int no_syscalls;            /* a seccomp filter may be in force: see rt_producer_forbid_syscalls */
};

/* One record to append. Strings need not be NUL-terminated; their lengths
 * are given. time_ns 0 means "now", read after the slots are reserved (the
 * consumer's ordering relies on that; see docs/ring-abi.md). tid also picks
 * the sub-ring when the CPU number is not available. */
struct rt_event {
	uint8_t type;
	uint8_t access;
	uint16_t op;
	uint16_t rflags;
	int32_t pid, tid, ppid;
	int32_t result;
	uint32_t flags, mode;
	uint64_t start_ns;
	uint64_t time_ns;
	const char *str[3];
	uint32_t len[3];
};

/* Maps the ring behind fd (which the caller may close afterwards),
 * validates its header and copies its geometry. Returns 0, -errno, or
 * -RT_E*. */
int rt_producer_attach(struct rt_producer *p, int fd);
void rt_producer_detach(struct rt_producer *p);

/* In a child after fork: its page tables for the ring are empty again
 * (fork does not copy those of shared file mappings), so prefaulting starts
 * over. Async-signal-safe. */
void rt_producer_after_fork(struct rt_producer *p);

/* From now on the producer makes no system call at all (a seccomp filter
 * may be in force, and one refused call can kill the process): no prefault,
 * no futex wake (the consumer still finds records on its timer), and a full
 * ring drops at once instead of napping. Survives a later attach. */
void rt_producer_forbid_syscalls(struct rt_producer *p);

/* Appends one record: the one producer core every path of the shim uses.
 * Never blocks longer than full_wait_ns; never allocates; never changes
 * errno; not a cancellation point. */
enum rt_append_result rt_producer_append(struct rt_producer *p, const struct rt_event *ev);

/* Writes every header field but the stamp (the publication, done last).
 * Shared with the FIFO transport, which sends the same record bytes. */
static inline void rt_fill_header(struct rt_record *r, const struct rt_event *ev, uint32_t len, uint64_t time_ns)
{
	r->len = len;
	r->type = ev->type;
	r->access = ev->access;
	r->op = ev->op;
	r->time_ns = time_ns;
	r->start_ns = ev->start_ns;
	r->pid = ev->pid;
	r->tid = ev->tid;
	r->ppid = ev->ppid;
	r->result = ev->result;
	r->flags = ev->flags;
	r->mode = ev->mode;
	r->len1 = (uint16_t)ev->len[0];
	r->len2 = (uint16_t)ev->len[1];
	r->len3 = (uint16_t)ev->len[2];
	r->rflags = ev->rflags;
}

/* CLOCK_MONOTONIC in ns (vDSO, async-signal-safe). */
uint64_t rt_now_ns(void);

/* The sub-ring this thread appends to first: the CPU it runs on (from
 * the rseq area glibc registers), else a hash of tid. */
uint32_t rt_producer_pick_sub(const struct rt_producer *p, int32_t tid);

#ifdef RT_TEST_HOOKS
/* Test-only: called after a successful reservation, before publishing. */
extern void (*rt_test_after_reserve)(uint64_t pos, uint32_t nslots);
/* Test-only: when >= 0, the sub-ring every append starts with. */
extern int rt_test_force_sub;
#endif

#endif /* RESTRACK_RING_PRODUCER_H */
