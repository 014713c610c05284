/* Stand-in for FreeBSD's <pthread.h>, for `make shim-freebsd-syntax` only: the
 * declarations restrack's FreeBSD code uses, written from FreeBSD's manual
 * pages; numeric values are placeholders. Not FreeBSD's header. */
#pragma once
int pthread_atfork(void (*)(void), void (*)(void), void (*)(void));
