/* Stand-in for FreeBSD's <dlfcn.h>, for `make shim-freebsd-syntax` only: the
 * declarations restrack's FreeBSD code uses, written from FreeBSD's manual
 * pages; numeric values are placeholders. Not FreeBSD's header. */
#pragma once
#define RTLD_NEXT ((void *)-1)
typedef struct dl_info {
	const char *dli_fname;
	void *dli_fbase;
	const char *dli_sname;
	void *dli_saddr;
} Dl_info;
void *dlsym(void *, const char *);
int dladdr(const void *, Dl_info *);
