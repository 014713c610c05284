/* Stand-in for FreeBSD's <sys/user.h>, for `make shim-freebsd-syntax` only: the
 * declarations restrack's FreeBSD code uses, written from FreeBSD's manual
 * pages; numeric values are placeholders. Not FreeBSD's header. */
#pragma once
#include <sys/types.h>
#include <sys/time.h>
#include <limits.h>
struct kinfo_proc {
	int ki_structsize;
	pid_t ki_pid;
	pid_t ki_ppid;
	struct timeval ki_start;
	char ki_spare[900];
};
struct kinfo_file {
	int kf_structsize;
	int kf_type;
	int kf_fd;
	char kf_path[PATH_MAX];
};
