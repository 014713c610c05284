/*
 * ring_append.c — ns per append from C, the producer's hot path alone.
 *
 * Producers: 1 thread, 2 threads of one process, or 2 processes, appending
 * records with a 64-byte path (3 slots), timestamp included. Each case runs
 * twice side by side: on a ring of one sub-ring (every producer CASes the
 * same tail, as ABI 1 did) and on per-CPU sub-rings (ABI 2). Consumer: a
 * thread standing in for the collector that wakes every 500 µs and releases
 * everything published in every sub-ring (it does not copy: this measures
 * the producer; the Go benchmarks measure draining).
 * Output: one line per case, the mean and the median of REPS runs of the
 * ns per append of each producer, by the wall clock and by the producer's
 * own CPU time (on a shared machine the second leaves out the time other
 * work held the CPU; cache-line transfers stall the CPU and stay in), then
 * the timestamp's own cost.
 *
 *   ring_append [N_PER_PRODUCER [REPS]]
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ring_producer.h"
#include "../../libcshim/tests/ring_make.h"

#define SUB_BYTES (32u << 20) /* all sub-rings together */
#define MAX_REPS 64

static struct rt_producer prod;
static volatile int stop;
static long n_per_producer = 2000000;
static int reps = 7;

/* Releases every published record each 500 µs, like a bulk drainer. */
static void *drainer(void *arg)
{
	(void)arg;
	struct rt_ring_header *h = prod.hdr;
	uint64_t pos[RT_MAX_SUB] = {0};
	while (!stop) {
		__atomic_store_n(&h->heartbeat_ns, rt_now_ns(), __ATOMIC_RELAXED);
		for (uint32_t s = 0; s <= prod.sub_mask; s++) {
			unsigned char *base = prod.data + s * prod.sub_size;
			uint64_t tail = __atomic_load_n(&prod.sub[s].tail, __ATOMIC_ACQUIRE);
			while (pos[s] < tail) {
				struct rt_record *r = (struct rt_record *)(base + ((pos[s] << RT_SLOT_SHIFT) & (prod.sub_size - 1)));
				if (__atomic_load_n(&r->stamp, __ATOMIC_ACQUIRE) != rt_stamp(pos[s]))
					break;
				pos[s] += (r->len + RT_SLOT_SIZE - 1) / RT_SLOT_SIZE;
			}
			__atomic_store_n(&prod.sub[s].head, pos[s], __ATOMIC_RELEASE);
		}
		struct timespec ts = {0, 500000};
		nanosleep(&ts, NULL);
	}
	return NULL;
}

struct result {
	double wall, cpu;
};

static uint64_t cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Appends n_per_producer records; returns ns per append. */
static struct result produce(void)
{
	char path[64];
	memset(path, 'p', sizeof(path));
	memcpy(path, "/var/lib/restrack/bench/", 24);
	struct rt_event ev = {.type = RT_TYPE_EVENT, .access = RT_ACCESS_READ, .op = RT_OP_OPENAT,
			      .pid = getpid(), .tid = (int32_t)syscall(SYS_gettid), .ppid = 1, .result = 3,
			      .str = {path}, .len = {64}};
	uint64_t t0 = rt_now_ns(), c0 = cpu_ns();
	for (long i = 0; i < n_per_producer; i++)
		rt_producer_append(&prod, &ev);
	return (struct result){(double)(rt_now_ns() - t0) / (double)n_per_producer,
			       (double)(cpu_ns() - c0) / (double)n_per_producer};
}

static void *producer_thread(void *arg)
{
	*(struct result *)arg = produce();
	return NULL;
}

/* One run: the mean over producers of ns per append. */
static struct result run(int producers, int processes)
{
	struct result ns[2] = {{0, 0}, {0, 0}};
	if (processes) {
		struct result *shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		for (int i = 0; i < producers; i++) {
			pid_t pid = fork();
			if (pid == 0) {
				rt_producer_after_fork(&prod);
				shared[i] = produce();
				_exit(0);
			}
		}
		while (wait(NULL) > 0)
			;
		ns[0] = shared[0], ns[1] = shared[1];
		munmap(shared, 4096);
	} else {
		pthread_t th[2];
		for (int i = 0; i < producers; i++)
			pthread_create(&th[i], NULL, producer_thread, &ns[i]);
		for (int i = 0; i < producers; i++)
			pthread_join(th[i], NULL);
	}
	return (struct result){(ns[0].wall + ns[1].wall) / producers, (ns[0].cpu + ns[1].cpu) / producers};
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(v[0]), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void measure(const char *name, uint32_t nsub, int producers, int processes)
{
	int fd = rt_make_ring("/dev/shm", nsub, SUB_BYTES / nsub, RT_MAGIC, RT_ABI_MAJOR);
	if (rt_producer_attach(&prod, fd) != 0) {
		fprintf(stderr, "attach failed\n");
		exit(1);
	}
	close(fd);
	prod.full_wait_ns = 1000000;
	__atomic_store_n(&prod.hdr->consumer_pid, (uint64_t)getpid(), __ATOMIC_RELAXED);
	stop = 0;
	pthread_t d;
	pthread_create(&d, NULL, drainer, NULL);
	run(producers, processes); /* warm-up: page in the ring */
	double wall[MAX_REPS], cpu[MAX_REPS], wsum = 0, csum = 0;
	for (int r = 0; r < reps; r++) {
		struct result x = run(producers, processes);
		wall[r] = x.wall, cpu[r] = x.cpu;
		wsum += x.wall, csum += x.cpu;
	}
	stop = 1;
	pthread_join(d, NULL);
	printf("%-14s %5u  %9.1f %9.1f  %9.1f %9.1f  %llu\n", name, nsub, wsum / reps, median(wall, reps),
	       csum / reps, median(cpu, reps), (unsigned long long)prod.hdr->dropped_full_records);
	rt_producer_detach(&prod);
}

int main(int argc, char **argv)
{
	if (argc > 1)
		n_per_producer = atol(argv[1]);
	if (argc > 2)
		reps = atoi(argv[2]);
	if (reps < 1 || reps > MAX_REPS) {
		fprintf(stderr, "usage: ring_append [N_PER_PRODUCER [REPS <= %d]]\n", MAX_REPS);
		return 2;
	}
	uint32_t ncpu = 1;
	while (ncpu < (uint32_t)sysconf(_SC_NPROCESSORS_ONLN) && ncpu < RT_MAX_SUB)
		ncpu *= 2;
	printf("# ns per append of a 64-byte path; %ld appends per producer, %d runs; sub-rings: 1 = one shared tail (as ABI 1), %u = per CPU\n",
	       n_per_producer, reps, ncpu);
	printf("%-14s %5s  %9s %9s  %9s %9s  %s\n", "case", "nsub", "wall_mean", "wall_med", "cpu_mean", "cpu_med",
	       "dropped");
	static const struct {
		const char *name;
		int producers, processes;
	} cases[] = {{"1_thread", 1, 0}, {"2_threads", 2, 0}, {"2_processes", 2, 1}};
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		measure(cases[c].name, 1, cases[c].producers, cases[c].processes);
		if (ncpu > 1)
			measure(cases[c].name, ncpu, cases[c].producers, cases[c].processes);
	}
	uint64_t t0 = rt_now_ns();
	volatile uint64_t sink = 0;
	for (long i = 0; i < n_per_producer; i++)
		sink += rt_now_ns();
	printf("%-14s %5s  %9.1f\n", "clock_alone", "-", (double)(rt_now_ns() - t0) / (double)n_per_producer);
	return 0;
}
