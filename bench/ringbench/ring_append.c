/*
 * ring_append.c — ns per append from C, the producer's hot path alone.
 *
 * Producers: 1 or 2 threads appending records with a 64-byte path (3 slots),
 * timestamp included. Consumer: a thread standing in for the collector that
 * wakes every millisecond and releases everything published (it does not
 * copy: this measures the producer, the Go benchmarks measure draining).
 * Output: one line per case, "case threads ns_per_append", plus the cost of
 * the timestamp alone for reference.
 *
 *   ring_append [N_PER_THREAD]
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "ring_producer.h"

#define DATA_SIZE (16u << 20)

static struct rt_producer prod;
static volatile int stop;
static long n_per_thread = 5000000;

static void make_ring(void)
{
	char path[] = "/dev/shm/restrack-bench-XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0 || unlink(path) != 0 || ftruncate(fd, RT_HEADER_SIZE + DATA_SIZE) != 0) {
		perror("ring");
		exit(1);
	}
	struct rt_ring_header *h = mmap(NULL, RT_HEADER_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	h->abi_major = RT_ABI_MAJOR;
	h->header_size = RT_HEADER_SIZE;
	h->data_size = DATA_SIZE;
	h->slot_size = RT_SLOT_SIZE;
	h->max_record = RT_MAX_RECORD_SIZE;
	h->full_wait_ns = 1000000;
	h->magic = RT_MAGIC;
	munmap(h, RT_HEADER_SIZE);
	if (rt_producer_attach(&prod, fd) != 0) {
		fprintf(stderr, "attach failed\n");
		exit(1);
	}
	close(fd);
}

/* Releases every published record each millisecond, like a bulk drainer. */
static void *drainer(void *arg)
{
	(void)arg;
	struct rt_ring_header *h = prod.hdr;
	uint64_t pos = 0;
	while (!stop) {
		__atomic_store_n(&h->heartbeat_ns, rt_now_ns(), __ATOMIC_RELAXED);
		uint64_t tail = __atomic_load_n(&h->tail, __ATOMIC_ACQUIRE);
		while (pos < tail) {
			struct rt_record *r = (struct rt_record *)(prod.data + ((pos << RT_SLOT_SHIFT) & (prod.data_size - 1)));
			if (__atomic_load_n(&r->stamp, __ATOMIC_ACQUIRE) != rt_stamp(pos))
				break;
			pos += (r->len + RT_SLOT_SIZE - 1) / RT_SLOT_SIZE;
		}
		__atomic_store_n(&h->head, pos, __ATOMIC_RELEASE);
		struct timespec ts = {0, 1000000};
		nanosleep(&ts, NULL);
	}
	return NULL;
}

struct result {
	double ns;
};

static void *producer(void *arg)
{
	struct result *res = arg;
	char path[64];
	memset(path, 'p', sizeof(path));
	memcpy(path, "/var/lib/restrack/bench/", 24);
	struct rt_event ev = {.type = RT_TYPE_EVENT, .access = RT_ACCESS_READ, .op = RT_OP_OPENAT,
			      .pid = getpid(), .tid = 1, .ppid = 1, .result = 3, .str = {path}, .len = {64}};
	uint64_t t0 = rt_now_ns();
	for (long i = 0; i < n_per_thread; i++)
		rt_producer_append(&prod, &ev);
	res->ns = (double)(rt_now_ns() - t0) / (double)n_per_thread;
	return NULL;
}

static double run(int threads)
{
	pthread_t th[2];
	struct result res[2];
	for (int i = 0; i < threads; i++)
		pthread_create(&th[i], NULL, producer, &res[i]);
	double sum = 0;
	for (int i = 0; i < threads; i++) {
		pthread_join(th[i], NULL);
		sum += res[i].ns;
	}
	return sum / threads;
}

int main(int argc, char **argv)
{
	if (argc > 1)
		n_per_thread = atol(argv[1]);
	make_ring();
	__atomic_store_n(&prod.hdr->consumer_pid, (uint64_t)getpid(), __ATOMIC_RELAXED);
	pthread_t d;
	pthread_create(&d, NULL, drainer, NULL);

	uint64_t t0 = rt_now_ns();
	volatile uint64_t sink = 0;
	for (long i = 0; i < n_per_thread; i++)
		sink += rt_now_ns();
	double clock_ns = (double)(rt_now_ns() - t0) / (double)n_per_thread;

	run(1); /* warm-up: page in the ring */
	double one = run(1), two = run(2);
	uint64_t dropped = prod.hdr->dropped_full_records;
	stop = 1;
	pthread_join(d, NULL);
	printf("clock_gettime        1  %6.1f ns\n", clock_ns);
	printf("append_64B_path      1  %6.1f ns\n", one);
	printf("append_64B_path      2  %6.1f ns (each thread, contending)\n", two);
	printf("dropped              -  %llu\n", (unsigned long long)dropped);
	return 0;
}
