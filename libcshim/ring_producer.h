/*
 * ring_producer.h — the C producer side of the restrack ring.
 *
 * Used by the shim from inside traced programs, so every function here is
 * lock-free, allocation-free and async-signal-safe once attached: it may run
 * in a signal handler, in a child after fork, and in many threads at once.
 * Attaching (mmap) is done once, outside the hot path.
 */
#ifndef RESTRACK_RING_PRODUCER_H
#define RESTRACK_RING_PRODUCER_H

#include <stddef.h>
#include <stdint.h>

#include "ring_abi.h"

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

struct rt_producer {
	struct rt_ring_header *hdr; /* NULL when detached */
	unsigned char *data;        /* hdr + header_size */
	uint64_t data_size;
	uint64_t nslots;
	size_t map_len;
	uint64_t full_wait_ns;      /* bounded wait on a full ring */
	uint64_t high_water;        /* slots in use whose crossing rings the doorbell */
};

/* One record to append. Strings need not be NUL-terminated; their lengths
 * are given. time_ns 0 means "now". */
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

/* Maps the ring behind fd (which the caller may close afterwards) and
 * validates its header. Returns 0, -errno, or -RT_E*. */
int rt_producer_attach(struct rt_producer *p, int fd);
void rt_producer_detach(struct rt_producer *p);

/* Appends one record. Never blocks longer than full_wait_ns; never
 * allocates; preserves errno. */
enum rt_append_result rt_producer_append(struct rt_producer *p, const struct rt_event *ev);

/* CLOCK_MONOTONIC in ns (vDSO, async-signal-safe). */
uint64_t rt_now_ns(void);

/*
 * The protocol's two steps, inline so a specialised caller (the shim's fast
 * path for one-path records) shares them instead of restating them.
 * rt_producer_append is reserve, fill, publish, plus waiting and dropping.
 */
enum rt_reserve_result { RT_RESERVE_OK, RT_RESERVE_FULL, RT_RESERVE_RACE };

static inline struct rt_record *rt_record_at(const struct rt_producer *p, uint64_t pos)
{
	return (struct rt_record *)(p->data + ((pos << RT_SLOT_SHIFT) & (p->data_size - 1)));
}

/* One attempt to reserve k slots: FULL if they are not free now (or head
 * and tail are inconsistent), RACE if another producer moved tail first. */
static inline enum rt_reserve_result rt_reserve_once(struct rt_producer *p, uint64_t k, uint64_t *pos,
						     uint64_t *head)
{
	uint64_t t = __atomic_load_n(&p->hdr->tail, __ATOMIC_RELAXED);
	/* Acquire pairs with the consumer's release of head: its reads of the
	 * slots it freed happen before our writes into them. */
	uint64_t h = __atomic_load_n(&p->hdr->head, __ATOMIC_ACQUIRE);
	if (t - h > p->nslots || t + k - h > p->nslots)
		return RT_RESERVE_FULL;
	if (!__atomic_compare_exchange_n(&p->hdr->tail, &t, t + k, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		return RT_RESERVE_RACE;
	*pos = t;
	*head = h;
	return RT_RESERVE_OK;
}

/* Writes every header field but the stamp (the publication, done last). */
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

/* Increments the doorbell and wakes a consumer sleeping on it. */
void rt_ring_doorbell(struct rt_ring_header *hdr);

/* Publishes the filled record at pos (k slots, reserved when head was
 * head): the stamp is stored last, with release order, so the consumer (which
 * loads it with acquire) sees the whole record once it matches. */
static inline void rt_publish(struct rt_producer *p, struct rt_record *rec, uint64_t pos, uint64_t head,
			      uint64_t k)
{
	__atomic_store_n(&rec->stamp, rt_stamp(pos), __ATOMIC_RELEASE);
	if (__builtin_expect(pos - head < p->high_water && pos + k - head >= p->high_water, 0))
		rt_ring_doorbell(p->hdr);
}

#ifdef RT_TEST_HOOKS
/* Test-only: called after a successful reservation, before publishing. */
extern void (*rt_test_after_reserve)(uint64_t pos, uint32_t nslots);
#endif

#endif /* RESTRACK_RING_PRODUCER_H */
