/*
 * ring_producer.c — appends records to the restrack ring.
 *
 * Producers: any thread of any traced process. Consumer: the collector.
 * The ring is split into per-CPU sub-rings so that producers on different
 * CPUs never write the same cache line: a producer picks the sub-ring of
 * the CPU it runs on, reserves ceil(len/64) slots there by CAS on that
 * sub-ring's tail (after checking against its head that they are free),
 * writes the record, and publishes it by storing the first slot's stamp
 * with release order. A thread migrated between picking and reserving just
 * CASes another CPU's tail: slower, still correct. On a full sub-ring it
 * tries the others, then waits at most full_wait_ns (not at all when no
 * consumer is alive), then drops the record and counts it by cause.
 * docs/ring-abi.md has the rules.
 */
#include "ring_producer.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <linux/futex.h>
#include <sys/syscall.h>
#elif defined(__FreeBSD__)
#include <sys/syscall.h>
#ifndef SYS_nanosleep
#define SYS_nanosleep 240
#endif
#endif

#include "rt_raw_syscall.h"

/* A consumer whose heartbeat is older than this is presumed gone: producers
 * then drop at once instead of waiting on a ring nobody drains. */
#define RT_CONSUMER_STALE_NS UINT64_C(2000000000)

/* One read of a shared word: the compiler may neither repeat nor tear it,
 * so what was validated is what is used. */
#define RT_READ_ONCE(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)

#define RT_LIKELY(x) __builtin_expect(!!(x), 1)
#define RT_UNLIKELY(x) __builtin_expect(!!(x), 0)

#ifdef RT_TEST_HOOKS
void (*rt_test_after_reserve)(uint64_t pos, uint32_t nslots);
int rt_test_force_sub = -1;
#endif

/*
 * glibc >= 2.35 registers an rseq area for every thread and says where it
 * is; the kernel keeps its cpu_id current, so reading it is one load (no
 * getcpu system call, no libc call). Weak, so the library still loads on an
 * older glibc (and GLIBC_TUNABLES=glibc.pthread.rseq=0 sets the size to 0):
 * then the thread id picks the sub-ring.
 */
#if defined(__linux__) && defined(__GLIBC__) && (defined(__x86_64__) || defined(__aarch64__))
#define RT_HAVE_RSEQ 1
extern const ptrdiff_t __rseq_offset __attribute__((weak));
extern const unsigned int __rseq_size __attribute__((weak));
#endif

uint64_t rt_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

#if defined(__linux__) && !defined(RT_NO_PREFAULT)
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#endif

/*
 * The pages every producer writes: the header (counters, doorbell) and
 * the first page of sub-ring control blocks (tails; one page holds 32).
 * A process's first access to each is a read (the magic, a tail) soon
 * followed by a write (attached, the CAS): two faults per page, the second
 * a write-protect fault that on a disk file system also runs its
 * page_mkwrite. One MADV_POPULATE_WRITE maps both writable at once: at
 * attach, and in a forked child (fork copies no page table of a shared
 * file mapping). Content is untouched; kernels before 5.14 answer EINVAL
 * and the pages fault as before. Not under a seccomp filter.
 */
static void populate_control(struct rt_producer *p, void *base)
{
#if defined(__linux__) && !defined(RT_NO_PREFAULT)
	if (!__atomic_load_n(&p->no_syscalls, __ATOMIC_RELAXED))
		rt_raw_syscall3(SYS_madvise, (long)base, RT_HEADER_SIZE + RT_PAGE_SIZE, MADV_POPULATE_WRITE);
#else
	(void)p, (void)base;
#endif
}

static int is_pow2(uint64_t v) { return v != 0 && (v & (v - 1)) == 0; }

/* Validates the header's geometry, each field read once, and copies it
 * into p. Returns 0 or -RT_E*. */
static int take_geometry(struct rt_producer *p, struct rt_ring_header *hdr, uint64_t file_size)
{
	uint16_t major = RT_READ_ONCE(hdr->abi_major);
	uint32_t header_size = RT_READ_ONCE(hdr->header_size);
	uint32_t slot_size = RT_READ_ONCE(hdr->slot_size);
	uint32_t max_record = RT_READ_ONCE(hdr->max_record);
	uint32_t nsub = RT_READ_ONCE(hdr->nsub);
	uint64_t sub_size = RT_READ_ONCE(hdr->sub_size);
	uint64_t data_size = RT_READ_ONCE(hdr->data_size);
	uint64_t ctl = RT_READ_ONCE(hdr->ctl_offset), cut = RT_READ_ONCE(hdr->cut_offset);
	uint64_t data = RT_READ_ONCE(hdr->data_offset), size = RT_READ_ONCE(hdr->file_size);
	uint32_t ncuts = RT_READ_ONCE(hdr->ncuts), cut_size = RT_READ_ONCE(hdr->cut_size);
	uint32_t flags = RT_READ_ONCE(hdr->flags), full_wait = RT_READ_ONCE(hdr->full_wait_ns);
	uint64_t want_ctl, want_cut, want_data;

	if (major != RT_ABI_MAJOR || header_size != RT_HEADER_SIZE || slot_size != RT_SLOT_SIZE)
		return -RT_EABI;
	if (max_record != RT_MAX_RECORD_SIZE || nsub == 0 || nsub > RT_MAX_SUB || !is_pow2(nsub) ||
	    !is_pow2(sub_size) || sub_size < RT_MIN_SUB_SIZE || sub_size > RT_MAX_DATA_SIZE ||
	    data_size != (uint64_t)nsub * sub_size || data_size > RT_MAX_DATA_SIZE || ncuts != RT_NCUTS ||
	    cut_size != rt_cut_size(nsub))
		return -RT_ESIZE;
	rt_layout(nsub, &want_ctl, &want_cut, &want_data);
	if (ctl != want_ctl || cut != want_cut || data != want_data || size != data + data_size || size > file_size)
		return -RT_ESIZE;

	p->hdr = hdr;
	p->sub = (struct rt_sub *)((unsigned char *)hdr + ctl);
	p->data = (unsigned char *)hdr + data;
	p->data_size = data_size;
	p->sub_size = sub_size;
	p->sub_slots = sub_size >> RT_SLOT_SHIFT;
	p->sub_mask = nsub - 1;
	p->flags = flags;
	p->full_wait_ns = full_wait ? full_wait : RT_DEFAULT_FULL_WAIT_NS;
	p->high_water = p->sub_slots * RT_HIGH_WATER_PERCENT / 100;
#if defined(__linux__) && !defined(RT_NO_PREFAULT)
	/* 64 chunks per sub-ring (one bit each in populated), none under 64 KiB. */
	p->chunk_shift = 16;
	while ((sub_size >> p->chunk_shift) > 64)
		p->chunk_shift++;
	p->prefault_skip = RT_PREFAULT_SKIP;
#endif
	return 0;
}

int rt_producer_attach(struct rt_producer *p, int fd)
{
	struct stat st;
	struct rt_ring_header *hdr;
	uint64_t file_size;
	int saved = errno;
	int rc = 0;
	int no_syscalls = __atomic_load_n(&p->no_syscalls, __ATOMIC_RELAXED);

	memset(p, 0, sizeof(*p));
	p->no_syscalls = no_syscalls;
	if (fstat(fd, &st) != 0) {
		rc = -errno;
		goto out;
	}
	file_size = (uint64_t)st.st_size;
	if (file_size < RT_HEADER_SIZE + RT_MIN_DATA_SIZE || file_size > RT_MAX_DATA_SIZE + (UINT64_C(1) << 24)) {
		rc = -RT_ESIZE;
		goto out;
	}
	hdr = mmap(NULL, (size_t)file_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (hdr == MAP_FAILED) {
		rc = -errno;
		goto out;
	}
	populate_control(p, hdr);
	/* Acquire pairs with the creator's release store of magic: every other
	 * header field was written before it. */
	if (__atomic_load_n(&hdr->magic, __ATOMIC_ACQUIRE) != RT_MAGIC)
		rc = -RT_EBADMAGIC;
	else
		rc = take_geometry(p, hdr, file_size);
	if (rc != 0) {
		munmap(hdr, (size_t)file_size);
		memset(p, 0, sizeof(*p));
		p->no_syscalls = no_syscalls;
		goto out;
	}
	p->map_len = (size_t)file_size;
	__atomic_fetch_add(&hdr->attached, 1, __ATOMIC_RELAXED);
out:
	errno = saved;
	return rc;
}

void rt_producer_detach(struct rt_producer *p)
{
	int saved = errno;
	if (p->hdr)
		munmap(p->hdr, p->map_len);
	memset(p, 0, sizeof(*p));
	errno = saved;
}

void rt_producer_forbid_syscalls(struct rt_producer *p)
{
	__atomic_store_n(&p->no_syscalls, 1, __ATOMIC_RELEASE);
}

void rt_producer_after_fork(struct rt_producer *p)
{
	if (p->hdr != NULL)
		populate_control(p, p->hdr);
	for (uint32_t s = 0; s < RT_MAX_SUB; s++)
		__atomic_store_n(&p->populated[s], 0, __ATOMIC_RELAXED);
	if (p->chunk_shift != 0)
		__atomic_store_n(&p->prefault_skip, RT_PREFAULT_SKIP, __ATOMIC_RELAXED);
}

uint32_t rt_producer_pick_sub(const struct rt_producer *p, int32_t tid)
{
#ifdef RT_TEST_HOOKS
	if (rt_test_force_sub >= 0)
		return (uint32_t)rt_test_force_sub & p->sub_mask;
#endif
#ifdef RT_HAVE_RSEQ
	if (RT_LIKELY(&__rseq_size != NULL && __rseq_size >= 8)) {
		const unsigned char *area = (const unsigned char *)__builtin_thread_pointer() + __rseq_offset;
		/* struct rseq: u32 cpu_id_start, then u32 cpu_id (negative when
		 * the thread is not registered). */
		int32_t cpu = __atomic_load_n((const int32_t *)(area + 4), __ATOMIC_RELAXED);
		if (RT_LIKELY(cpu >= 0))
			return (uint32_t)cpu & p->sub_mask;
	}
#endif
	return ((uint32_t)tid * UINT32_C(2654435761)) >> 16 & p->sub_mask;
}

enum { RESERVED, FULL, RACE };

/* One attempt to reserve k slots of sub-ring s. */
static inline __attribute__((always_inline)) int reserve_once(struct rt_producer *p, struct rt_sub *s, uint64_t k,
							      uint64_t *pos, uint64_t *head)
{
	uint64_t t = __atomic_load_n(&s->tail, __ATOMIC_RELAXED);
	/* Acquire pairs with the consumer's release of head: its reads of the
	 * slots it freed happen before our writes into them. */
	uint64_t h = __atomic_load_n(&s->head, __ATOMIC_ACQUIRE);
	/* One comparison covers a full sub-ring and a head ahead of tail (a
	 * corrupted word): the unsigned difference is then huge. */
	if (t - h > p->sub_slots - k)
		return FULL;
	if (!__atomic_compare_exchange_n(&s->tail, &t, t + k, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		return RACE;
	*pos = t;
	*head = h;
	return RESERVED;
}

#if defined(__linux__) && !defined(RT_NO_PREFAULT)
/*
 * The first write to each page of the ring costs this process a page fault
 * (its page tables start empty after exec and after fork): several µs each,
 * i.e. ~230 ns per record while a process makes its first lap. Mapping a
 * whole chunk (1/64 of a sub-ring, at least 64 KiB) with one
 * MADV_POPULATE_WRITE when a record first lands in it costs a fraction of
 * that, and only for chunks this process actually writes. The pages exist
 * (the creator reserved them), so this never allocates; kernels without
 * MADV_POPULATE_WRITE (< 5.14) answer EINVAL and the pages fault as before.
 */
static __attribute__((noinline, cold)) void prefault_chunk(struct rt_producer *p, uint32_t s, uint64_t off)
{
	uint64_t len = UINT64_C(1) << p->chunk_shift;
	uint64_t idx = off >> p->chunk_shift;
	/* A racing thread may skip one more: harmless. */
	uint32_t skip = __atomic_load_n(&p->prefault_skip, __ATOMIC_RELAXED);
	if (skip > 0) {
		__atomic_store_n(&p->prefault_skip, skip - 1, __ATOMIC_RELAXED);
		return;
	}
	__atomic_fetch_or(&p->populated[s], UINT64_C(1) << idx, __ATOMIC_RELAXED);
	if (__atomic_load_n(&p->no_syscalls, __ATOMIC_RELAXED))
		return; /* an optimisation: the pages fault in anyway */
	rt_raw_syscall3(SYS_madvise, p->data + (uint64_t)s * p->sub_size + idx * len, len, MADV_POPULATE_WRITE);
}
#endif

/* Increments the doorbell and wakes a consumer sleeping on it. */
static __attribute__((noinline)) void ring_doorbell(struct rt_producer *p)
{
	__atomic_fetch_add(&p->hdr->doorbell, 1, __ATOMIC_RELEASE);
#ifdef __linux__
	/* Not FUTEX_PRIVATE: the consumer is another process. */
	if ((p->flags & RT_HF_FUTEX_DOORBELL) && !__atomic_load_n(&p->no_syscalls, __ATOMIC_RELAXED))
		rt_raw_syscall6(SYS_futex, (long)&p->hdr->doorbell, FUTEX_WAKE, 1, 0, 0, 0);
#endif
}

/* Copies n bytes to byte offset off (free-running) of a sub-ring, wrapping. */
static inline void copy_in(unsigned char *base, uint64_t mask, uint64_t off, const char *src, uint64_t n)
{
	uint64_t at = off & mask;
	uint64_t first = mask + 1 - at;
	if (n <= first) {
		__builtin_memcpy(base + at, src, n);
	} else {
		__builtin_memcpy(base + at, src, first);
		__builtin_memcpy(base, src + first, n - first);
	}
}

/* Fills and publishes the record reserved at slots [t, t + k) of sub-ring
 * s, reserved when that sub-ring's head was h. */
static inline __attribute__((always_inline)) void commit(struct rt_producer *p, uint32_t s, uint64_t t, uint64_t h,
							 uint64_t k, const struct rt_event *ev, uint32_t len)
{
	unsigned char *base = p->data + (uint64_t)s * p->sub_size;
	uint64_t mask = p->sub_size - 1;
	uint64_t off = (t << RT_SLOT_SHIFT) & mask;
	struct rt_record *rec = (struct rt_record *)(base + off);

#ifdef RT_TEST_HOOKS
	if (rt_test_after_reserve)
		rt_test_after_reserve(t, (uint32_t)k);
#endif
#if defined(__linux__) && !defined(RT_NO_PREFAULT)
	if (RT_UNLIKELY(p->chunk_shift != 0 &&
			!(__atomic_load_n(&p->populated[s], __ATOMIC_RELAXED) & (UINT64_C(1) << (off >> p->chunk_shift)))))
		prefault_chunk(p, s, off);
#endif
	/* The clock is read after the reservation: the consumer restores each
	 * thread's order across sub-rings from it (docs/ring-abi.md). */
	rt_fill_header(rec, ev, len, ev->time_ns ? ev->time_ns : rt_now_ns());
	off += sizeof(struct rt_record);
	if (RT_LIKELY(off + (len - sizeof(struct rt_record)) <= p->sub_size)) {
		unsigned char *d = base + off;
		for (int i = 0; i < 3; i++) {
			if (ev->len[i]) /* an empty string may come as NULL */
				__builtin_memcpy(d, ev->str[i], ev->len[i]);
			d += ev->len[i];
			*d++ = 0;
		}
	} else {
		/* The strings wrap around the end of the sub-ring. */
		for (int i = 0; i < 3; i++) {
			if (ev->len[i])
				copy_in(base, mask, off, ev->str[i], ev->len[i]);
			off += ev->len[i];
			base[off & mask] = 0;
			off++;
		}
	}
	/* The publication: the consumer loads the stamp with acquire, so it
	 * sees the whole record once the stamp matches. */
	__atomic_store_n(&rec->stamp, rt_stamp(t), __ATOMIC_RELEASE);
	if (RT_UNLIKELY(t - h < p->high_water && t + k - h >= p->high_water))
		ring_doorbell(p);
}

static int consumer_alive(const struct rt_ring_header *hdr, uint64_t now)
{
	uint64_t beat = __atomic_load_n(&hdr->heartbeat_ns, __ATOMIC_RELAXED);
	if (__atomic_load_n(&hdr->consumer_pid, __ATOMIC_RELAXED) == 0)
		return 0;
	return now < beat + RT_CONSUMER_STALE_NS;
}

/* A nap by raw system call: libc's nanosleep is a cancellation point, and a
 * thread with a pending cancel must not be cancelled inside the program's
 * own call. EINTR just ends the nap early. */
static void backoff_sleep(uint64_t *backoff_ns, uint64_t remaining_ns, uint64_t now)
{
	/* Jitter (from the clock's low bits) keeps waiting producers from
	 * falling into lockstep, where the same one always wakes last and finds
	 * the freed space taken again. */
	uint64_t ns = *backoff_ns / 2 + (now * UINT64_C(0x9e3779b97f4a7c15) >> 40) % *backoff_ns;
	if (ns > remaining_ns)
		ns = remaining_ns;
	struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)ns};
	rt_raw_syscall2(SYS_nanosleep, &ts, 0);
	if (*backoff_ns < 256000)
		*backoff_ns *= 2;
}

static void count_drop(uint64_t *records, uint64_t *bytes, uint64_t len)
{
	__atomic_fetch_add(records, 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(bytes, len, __ATOMIC_RELAXED);
}

/* Everything but the first uncontended attempt: a lost CAS race, a full
 * sub-ring (then the others are tried before waiting), the bounded wait,
 * the drop. */
static __attribute__((noinline)) enum rt_append_result append_slow(struct rt_producer *p, const struct rt_event *ev,
								    uint32_t len, uint64_t k, uint32_t first)
{
	struct rt_ring_header *hdr = p->hdr;
	uint64_t t, h, now, wait_start = 0, backoff_ns = 1000;

	for (;;) {
		for (uint32_t i = 0; i <= p->sub_mask; i++) {
			uint32_t s = (first + i) & p->sub_mask;
			int r;
			while ((r = reserve_once(p, &p->sub[s], k, &t, &h)) == RACE)
				;
			if (r == RESERVED) {
				commit(p, s, t, h, k, ev, len);
				return RT_APPENDED;
			}
		}
		/* Every sub-ring full (or inconsistent: treated as full). */
		now = rt_now_ns();
		if (wait_start == 0) {
			__atomic_fetch_add(&hdr->full_waits, 1, __ATOMIC_RELAXED);
			wait_start = now;
			/* No consumer, or no nap allowed: drop at once. */
			if (!consumer_alive(hdr, now) || __atomic_load_n(&p->no_syscalls, __ATOMIC_RELAXED))
				break;
		} else if (now - wait_start >= p->full_wait_ns) {
			break;
		}
		/* Sleep, not spin: on a full ring the consumer needs the CPU more
		 * than we do. Exponential backoff from 1 µs to 256 µs. */
		backoff_sleep(&backoff_ns, p->full_wait_ns - (now - wait_start), now);
	}
	count_drop(&hdr->dropped_full_records, &hdr->dropped_full_bytes, len);
	return RT_DROPPED_FULL;
}

enum rt_append_result rt_producer_append(struct rt_producer *p, const struct rt_event *ev)
{
	uint64_t len, k, t, h;
	uint32_t s;

	if (RT_UNLIKELY(p->hdr == NULL))
		return RT_NOT_ATTACHED;
	len = (uint64_t)sizeof(struct rt_record) + ev->len[0] + ev->len[1] + ev->len[2] + 3;
	if (RT_UNLIKELY(len > RT_MAX_RECORD_SIZE || ev->len[0] > UINT16_MAX || ev->len[1] > UINT16_MAX ||
			ev->len[2] > UINT16_MAX)) {
		count_drop(&p->hdr->dropped_toobig_records, &p->hdr->dropped_toobig_bytes, len);
		return RT_DROPPED_TOOBIG;
	}
	k = (len + RT_SLOT_SIZE - 1) >> RT_SLOT_SHIFT;
	s = rt_producer_pick_sub(p, ev->tid);
	if (RT_LIKELY(reserve_once(p, &p->sub[s], k, &t, &h) == RESERVED)) {
		commit(p, s, t, h, k, ev, (uint32_t)len);
		return RT_APPENDED;
	}
	return append_slow(p, ev, (uint32_t)len, k, s);
}
