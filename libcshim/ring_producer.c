/*
 * ring_producer.c — appends records to the restrack ring.
 *
 * Producers: any thread of any traced process. Consumer: the collector.
 * A producer reserves ceil(len/64) slots by CAS on tail (after checking
 * against head that they are free), writes the record, and publishes it by
 * storing the first slot's stamp with release order. On a full ring it
 * waits at most full_wait_ns (not at all when no consumer is alive), then
 * drops the record and counts it by cause. docs/ring-abi.md has the rules.
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
#endif

/* A consumer whose heartbeat is older than this is presumed gone: producers
 * then drop at once instead of waiting on a ring nobody drains. */
#define RT_CONSUMER_STALE_NS UINT64_C(2000000000)

#ifdef RT_TEST_HOOKS
void (*rt_test_after_reserve)(uint64_t pos, uint32_t nslots);
#endif

uint64_t rt_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int rt_producer_attach(struct rt_producer *p, int fd)
{
	struct stat st;
	struct rt_ring_header *hdr;
	uint64_t data_size;
	int saved = errno;
	int rc = 0;

	memset(p, 0, sizeof(*p));
	if (fstat(fd, &st) != 0) {
		rc = -errno;
		goto out;
	}
	if ((uint64_t)st.st_size < RT_HEADER_SIZE + RT_MIN_DATA_SIZE) {
		rc = -RT_ESIZE;
		goto out;
	}
	hdr = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (hdr == MAP_FAILED) {
		rc = -errno;
		goto out;
	}
	/* Acquire pairs with the creator's release store of magic: every other
	 * header field was written before it. */
	if (__atomic_load_n(&hdr->magic, __ATOMIC_ACQUIRE) != RT_MAGIC) {
		rc = -RT_EBADMAGIC;
	} else if (hdr->abi_major != RT_ABI_MAJOR || hdr->header_size != RT_HEADER_SIZE ||
		   hdr->slot_size != RT_SLOT_SIZE) {
		rc = -RT_EABI;
	} else {
		data_size = hdr->data_size;
		if (data_size < RT_MIN_DATA_SIZE || data_size > RT_MAX_DATA_SIZE ||
		    (data_size & (data_size - 1)) != 0 ||
		    RT_HEADER_SIZE + data_size > (uint64_t)st.st_size)
			rc = -RT_ESIZE;
	}
	if (rc != 0) {
		munmap(hdr, (size_t)st.st_size);
		goto out;
	}
	p->hdr = hdr;
	p->data = (unsigned char *)hdr + RT_HEADER_SIZE;
	p->data_size = hdr->data_size;
	p->nslots = hdr->data_size >> RT_SLOT_SHIFT;
	p->map_len = (size_t)st.st_size;
	p->full_wait_ns = hdr->full_wait_ns ? hdr->full_wait_ns : RT_DEFAULT_FULL_WAIT_NS;
	p->high_water = p->nslots * RT_HIGH_WATER_PERCENT / 100;
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

/* Copies n bytes to data-area byte offset off (free-running), wrapping. */
static inline void copy_in(struct rt_producer *p, uint64_t off, const void *src, uint32_t n)
{
	uint64_t at = off & (p->data_size - 1);
	uint64_t first = p->data_size - at;
	if (n <= first) {
		__builtin_memcpy(p->data + at, src, n);
	} else {
		__builtin_memcpy(p->data + at, src, first);
		__builtin_memcpy(p->data, (const char *)src + first, n - first);
	}
}

static inline void put_byte(struct rt_producer *p, uint64_t off, unsigned char b)
{
	p->data[off & (p->data_size - 1)] = b;
}

static void count_drop(uint64_t *records, uint64_t *bytes, uint32_t len)
{
	__atomic_fetch_add(records, 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(bytes, len, __ATOMIC_RELAXED);
}

static int consumer_alive(const struct rt_ring_header *hdr, uint64_t now)
{
	uint64_t beat = __atomic_load_n(&hdr->heartbeat_ns, __ATOMIC_RELAXED);
	if (__atomic_load_n(&hdr->consumer_pid, __ATOMIC_RELAXED) == 0)
		return 0;
	return now < beat + RT_CONSUMER_STALE_NS;
}

__attribute__((noinline)) void rt_ring_doorbell(struct rt_ring_header *hdr)
{
	__atomic_fetch_add(&hdr->doorbell, 1, __ATOMIC_RELEASE);
#ifdef __linux__
	if (hdr->flags & RT_HF_FUTEX_DOORBELL)
		syscall(SYS_futex, &hdr->doorbell, FUTEX_WAKE, 1, NULL, NULL, 0);
#endif
}

static void backoff_sleep(uint64_t *backoff_ns, uint64_t remaining_ns, uint64_t now)
{
	/* Jitter (from the clock's low bits) keeps waiting producers from
	 * falling into lockstep, where the same one always wakes last and finds
	 * the freed space taken again. */
	uint64_t ns = *backoff_ns / 2 + (now * UINT64_C(0x9e3779b97f4a7c15) >> 40) % *backoff_ns;
	if (ns > remaining_ns)
		ns = remaining_ns;
	struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)ns};
	nanosleep(&ts, NULL); /* async-signal-safe; EINTR just ends this nap early */
	if (*backoff_ns < 256000)
		*backoff_ns *= 2;
}

enum rt_append_result rt_producer_append(struct rt_producer *p, const struct rt_event *ev)
{
	struct rt_ring_header *hdr = p->hdr;
	uint64_t len, k, t, h, wait_start = 0, now;
	uint64_t backoff_ns = 1000;
	struct rt_record *rec;
	uint64_t off;
	int saved_errno;

	if (hdr == NULL)
		return RT_NOT_ATTACHED;
	len = (uint64_t)sizeof(struct rt_record) + ev->len[0] + ev->len[1] + ev->len[2] + 3;
	if (len > RT_MAX_RECORD_SIZE || ev->len[0] > UINT16_MAX || ev->len[1] > UINT16_MAX ||
	    ev->len[2] > UINT16_MAX) {
		count_drop(&hdr->dropped_toobig_records, &hdr->dropped_toobig_bytes, (uint32_t)len);
		return RT_DROPPED_TOOBIG;
	}
	k = (len + RT_SLOT_SIZE - 1) >> RT_SLOT_SHIFT;

	saved_errno = errno;
	for (;;) {
		enum rt_reserve_result r = rt_reserve_once(p, k, &t, &h);
		if (r == RT_RESERVE_OK)
			break;
		if (r == RT_RESERVE_RACE)
			continue;
		/* Full (or head ahead of tail by corruption: treated as full). */
		now = rt_now_ns();
		if (wait_start == 0) {
			__atomic_fetch_add(&hdr->full_waits, 1, __ATOMIC_RELAXED);
			wait_start = now;
			if (!consumer_alive(hdr, wait_start))
				goto drop_full;
		} else if (now - wait_start >= p->full_wait_ns) {
			goto drop_full;
		}
		/* Sleep, not spin: on a full ring the consumer needs the CPU more
		 * than we do. Exponential backoff from 1 µs to 256 µs. */
		backoff_sleep(&backoff_ns, p->full_wait_ns - (now - wait_start), now);
	}

#ifdef RT_TEST_HOOKS
	if (rt_test_after_reserve)
		rt_test_after_reserve(t, (uint32_t)k);
#endif

	rec = rt_record_at(p, t);
	rt_fill_header(rec, ev, (uint32_t)len, ev->time_ns ? ev->time_ns : rt_now_ns());
	off = (t << RT_SLOT_SHIFT) + sizeof(struct rt_record);
	for (int i = 0; i < 3; i++) {
		if (ev->len[i])
			copy_in(p, off, ev->str[i], ev->len[i]);
		off += ev->len[i];
		put_byte(p, off, 0);
		off++;
	}
	rt_publish(p, rec, t, h, k);
	errno = saved_errno;
	return RT_APPENDED;

drop_full:
	count_drop(&hdr->dropped_full_records, &hdr->dropped_full_bytes, (uint32_t)len);
	errno = saved_errno;
	return RT_DROPPED_FULL;
}
