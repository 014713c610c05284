/*
 * ring_make.h — builds a ring file the way ring.Create (ring/mmap.go) does,
 * for the C tests and the C benchmark, which run without the collector.
 * Test code: it exits on failure.
 */
#ifndef RESTRACK_RING_MAKE_H
#define RESTRACK_RING_MAKE_H

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ring_abi.h"

/* A ring of nsub sub-rings of sub_size bytes each in dir (unlinked: only
 * the returned fd names it), with the given magic and major version. */
static inline int rt_make_ring(const char *dir, uint32_t nsub, uint64_t sub_size, uint64_t magic, uint16_t major)
{
	char path[256];
	uint64_t ctl, cut, data;
	snprintf(path, sizeof(path), "%s/restrack-ring-XXXXXX", dir);
	int fd = mkstemp(path);
	rt_layout(nsub, &ctl, &cut, &data);
	uint64_t size = data + (uint64_t)nsub * sub_size;
	if (fd < 0 || unlink(path) != 0 || posix_fallocate(fd, 0, (off_t)size) != 0) {
		perror("rt_make_ring");
		exit(2);
	}
	struct rt_ring_header *h = mmap(NULL, RT_HEADER_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (h == MAP_FAILED) {
		perror("rt_make_ring: mmap");
		exit(2);
	}
	h->abi_major = major;
	h->abi_minor = RT_ABI_MINOR;
	h->header_size = RT_HEADER_SIZE;
	h->data_size = (uint64_t)nsub * sub_size;
	h->slot_size = RT_SLOT_SIZE;
	h->max_record = RT_MAX_RECORD_SIZE;
	h->full_wait_ns = 1000;
	h->nsub = nsub;
	h->owner_uid = (uint32_t)getuid();
	h->sub_size = sub_size;
	h->ctl_offset = ctl;
	h->cut_offset = cut;
	h->data_offset = data;
	h->file_size = size;
	h->ncuts = RT_NCUTS;
	h->cut_size = rt_cut_size(nsub);
	__atomic_store_n(&h->magic, magic, __ATOMIC_RELEASE);
	munmap(h, RT_HEADER_SIZE);
	return fd;
}

#endif /* RESTRACK_RING_MAKE_H */
