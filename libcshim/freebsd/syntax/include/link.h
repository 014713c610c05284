/* Stand-in for FreeBSD's <link.h>, for `make shim-freebsd-syntax` only: the
 * declarations restrack's FreeBSD code uses, written from FreeBSD's manual
 * pages; numeric values are placeholders. Not FreeBSD's header. */
#pragma once
#include <stddef.h>
#include <stdint.h>
struct dl_phdr_info {
	uintptr_t dlpi_addr;
	const char *dlpi_name;
	const void *dlpi_phdr;
	uint16_t dlpi_phnum;
};
int dl_iterate_phdr(int (*)(struct dl_phdr_info *, size_t, void *), void *);
