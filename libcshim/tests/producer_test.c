/*
 * producer_test.c — unit tests of ring_producer.c on a ring it builds in
 * memory-backed files: attach rejects bad headers with the right error,
 * records round-trip byte for byte (also across the end of the data area),
 * oversized records are dropped and counted, and errno is never changed.
 * Run by `make test-c` (built with ASan and UBSan).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ring_producer.h"

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

/* A ring file as the collector creates it (ring/mmap.go Create). */
static int make_ring(uint64_t data_size, uint64_t magic, uint16_t major)
{
	char path[] = "/tmp/restrack-producer-test-XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0 || unlink(path) != 0 || ftruncate(fd, RT_HEADER_SIZE + data_size) != 0) {
		perror("make_ring");
		exit(2);
	}
	struct rt_ring_header *h = mmap(NULL, RT_HEADER_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	h->abi_major = major;
	h->abi_minor = RT_ABI_MINOR;
	h->header_size = RT_HEADER_SIZE;
	h->data_size = data_size;
	h->slot_size = RT_SLOT_SIZE;
	h->max_record = RT_MAX_RECORD_SIZE;
	h->full_wait_ns = 1000;
	h->magic = magic;
	munmap(h, RT_HEADER_SIZE);
	return fd;
}

static void test_attach_rejects_bad_headers(void)
{
	struct rt_producer p;
	int fd = make_ring(RT_MIN_DATA_SIZE, 0x1234, RT_ABI_MAJOR);
	CHECK(rt_producer_attach(&p, fd) == -RT_EBADMAGIC, "bad magic must be RT_EBADMAGIC");
	CHECK(p.hdr == NULL, "failed attach leaves the producer detached");
	close(fd);
	fd = make_ring(RT_MIN_DATA_SIZE, RT_MAGIC, RT_ABI_MAJOR + 1);
	CHECK(rt_producer_attach(&p, fd) == -RT_EABI, "other major must be RT_EABI");
	close(fd);
	fd = make_ring(RT_MIN_DATA_SIZE * 3, RT_MAGIC, RT_ABI_MAJOR);
	CHECK(rt_producer_attach(&p, fd) == -RT_ESIZE, "non-power-of-two data size must be RT_ESIZE");
	close(fd);
	CHECK(rt_producer_attach(&p, -1) == -EBADF, "a bad fd is -EBADF");
	struct rt_event ev = {.type = RT_TYPE_EVENT};
	CHECK(rt_producer_append(&p, &ev) == RT_NOT_ATTACHED, "append without a ring is a no-op");
}

/* Reads back the record at slot position pos (test-side consumer). */
static void read_string(struct rt_producer *p, uint64_t off, char *dst, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		dst[i] = (char)p->data[(off + i) & (p->data_size - 1)];
}

static void test_records_round_trip_across_the_wrap(void)
{
	struct rt_producer p;
	int fd = make_ring(RT_MIN_DATA_SIZE, RT_MAGIC, RT_ABI_MAJOR);
	CHECK(rt_producer_attach(&p, fd) == 0, "attach");
	close(fd);
	/* Put tail two slots before the end so a long path wraps. */
	uint64_t start = p.nslots * 5 - 2;
	p.hdr->tail = p.hdr->head = start;
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
	struct rt_record *r = (struct rt_record *)(p.data + ((start * RT_SLOT_SIZE) & (p.data_size - 1)));
	CHECK(r->stamp == rt_stamp(start), "stamp published");
	CHECK(r->len == 64 + RT_PATH_MAX + 2 + 3, "len %u", r->len);
	CHECK(r->pid == 42 && r->tid == 43 && r->ppid == 1 && r->result == -2 && r->flags == 7 &&
		      r->mode == 0644 && r->start_ns == 99 && r->time_ns == 1234 && r->op == RT_OP_RENAME &&
		      r->access == RT_ACCESS_WRITE && r->len1 == RT_PATH_MAX && r->len2 == 2,
	      "fixed fields");
	static char back[RT_PATH_MAX + 4];
	uint64_t off = start * RT_SLOT_SIZE + 64;
	read_string(&p, off, back, RT_PATH_MAX + 1);
	CHECK(memcmp(back, path, RT_PATH_MAX) == 0 && back[RT_PATH_MAX] == 0, "path 1 whole, NUL-terminated");
	read_string(&p, off + RT_PATH_MAX + 1, back, 4);
	CHECK(memcmp(back, "/b\0\0", 4) == 0, "path 2 and empty str3");
	CHECK(p.hdr->tail == start + (r->len + 63) / 64, "tail advanced by the record's slots");
	rt_producer_detach(&p);
}

static void test_oversized_and_full_are_dropped_and_counted(void)
{
	struct rt_producer p;
	int fd = make_ring(RT_MIN_DATA_SIZE, RT_MAGIC, RT_ABI_MAJOR);
	CHECK(rt_producer_attach(&p, fd) == 0, "attach");
	close(fd);
	static char big[RT_MAX_RECORD_SIZE];
	memset(big, 'x', sizeof(big));
	struct rt_event ev = {.type = RT_TYPE_EVENT, .str = {big}, .len = {UINT16_MAX}};
	errno = 5;
	CHECK(rt_producer_append(&p, &ev) == RT_DROPPED_TOOBIG, "record over max_record");
	CHECK(errno == 5, "errno preserved");
	CHECK(p.hdr->dropped_toobig_records == 1 && p.hdr->dropped_toobig_bytes == 64 + UINT16_MAX + 3,
	      "too-big counted: %llu records %llu bytes", (unsigned long long)p.hdr->dropped_toobig_records,
	      (unsigned long long)p.hdr->dropped_toobig_bytes);
	/* No consumer attached: a full ring drops at once, without waiting. */
	ev.len[0] = 100;
	uint64_t appended = 0, dropped = 0;
	for (int i = 0; i < 2000; i++) {
		enum rt_append_result r = rt_producer_append(&p, &ev);
		appended += r == RT_APPENDED;
		dropped += r == RT_DROPPED_FULL;
	}
	CHECK(appended == p.nslots / 3, "a 64 KiB ring holds %llu 3-slot records, appended %llu",
	      (unsigned long long)(p.nslots / 3), (unsigned long long)appended);
	CHECK(dropped == 2000 - appended && p.hdr->dropped_full_records == dropped,
	      "every other record dropped and counted");
	CHECK(p.hdr->dropped_full_bytes == dropped * (64 + 100 + 3), "dropped bytes");
	rt_producer_detach(&p);
}

int main(void)
{
	test_attach_rejects_bad_headers();
	test_records_round_trip_across_the_wrap();
	test_oversized_and_full_are_dropped_and_counted();
	if (failures) {
		fprintf(stderr, "%d failures\n", failures);
		return 1;
	}
	printf("producer_test: ok\n");
	return 0;
}
