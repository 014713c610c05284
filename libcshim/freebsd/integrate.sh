#!/bin/sh
# integrate.sh — build FreeBSD's libc.so.7 with restrack's hook compiled in,
# from a FreeBSD source tree, and install it under a prefix of its own (the
# system libc is never touched). docs/freebsd.md walks through it.
#
# Steps (each stops with a message saying what differed and what to do):
#   check    the tree is the layout the hook was written against: libc's
#            open, openat and fork are weak and call the __libc_interposing
#            slot, _open/_openat are weak aliases of system call stubs,
#            libc_private.h declares what the hook uses;
#            The namespace hooks (rename, unlink, mkdir… NS_HOOKED below) are
#            built only if each of those system calls is a generated stub
#            (listed in sys/sys/syscall.mk, no C or MD wrapper), whose NAME is
#            a weak alias; otherwise they are left out, with a note;
#   insert   one marked block in lib/libc/Makefile that includes
#            libcshim/freebsd/libc.mk (replaced if already there; -u removes it);
#   build    make obj all in lib/libc;
#   verify   nm: open, openat, _open, _openat and fork of the linked libc are
#            the hook's (same address as its hidden __restrack_* aliases),
#            and exported;
#   install  PREFIX/libc.so.7, then remove the block again, so that a later
#            buildworld or `make install` in lib/libc builds the system's own
#            libc, not this one.
#
# Usage: integrate.sh [-s SRCDIR] [-p PREFIX] [-m MACHINE_ARCH] [-j N] [-c | -i | -u | -v LIB]
#   -s SRCDIR  FreeBSD source tree (default /usr/src), matching the running system
#   -p PREFIX  where libc.so.7 is installed (default /usr/local/lib/restrack)
#   -m ARCH    MACHINE_ARCH (default: uname -p)
#   -j N       parallel make jobs (default 4)
#   -c         check the tree only
#   -i         check and insert the block, do not build
#   -u         remove the block from lib/libc/Makefile and exit
#   -v LIB     verify an already built libc (libc.so.7.full or an unstripped libc.so.7) and exit
set -eu

SRC=/usr/src
PREFIX=/usr/local/lib/restrack
ARCH=
JOBS=4
ACTION=all
VERIFY_LIB=
NM=${NM:-nm}
MAKE=${MAKE:-make}

HERE=$(cd "$(dirname "$0")" && pwd)
SHIM=$(cd "$HERE/.." && pwd)
BEGIN_MARK='# restrack: begin (libcshim/freebsd/integrate.sh; remove with integrate.sh -u)'
END_MARK='# restrack: end'
HOOKED='open openat _open _openat fork'
NS_HOOKED='rename renameat link linkat symlink symlinkat unlink unlinkat rmdir mkdir mkdirat'
RESTRACK_CFLAGS=

die() {
	echo "integrate.sh: $*" >&2
	exit 1
}

usage() {
	sed -n '/^# Usage:/,/^set -eu/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
	exit 2
}

while getopts s:p:m:j:ciuv:h opt; do
	case $opt in
	s) SRC=$OPTARG ;;
	p) PREFIX=$OPTARG ;;
	m) ARCH=$OPTARG ;;
	j) JOBS=$OPTARG ;;
	c) ACTION=check ;;
	i) ACTION=insert ;;
	u) ACTION=remove ;;
	v) ACTION=verify VERIFY_LIB=$OPTARG ;;
	*) usage ;;
	esac
done
shift $((OPTIND - 1))
[ $# -eq 0 ] || usage
[ -n "$ARCH" ] || ARCH=$(uname -p)

LIBC=$SRC/lib/libc
MK=$LIBC/Makefile

# need FILE PATTERN WHY: FILE must contain a line matching the extended
# regular expression PATTERN, else the tree is not the one the hook was
# written for.
need() {
	[ -f "$1" ] || die "$1 is missing: $SRC is not a FreeBSD source tree with the expected libc (-s SRCDIR)"
	grep -Eq -e "$2" "$1" || die "$1 has no line matching '$2' ($3): this tree's libc differs from the layout the hook was written against (FreeBSD 12-14, docs/freebsd.md); stopping without changing anything"
}

check_tree() {
	[ -d "$LIBC" ] || die "$LIBC does not exist: pass the FreeBSD source tree with -s (e.g. -s /usr/src)"
	[ -f "$SHIM/shim_core.c" ] && [ -f "$HERE/libc.mk" ] && [ -f "$HERE/rt_hooks_freebsd.c" ] ||
		die "the restrack sources next to this script are incomplete ($SHIM)"
	if [ -d "$SRC/lib/libsys" ]; then
		die "$SRC/lib/libsys exists: this is FreeBSD 15 or later, where the system call stubs moved to libsys.so.7; the hook is not adapted to that layout yet (docs/freebsd.md, Limits); stopping without changing anything"
	fi
	need "$MK" '^\.include <bsd\.lib\.mk>' "the point where the hook's sources are added"
	n=$(grep -c '^\.include <bsd\.lib\.mk>' "$MK")
	[ "$n" -eq 1 ] || die "$MK includes bsd.lib.mk $n times; expected once"
	need "$LIBC/sys/open.c" '^#pragma weak open$' "libc's open must be weak for the hook's to replace it"
	need "$LIBC/sys/open.c" 'INTERPOS.*openat' "open goes through the interposing slot of openat"
	need "$LIBC/sys/openat.c" '^#pragma weak openat$' "libc's openat must be weak"
	need "$LIBC/sys/openat.c" 'INTERPOS.*openat' "openat goes through the interposing slot"
	need "$LIBC/sys/fork.c" '^#pragma weak fork$' "libc's fork must be weak"
	need "$LIBC/sys/fork.c" 'INTERPOS.*fork' "fork goes through the interposing slot"
	need "$LIBC/include/libc_private.h" '__libc_interposing\[' "the slot table the hook calls through"
	need "$LIBC/include/libc_private.h" 'INTERPOS_openat' "the openat slot"
	need "$LIBC/include/libc_private.h" 'INTERPOS_fork' "the fork slot"
	need "$LIBC/include/libc_private.h" '__sys_openat\(' "the plain system call behind _open/_openat"
	need "$LIBC/include/libc_private.h" 'INTERPOS_nanosleep' "nanosleep is interposed, so _nanosleep is the plain call the ring's wait uses"
	need "$LIBC/$ARCH/SYS.h" '\.weak|WEAK_REFERENCE' "system call stubs define _NAME as a weak alias (-m ARCH if $ARCH is wrong)"
	if why=$(ns_unsupported); then
		RESTRACK_CFLAGS=-DRT_NO_NS_HOOKS
		echo "integrate.sh: note: the namespace hooks ($NS_HOOKED) are left out: $why; open, openat and fork are still hooked"
	fi
}

# ns_unsupported prints why the namespace hooks cannot replace this tree's
# wrappers (and succeeds), or fails when every one is a generated stub.
ns_unsupported() {
	mk=$SRC/sys/sys/syscall.mk
	[ -f "$mk" ] || { echo "$mk is missing"; return 0; }
	for x in $NS_HOOKED; do
		grep -Eq "(^|[[:space:]])$x\.o([[:space:]]|\\\\|\$)" "$mk" || { echo "$x.o is not in $mk"; return 0; }
		for f in "$LIBC/sys/$x.c" "$LIBC/$ARCH/sys/$x.S" "$LIBC/$ARCH/sys/$x.c"; do
			[ ! -e "$f" ] || { echo "$f wraps $x"; return 0; }
		done
		for f in "$LIBC/sys/Makefile.inc" "$LIBC/$ARCH/sys/Makefile.inc"; do
			[ ! -f "$f" ] || ! grep -Eq "(^|[^[:alnum:]_])$x\.o" "$f" || { echo "$f names $x.o (NOASM or a wrapper)"; return 0; }
		done
	done
	return 1
}

# The Makefile without our block (whether or not it had one).
strip_block() {
	awk -v b="$BEGIN_MARK" -v e="$END_MARK" '
		$0 == b { skip = 1; next }
		skip && $0 == e { skip = 0; next }
		!skip { print }
	' "$1"
}

insert_block() {
	tmp=$MK.restrack-tmp
	strip_block "$MK" | awk -v b="$BEGIN_MARK" -v e="$END_MARK" -v shim="$SHIM" -v mk="$HERE/libc.mk" -v cflags="$RESTRACK_CFLAGS" '
		/^\.include <bsd\.lib\.mk>/ && !done {
			print b
			print "RESTRACK_SHIM=\t" shim
			if (cflags != "") print "RESTRACK_CFLAGS=\t" cflags
			print ".include \"" mk "\""
			print e
			done = 1
		}
		{ print }
	' >"$tmp"
	[ -f "$MK.restrack-orig" ] || strip_block "$MK" >"$MK.restrack-orig"
	mv "$tmp" "$MK"
	echo "integrate.sh: $MK now includes $HERE/libc.mk (original kept as $MK.restrack-orig)"
}

remove_block() {
	[ -f "$MK" ] || die "$MK does not exist (-s SRCDIR)"
	if ! grep -qxF "$BEGIN_MARK" "$MK"; then
		echo "integrate.sh: $MK has no restrack block; nothing to remove"
		return 0
	fi
	tmp=$MK.restrack-tmp
	strip_block "$MK" >"$tmp"
	mv "$tmp" "$MK"
	rm -f "$MK.restrack-orig"
	echo "integrate.sh: removed the restrack block from $MK"
}

# addr_of LIB NAME: the addresses nm shows for NAME and NAME@@VERSION (the
# definition binaries link against), one a line. NAME@VERSION, a compat
# version kept for old binaries (openat@FBSD_1.1), is not among them.
addr_of() {
	"$NM" "$1" | awk -v n="$2" 'NF == 3 && $2 != "U" && $2 != "w" {
		s = $3
		if (s ~ /@@/) sub(/@@.*/, "", s)
		else if (s ~ /@/) next
		if (s == n) print $1
	}' | sort -u
}

# compat_of LIB NAME: NAME@VERSION entries (compat versions), "ADDR NAME@VERSION".
compat_of() {
	"$NM" "$1" | awk -v n="$2" 'NF == 3 && $2 != "U" && $3 !~ /@@/ && index($3, n "@") == 1 { print $1, $3 }' | sort -u
}

verify_lib() {
	lib=$1
	[ -f "$lib" ] || die "$lib does not exist"
	"$NM" "$lib" >/dev/null 2>&1 || die "$NM cannot read $lib"
	"$NM" "$lib" 2>/dev/null | grep -q ' __restrack_open$' ||
		die "$lib has no __restrack_open symbol: either the hook was not linked in or the library is stripped (verify libc.so.7.full, or build with WITH_DEBUG_FILES / STRIP=)"
	hooked=$HOOKED
	if "$NM" "$lib" 2>/dev/null | grep -q ' __restrack_rename$'; then
		hooked="$HOOKED $NS_HOOKED"
	fi
	for s in $hooked; do
		want=$(addr_of "$lib" "__restrack_$s")
		got=$(addr_of "$lib" "$s")
		[ -n "$want" ] || die "$lib: __restrack_$s is missing"
		[ -n "$got" ] || die "$lib: $s is not defined"
		for a in $got; do
			[ "$a" = "$want" ] || die "$lib: $s at $a is not the hook (at $want): libc's weak definition won or the tree differs; do not install this libc"
		done
		compat_of "$lib" "$s" | while read -r a v; do
			[ "$a" = "$want" ] || echo "integrate.sh: note: $v (a compat version for old binaries) is libc's own, not hooked"
		done
	done
	for s in open openat fork; do
		"$NM" -D "$lib" | awk -v n="$s" '{ x = $NF; sub(/@.*/, "", x); if (x == n && $(NF-1) ~ /^[TW]$/) f = 1 } END { exit !f }' ||
			die "$lib does not export $s"
	done
	echo "integrate.sh: $lib: $hooked are restrack's hook"
}

case $ACTION in
remove)
	remove_block
	exit 0
	;;
verify)
	verify_lib "$VERIFY_LIB"
	exit 0
	;;
esac

check_tree
echo "integrate.sh: $SRC has the expected libc layout"
[ "$ACTION" = check ] && exit 0

insert_block
[ "$ACTION" = insert ] && exit 0

# From here a failure leaves the block in, for a look at the build; say so.
trap 'st=$?; [ $st -eq 0 ] || echo "integrate.sh: the restrack block is still in $MK (integrate.sh -u removes it)" >&2' EXIT
"$MAKE" -C "$LIBC" obj || die "make obj in $LIBC failed"
"$MAKE" -C "$LIBC" -j "$JOBS" all || die "building libc failed"
OBJ=$("$MAKE" -C "$LIBC" -V .OBJDIR)
LIB=$OBJ/libc.so.7
if [ -f "$OBJ/libc.so.7.full" ]; then
	verify_lib "$OBJ/libc.so.7.full"
else
	verify_lib "$LIB"
fi
install -d "$PREFIX"
install -m 444 "$LIB" "$PREFIX/libc.so.7"
remove_block
# The objdir's libraries contain the hook and are newer than every object: a
# later make in lib/libc would take them as up to date (and `make install`
# would install them as the system libc). Remove them so it relinks.
rm -f "$OBJ/libc.so.7" "$OBJ/libc.so.7.full" "$OBJ/libc.so.7.debug" "$OBJ/libc.a" "$OBJ/libc_pic.a"
trap - EXIT
cat <<EOF
integrate.sh: installed $PREFIX/libc.so.7
  one command:  env LD_LIBRARY_PATH=$PREFIX RESTRACK_RING=/path/to/ring CMD
  a service:    in /etc/libmap.conf,
                  [/path/to/the/service/binary]
                  libc.so.7 $PREFIX/libc.so.7
                and RESTRACK_RING in its environment (docs/freebsd.md)
EOF
