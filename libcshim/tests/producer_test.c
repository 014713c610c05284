/*
 * producer_test.c — unit tests of ring_producer.c on rings it builds in
 * memory-backed files: attach rejects bad headers with the right error and
 * keeps the geometry it validated, records round-trip byte for byte (also
 * across the end of a sub-ring), a full sub-ring spills into the others,
 * oversized and full records are dropped and counted exactly, a thread with
 * a pending cancel is never cancelled inside an append, and errno is never
 * changed. Run by `make test-c` (built with ASan and UBSan).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ring_producer.h"
#include "ring_make.h"

static int failures;

#define CHECK(cond, ...)                                                     \
	do {                                                                 \
		if (!(cond)) {                                               \
			fprintf(stderr, "%s:%d: FAIL %s: ", __FILE__, __LINE__, #cond); \
			fprintf(stderr, __VA_ARGS__);                        \
			fputc('\n', stderr);                                 \
			failures++;                                          \
		}                                                            \
	} while (0)

static int make_ring(uint32_t nsub, uint64_t sub_size, uint64_t magic, uint16_t major)
{
	return rt_make_ring("/tmp", nsub, sub_size, magic, major);
}

/* Maps the header of fd so a test can damage it. */
static struct rt_ring_header *header_of(int fd)
{
	struct rt_ring_header *h = mmap(NULL, RT_HEADER_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (h == MAP_FAILED) {
		perror("mmap");
		exit(2);
	}
	return h;
}

static void test_attach_rejects_bad_headers(void)
{
	static const struct {
		const char *name;
		int field;
		uint64_t value;
		int want;
	} cases[] = {
		{"bad magic", 0, 0x1234, -RT_EBADMAGIC},
		{"another major", 1, RT_ABI_MAJOR + 1, -RT_EABI},
		{"a sub-ring count not a power of two", 2, 3, -RT_ESIZE},
		{"more sub-rings than the ABI allows", 2, 2 * RT_MAX_SUB, -RT_ESIZE},
		{"a sub-ring size not a power of two", 3, RT_MIN_SUB_SIZE * 3, -RT_ESIZE},
		{"a data size that is not nsub x sub_size", 4, RT_MIN_SUB_SIZE * 4, -RT_ESIZE},
		{"data beyond the end of the file", 5, UINT64_C(1) << 30, -RT_ESIZE},
		{"a data offset elsewhere than the layout says", 6, RT_PAGE_SIZE * 100, -RT_ESIZE},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rt_producer p;
		int fd = make_ring(2, RT_MIN_SUB_SIZE, RT_MAGIC, RT_ABI_MAJOR);
		struct rt_ring_header *h = header_of(fd);
		switch (cases[i].field) {
		case 0: h->magic = cases[i].value; break;
		case 1: h->abi_major = (uint16_t)cases[i].value; break;
		case 2: h->nsub = (uint32_t)cases[i].value; break;
		case 3: h->sub_size = cases[i].value; break;
		case 4: h->data_size = cases[i].value; break;
		case 5: h->file_size = h->data_offset + cases[i].value; h->sub_size = cases[i].value / 2; h->data_size = cases[i].value; break;
		case 6: h->data_offset = cases[i].value; break;
		}
		int rc = rt_producer_attach(&p, fd);
		CHECK(rc == cases[i].want, "%s: got %d, want %d", cases[i].name, rc, cases[i].want);
		CHECK(p.hdr == NULL, "%s: a failed attach leaves the producer detached", cases[i].name);
		munmap(h, RT_HEADER_SIZE);
		close(fd);
	}
	struct rt_producer p;
	CHECK(rt_producer_attach(&p, -1) == -EBADF, "a bad fd is -EBADF");
	struct rt_event ev = {.type = RT_TYPE_EVENT};
	CHECK(rt_producer_append(&p, &ev) == RT_NOT_ATTACHED, "append without a ring is a no-op");
}

/* Rewrites the header's sizes while another thread attaches. */
static volatile int flipping;
static void *flip_sizes(void *arg)
{
	struct rt_ring_header *h = arg;
	uint64_t good = h->sub_size;
	while (flipping) {
		__atomic_store_n(&h->sub_size, UINT64_C(1) << 40, __ATOMIC_RELAXED);
		__atomic_store_n(&h->data_size, UINT64_C(1) << 41, __ATOMIC_RELAXED);
		__atomic_store_n(&h->sub_size, good, __ATOMIC_RELAXED);
		__atomic_store_n(&h->data_size, 2 * good, __ATOMIC_RELAXED);
	}
	return NULL;
}

static void test_attach_keeps_only_the_geometry_it_validated(void)
{
	int fd = make_ring(2, RT_MIN_SUB_SIZE, RT_MAGIC, RT_ABI_MAJOR);
	struct rt_ring_header *h = header_of(fd);
	pthread_t th;
	flipping = 1;
	pthread_create(&th, NULL, flip_sizes, h);
	int attached = 0, wrong = 0;
	for (int i = 0; i < 3000; i++) {
		struct rt_producer p;
		if (rt_producer_attach(&p, fd) != 0)
			continue;
		attached++;
		wrong += p.data_size != 2 * RT_MIN_SUB_SIZE || p.sub_size != RT_MIN_SUB_SIZE;
		rt_producer_detach(&p);
	}
	flipping = 0;
	pthread_join(th, NULL);
	CHECK(wrong == 0, "%d of %d attaches kept a size that was never validated", wrong, attached);

	/* After attach, the header may say anything: appends stay in the map. */
	struct rt_producer p;
	h->sub_size = RT_MIN_SUB_SIZE;
	h->data_size = 2 * RT_MIN_SUB_SIZE;
	h->nsub = 2;
	CHECK(rt_producer_attach(&p, fd) == 0, "attach");
	h->sub_size = h->data_size = UINT64_C(1) << 40;
	h->nsub = RT_MAX_SUB;
	struct rt_event ev = {.type = RT_TYPE_EVENT, .str = {"/x"}, .len = {2}};
	for (int i = 0; i < 5000; i++)
		rt_producer_append(&p, &ev);
	CHECK(p.sub_size == RT_MIN_SUB_SIZE && p.sub_mask == 1, "the private geometry is untouched");
	rt_producer_detach(&p);
	munmap(h, RT_HEADER_SIZE);
	close(fd);
}

/* Reads back n bytes of sub-ring s from byte offset off (test-side consumer). */
static void read_string(struct rt_producer *p, uint32_t s, uint64_t off, char *dst, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		dst[i] = (char)p->data[s * p->sub_size + ((off + i) & (p->sub_size - 1))];
}

static void test_records_round_trip_across_the_wrap(void)
{
	struct rt_producer p;
	int fd = make_ring(1, RT_MIN_SUB_SIZE, RT_MAGIC, RT_ABI_MAJOR);
	CHECK(rt_producer_attach(&p, fd) == 0, "attach");
	close(fd);
	/* Put tail two slots before the end so a long path wraps. */
	uint64_t start = p.sub_slots * 5 - 2;
	p.sub[0].tail = p.sub[0].head = start;
	p.hdr->consumer_pid = 1;
	char path[RT_PATH_MAX + 1];
	for (unsigned i = 0; i < RT_PATH_MAX; i++)
		path[i] = (char)('a' + i % 26);
	path[0] = '/';
	struct rt_event ev = {.type = RT_TYPE_EVENT, .access = RT_ACCESS_WRITE, .op = RT_OP_RENAME,
			      .pid = 42, .tid = 43, .ppid = 1, .result = -2, .flags = 7, .mode = 0644,
			      .start_ns = 99, .time_ns = 1234,
			      .str = {path, "/b"}, .len = {RT_PATH_MAX, 2}};
	errno = 77;
	CHECK(rt_producer_append(&p, &ev) == RT_APPENDED, "append a PATH_MAX path");
	CHECK(errno == 77, "errno preserved, got %d", errno);
	struct rt_record *r = (struct rt_record *)(p.data + ((start * RT_SLOT_SIZE) & (p.sub_size - 1)));
	CHECK(r->stamp == rt_stamp(start), "stamp published");
	CHECK(r->len == 64 + RT_PATH_MAX + 2 + 3, "len %u", r->len);
	CHECK(r->pid == 42 && r->tid == 43 && r->ppid == 1 && r->result == -2 && r->flags == 7 &&
		      r->mode == 0644 && r->start_ns == 99 && r->time_ns == 1234 && r->op == RT_OP_RENAME &&
		      r->access == RT_ACCESS_WRITE && r->len1 == RT_PATH_MAX && r->len2 == 2,
	      "fixed fields");
	static char back[RT_PATH_MAX + 4];
	uint64_t off = start * RT_SLOT_SIZE + 64;
	read_string(&p, 0, off, back, RT_PATH_MAX + 1);
	CHECK(memcmp(back, path, RT_PATH_MAX) == 0 && back[RT_PATH_MAX] == 0, "path 1 whole, NUL-terminated");
	read_string(&p, 0, off + RT_PATH_MAX + 1, back, 4);
	CHECK(memcmp(back, "/b\0\0", 4) == 0, "path 2 and empty str3");
	CHECK(p.sub[0].tail == start + (r->len + 63) / 64, "tail advanced by the record's slots");
	rt_producer_detach(&p);
}

static void test_oversized_and_full_are_dropped_and_counted(void)
{
	struct rt_producer p;
	int fd = make_ring(4, RT_MIN_SUB_SIZE, RT_MAGIC, RT_ABI_MAJOR);
	CHECK(rt_producer_attach(&p, fd) == 0, "attach");
	close(fd);
	CHECK(p.hdr->attached == 1, "the attach is counted");
	static char big[RT_MAX_RECORD_SIZE];
	memset(big, 'x', sizeof(big));
	struct rt_event ev = {.type = RT_TYPE_EVENT, .str = {big}, .len = {UINT16_MAX}};
	errno = 5;
	CHECK(rt_producer_append(&p, &ev) == RT_DROPPED_TOOBIG, "record over max_record");
	CHECK(errno == 5, "errno preserved");
	CHECK(p.hdr->dropped_toobig_records == 1 && p.hdr->dropped_toobig_bytes == 64 + UINT16_MAX + 3,
	      "too-big counted: %llu records %llu bytes", (unsigned long long)p.hdr->dropped_toobig_records,
	      (unsigned long long)p.hdr->dropped_toobig_bytes);
	/* No consumer attached: a full ring drops at once, without waiting.
	 * One thread fills its own sub-ring, then spills into the others. */
	ev.len[0] = 100;
	uint64_t appended = 0, dropped = 0;
	for (int i = 0; i < 8000; i++) {
		enum rt_append_result r = rt_producer_append(&p, &ev);
		appended += r == RT_APPENDED;
		dropped += r == RT_DROPPED_FULL;
	}
	CHECK(appended == 4 * (p.sub_slots / 3), "four 64 KiB sub-rings hold %llu 3-slot records, appended %llu",
	      (unsigned long long)(4 * (p.sub_slots / 3)), (unsigned long long)appended);
	for (uint32_t s = 0; s < 4; s++)
		CHECK(p.sub[s].tail == 3 * (p.sub_slots / 3), "sub-ring %u filled, tail %llu", s,
		      (unsigned long long)p.sub[s].tail);
	CHECK(dropped == 8000 - appended && p.hdr->dropped_full_records == dropped,
	      "every other record dropped and counted");
	CHECK(p.hdr->dropped_full_bytes == dropped * (64 + 100 + 3), "dropped bytes");
	CHECK(p.hdr->full_waits == dropped, "each drop follows exactly one counted full wait: %llu waits, %llu drops",
	      (unsigned long long)p.hdr->full_waits, (unsigned long long)dropped);
	rt_producer_detach(&p);
}

/* A thread with a cancel pending appends to a full ring whose consumer is
 * alive: the bounded wait must not be a cancellation point. */
static struct rt_producer cancel_prod;
static volatile int cancel_go;
static volatile int cancel_result = -1;

static void *append_with_cancel_pending(void *arg)
{
	(void)arg;
	while (!__atomic_load_n(&cancel_go, __ATOMIC_ACQUIRE))
		; /* no cancellation point while the cancel is made pending */
	struct rt_event ev = {.type = RT_TYPE_EVENT, .str = {"/full"}, .len = {5}};
	cancel_result = rt_producer_append(&cancel_prod, &ev);
	return NULL;
}

static void test_a_pending_cancel_never_acts_inside_an_append(void)
{
	int fd = make_ring(1, RT_MIN_SUB_SIZE, RT_MAGIC, RT_ABI_MAJOR);
	CHECK(rt_producer_attach(&cancel_prod, fd) == 0, "attach");
	close(fd);
	cancel_prod.full_wait_ns = 20000000; /* 20 ms: many naps */
	cancel_prod.sub[0].tail = cancel_prod.sub_slots; /* full */
	cancel_prod.hdr->consumer_pid = (uint64_t)getpid();
	cancel_prod.hdr->heartbeat_ns = rt_now_ns();
	pthread_t th;
	void *ret;
	pthread_create(&th, NULL, append_with_cancel_pending, NULL);
	pthread_cancel(th);
	__atomic_store_n(&cancel_go, 1, __ATOMIC_RELEASE);
	pthread_join(th, &ret);
	CHECK(cancel_result == RT_DROPPED_FULL, "the append returned (result %d), it was not cancelled inside", cancel_result);
	CHECK(cancel_prod.hdr->full_waits == 1 && cancel_prod.hdr->dropped_full_records == 1,
	      "one full wait, one drop: %llu and %llu", (unsigned long long)cancel_prod.hdr->full_waits,
	      (unsigned long long)cancel_prod.hdr->dropped_full_records);
	rt_producer_detach(&cancel_prod);
}

/* Under seccomp the producer makes no system call: a full ring whose
 * consumer is alive drops at once instead of napping. */
static void test_a_producer_forbidden_syscalls_never_naps(void)
{
	struct rt_producer p;
	memset(&p, 0, sizeof(p));
	rt_producer_forbid_syscalls(&p); /* before attach: the shim may learn of the filter first */
	int fd = make_ring(1, RT_MIN_SUB_SIZE, RT_MAGIC, RT_ABI_MAJOR);
	CHECK(rt_producer_attach(&p, fd) == 0, "attach");
	close(fd);
	CHECK(p.no_syscalls == 1, "the promise survives attach");
	p.full_wait_ns = 500000000; /* 500 ms: a nap would show */
	p.sub[0].tail = p.sub_slots;
	p.hdr->consumer_pid = (uint64_t)getpid();
	p.hdr->heartbeat_ns = rt_now_ns();
	struct rt_event ev = {.type = RT_TYPE_EVENT, .str = {"/full"}, .len = {5}};
	uint64_t t0 = rt_now_ns();
	CHECK(rt_producer_append(&p, &ev) == RT_DROPPED_FULL, "dropped");
	CHECK(rt_now_ns() - t0 < 100000000, "at once, not after a wait: %llu ns", (unsigned long long)(rt_now_ns() - t0));
	CHECK(p.hdr->full_waits == 1 && p.hdr->dropped_full_records == 1, "counted once each");
	rt_producer_detach(&p);
}

int main(void)
{
	test_attach_rejects_bad_headers();
	test_attach_keeps_only_the_geometry_it_validated();
	test_records_round_trip_across_the_wrap();
	test_oversized_and_full_are_dropped_and_counted();
	test_a_pending_cancel_never_acts_inside_an_append();
	test_a_producer_forbidden_syscalls_never_naps();
	if (failures) {
		fprintf(stderr, "%d failures\n", failures);
		return 1;
	}
	printf("producer_test: ok\n");
	return 0;
}
