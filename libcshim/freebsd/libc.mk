# restrack's addition to FreeBSD's lib/libc/Makefile.
#
# integrate.sh inserts an .include of this file just before the Makefile's
# `.include <bsd.lib.mk>`, with RESTRACK_SHIM set to the libcshim directory.
# It adds the hook's sources to libc's own SRCS: their strong definitions of
# open, openat, _open, _openat, fork and the namespace calls (rename,
# unlink, mkdir…) replace libc's weak ones when
# libc.so.7 is linked (docs/freebsd.md explains the choice). No libc source
# file is changed or replaced.

.if !defined(RESTRACK_SHIM) || !exists(${RESTRACK_SHIM}/shim_core.c)
.error restrack: RESTRACK_SHIM must name the libcshim directory (run libcshim/freebsd/integrate.sh)
.endif

.PATH: ${RESTRACK_SHIM} ${RESTRACK_SHIM}/freebsd

# Object names follow the basenames: none of these exists in libc.
RESTRACK_SRCS=	ring_producer.c shim_core.c rt_hooks_freebsd.c
SRCS+=		${RESTRACK_SRCS}

# bsd.sys.mk adds CFLAGS.<source file> to that file's compile only, so the
# rest of libc is built exactly as before.
.for _f in ${RESTRACK_SRCS}
CFLAGS.${_f}+=	-DRT_LIBC_BUILD -std=gnu11 -I${RESTRACK_SHIM}
.endfor

# integrate.sh sets RESTRACK_CFLAGS=-DRT_NO_NS_HOOKS when this tree's rename,
# unlink, mkdir… are not the generated weak stubs the namespace hooks replace.
.if defined(RESTRACK_CFLAGS) && !empty(RESTRACK_CFLAGS)
.for _f in ${RESTRACK_SRCS}
CFLAGS.${_f}+=	${RESTRACK_CFLAGS}
.endfor
.endif

# The producer's bounded wait on a full ring must not become a cancellation
# point inside fopen or open: in libc, nanosleep goes through libthr's slot,
# _nanosleep is the plain system call (libc's own code gets the same
# renaming from namespace.h).
CFLAGS.ring_producer.c+=	-Dnanosleep=_nanosleep
