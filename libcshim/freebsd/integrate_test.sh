#!/bin/sh
# integrate_test.sh — what of integrate.sh can be tested without FreeBSD:
# its checks of the source tree (against a fake tree that has only the lines
# the script looks for, written here, not FreeBSD's files), the block it puts
# into lib/libc/Makefile and takes out again, its refusal of trees that
# differ, and the nm verification of a linked library (ELF objects built here
# with cc that stand in for libc.so.7). Building libc itself needs FreeBSD.
#
# Usage: integrate_test.sh   (make test-freebsd runs it; exits non-zero on failure)
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
SCRIPT=$HERE/integrate.sh
CC=${CC:-cc}
T=$(mktemp -d "${TMPDIR:-/tmp}/restrack-integrate.XXXXXX")
trap 'rm -rf "$T"' EXIT INT TERM
FAILS=0
N=0

ok() { N=$((N + 1)); echo "ok   $N $1"; }
fail() { N=$((N + 1)); FAILS=$((FAILS + 1)); echo "FAIL $N $1" >&2; }

# run NAME WANT_STATUS WANT_OUTPUT_PATTERN ARGS…: runs integrate.sh, checks
# its exit status and that its output matches the pattern (grep -E).
run() {
	name=$1 want=$2 pat=$3
	shift 3
	set +e
	out=$(sh "$SCRIPT" "$@" 2>&1)
	st=$?
	set -e
	if [ "$st" -ne "$want" ]; then
		fail "$name: exit $st, want $want; output: $out"
	elif ! printf '%s\n' "$out" | grep -Eq -- "$pat"; then
		fail "$name: output does not match /$pat/: $out"
	else
		ok "$name"
	fi
}

# A fake source tree with just the lines integrate.sh checks.
mktree() {
	d=$1
	mkdir -p "$d/lib/libc/sys" "$d/lib/libc/include" "$d/lib/libc/amd64"
	cat >"$d/lib/libc/Makefile" <<'EOF'
LIB=c
SRCS+= a.c
.include <bsd.lib.mk>

CWARNFLAGS:= whatever
EOF
	printf '#pragma weak open\nint open(const char *p, int f, ...) { return __libc_interposing[INTERPOS_openat](); }\n' >"$d/lib/libc/sys/open.c"
	printf '#pragma weak openat\nint openat(int d, const char *p, int f, ...) { return INTERPOS_SYS(openat, d, p, f, 0); }\n' >"$d/lib/libc/sys/openat.c"
	printf '#pragma weak fork\npid_t fork(void) { return __libc_interposing[INTERPOS_fork](); }\n' >"$d/lib/libc/sys/fork.c"
	printf 'extern interpos_func_t __libc_interposing[INTERPOS_MAX];\nenum { INTERPOS_fork, INTERPOS_nanosleep, INTERPOS_openat };\nint __sys_openat(int, const char *, int, ...);\n' >"$d/lib/libc/include/libc_private.h"
	printf '#define PSEUDO(x) ENTRY(__sys_x); .weak _x; .set _x,__sys_x\n' >"$d/lib/libc/amd64/SYS.h"
	mkdir -p "$d/lib/libc/aarch64" "$d/sys/sys"
	printf 'MIASM =  \\\n\tsyscall.o \\\n' >"$d/sys/sys/syscall.mk"
	for x in rename renameat link linkat symlink symlinkat unlink unlinkat rmdir mkdir mkdirat; do
		printf '\t%s.o \\\n' "$x" >>"$d/sys/sys/syscall.mk"
	done
	printf '\tlast.o\n' >>"$d/sys/sys/syscall.mk"
	printf '#define PSEUDO(x) ENTRY(__sys_x); WEAK_REFERENCE(__sys_x, _x);\n' >"$d/lib/libc/aarch64/SYS.h"
}

# --- the tree checks ---
mktree "$T/good"
run "a tree with the expected layout passes the check" 0 'has the expected libc layout' -c -s "$T/good" -m amd64
set +e
out=$(sh "$SCRIPT" -c -s "$T/good" -m amd64 2>&1)
set -e
case $out in *"left out"*) fail "a tree whose namespace calls are generated stubs got a note: $out" ;; *) ok "generated namespace stubs: no note, the namespace hooks are built" ;; esac

mktree "$T/wrapped"
printf 'int unlink(const char *p) { return unlinkat(AT_FDCWD, p, 0); }\n' >"$T/wrapped/lib/libc/sys/unlink.c"
run "a C wrapper for unlink leaves the namespace hooks out, with the reason" 0 'namespace hooks .* are left out: .*lib/libc/sys/unlink.c wraps unlink' -i -s "$T/wrapped" -m amd64
if grep -qx 'RESTRACK_CFLAGS=	-DRT_NO_NS_HOOKS' "$T/wrapped/lib/libc/Makefile"; then ok "the block then builds with -DRT_NO_NS_HOOKS"; else fail "block: $(cat "$T/wrapped/lib/libc/Makefile")"; fi
mktree "$T/nomi"
sed -i.bak '/rmdir.o/d' "$T/nomi/sys/sys/syscall.mk"
run "a namespace call missing from syscall.mk leaves the hooks out" 0 'left out: rmdir.o is not in' -c -s "$T/nomi" -m amd64
cp "$T/good/lib/libc/Makefile" "$T/orig.mk"
run "the check changes nothing" 0 '' -c -s "$T/good" -m amd64
if cmp -s "$T/orig.mk" "$T/good/lib/libc/Makefile"; then ok "the Makefile is untouched after -c"; else fail "-c changed the Makefile"; fi

run "a missing tree is refused with the flag to use" 1 'pass the FreeBSD source tree with -s' -c -s "$T/nothing" -m amd64

mktree "$T/strong"
printf 'int open(const char *p, int f, ...) { return __libc_interposing[INTERPOS_openat](); }\n' >"$T/strong/lib/libc/sys/open.c"
run "a libc whose open is not weak is refused" 1 "open.c has no line matching '\^#pragma weak open\\$'" -c -s "$T/strong" -m amd64
run "a refused tree is not changed" 1 'stopping without changing anything' -s "$T/strong" -m amd64
if grep -q restrack "$T/strong/lib/libc/Makefile"; then fail "a refused tree got the block"; else ok "a refused tree has no block"; fi

mktree "$T/noslot"
printf '#pragma weak fork\npid_t fork(void) { return __sys_fork(); }\n' >"$T/noslot/lib/libc/sys/fork.c"
run "a fork that bypasses the interposing slot is refused" 1 'fork.c has no line matching .INTERPOS\.\*fork.' -c -s "$T/noslot" -m amd64

mktree "$T/libsys"
mkdir -p "$T/libsys/lib/libsys"
run "a FreeBSD 15 tree (libsys) is refused with the reason" 1 'libsys exists: this is FreeBSD 15' -c -s "$T/libsys" -m amd64

mktree "$T/twice"
printf '.include <bsd.lib.mk>\n' >>"$T/twice/lib/libc/Makefile"
run "a Makefile that includes bsd.lib.mk twice is refused" 1 'includes bsd.lib.mk 2 times' -c -s "$T/twice" -m amd64

run "aarch64's SYS.h (WEAK_REFERENCE) passes too" 0 'has the expected libc layout' -c -s "$T/good" -m aarch64
run "a wrong MACHINE_ARCH names the flag" 1 'SYS.h is missing|-m ARCH' -c -s "$T/good" -m riscv64

# --- inserting and removing the block ---
run "-i inserts the block" 0 'now includes .*/libcshim/freebsd/libc.mk' -i -s "$T/good" -m amd64
mk=$T/good/lib/libc/Makefile
if awk '/^# restrack: begin/ { b = NR } /^\.include <bsd\.lib\.mk>/ { i = NR } END { exit !(b && i == b + 4) }' "$mk"; then
	ok "the block sits just before .include <bsd.lib.mk>"
else
	fail "block placement: $(cat "$mk")"
fi
if grep -qx "RESTRACK_SHIM=	$(cd "$HERE/.." && pwd)" "$mk" && grep -qx ".include \"$HERE/libc.mk\"" "$mk"; then
	ok "the block names the libcshim directory and libc.mk by absolute path"
else
	fail "block content: $(cat "$mk")"
fi
# BSD make reads the integrated Makefile: our sources join libc's SRCS with
# their own CFLAGS, libc's files keep theirs. sys.mk and bsd.lib.mk are
# empty stand-ins (FreeBSD's bsd.sys.mk is what applies CFLAGS.<file>).
BMAKE=${BMAKE:-bmake}
if command -v "$BMAKE" >/dev/null 2>&1; then
	mkdir -p "$T/mk"
	: >"$T/mk/sys.mk"
	: >"$T/mk/bsd.lib.mk"
	v() { "$BMAKE" -m "$T/mk" -C "$T/good/lib/libc" -V "$1" 2>&1; }
	if [ "$(v '${SRCS}')" = "a.c ring_producer.c shim_core.c rt_hooks_freebsd.c" ]; then
		ok "bmake: the hook's sources are added to libc's SRCS"
	else
		fail "bmake: SRCS is '$(v '${SRCS}')'"
	fi
	shimdir=$(cd "$HERE/.." && pwd)
	vw() { "$BMAKE" -m "$T/mk" -C "$T/wrapped/lib/libc" -V "$1" 2>&1; }
	if [ "$(vw '${CFLAGS.rt_hooks_freebsd.c}')" = "-DRT_LIBC_BUILD -std=gnu11 -I$shimdir -DRT_NO_NS_HOOKS" ]; then
		ok "bmake: RESTRACK_CFLAGS reaches the hook's files"
	else
		fail "bmake: wrapped tree CFLAGS.rt_hooks_freebsd.c='$(vw '${CFLAGS.rt_hooks_freebsd.c}')'"
	fi
	if [ "$(v '${CFLAGS.shim_core.c}')" = "-DRT_LIBC_BUILD -std=gnu11 -I$shimdir" ] &&
		[ "$(v '${CFLAGS.rt_hooks_freebsd.c}')" = "-DRT_LIBC_BUILD -std=gnu11 -I$shimdir" ] &&
		[ "$(v '${CFLAGS.ring_producer.c}')" = "-DRT_LIBC_BUILD -std=gnu11 -I$shimdir -Dnanosleep=_nanosleep" ] &&
		[ -z "$(v '${CFLAGS.a.c}')" ]; then
		ok "bmake: only the hook's files get -DRT_LIBC_BUILD"
	else
		fail "bmake: CFLAGS.shim_core.c='$(v '${CFLAGS.shim_core.c}')' CFLAGS.a.c='$(v '${CFLAGS.a.c}')'"
	fi
	if v '${.PATH}' | grep -q "$shimdir/freebsd"; then ok "bmake: .PATH reaches libcshim/freebsd"; else fail "bmake: .PATH is $(v '${.PATH}')"; fi
	printf '.include "%s"\n' "$HERE/libc.mk" >"$T/nodef.mk"
	if out=$("$BMAKE" -m "$T/mk" -f "$T/nodef.mk" -V '${SRCS}' 2>&1); then
		fail "bmake: libc.mk without RESTRACK_SHIM was accepted: $out"
	elif printf '%s' "$out" | grep -q 'RESTRACK_SHIM must name the libcshim directory'; then
		ok "bmake: libc.mk without RESTRACK_SHIM stops with a message"
	else
		fail "bmake: libc.mk without RESTRACK_SHIM: $out"
	fi
	pre=$("$BMAKE" -n -m "$T/mk" -C "$HERE" CC=cc 2>&1)
	case $pre in
	*"-o librestrack.so $shimdir/ring_producer.c $shimdir/shim_core.c $shimdir/freebsd/rt_hooks_freebsd.c"*)
		ok "bmake: the preload Makefile compiles the three sources by absolute path" ;;
	*) fail "bmake -n of the preload Makefile: $pre" ;;
	esac
else
	echo "skip the BSD make checks: $BMAKE is not installed (apt-get install bmake)"
fi

run "-i again is idempotent" 0 'now includes' -i -s "$T/good" -m amd64
if [ "$(grep -c '^# restrack: begin' "$mk")" -eq 1 ]; then ok "one block after two runs"; else fail "blocks: $(grep -c '^# restrack: begin' "$mk")"; fi
if cmp -s "$T/orig.mk" "$mk.restrack-orig"; then ok "the original Makefile is kept beside it"; else fail "the .restrack-orig copy differs from the original"; fi
run "-u removes the block" 0 'removed the restrack block' -u -s "$T/good"
if cmp -s "$T/orig.mk" "$mk"; then ok "after -u the Makefile is byte for byte the original"; else fail "after -u: $(diff "$T/orig.mk" "$mk")"; fi
run "-u on a clean tree says there is nothing to do" 0 'nothing to remove' -u -s "$T/good"

# --- make fragment: the includes it needs exist where it says ---
if grep -q '^RESTRACK_SRCS=.*ring_producer.c.*shim_core.c.*rt_hooks_freebsd.c' "$HERE/libc.mk" &&
	[ -f "$HERE/../ring_producer.c" ] && [ -f "$HERE/../shim_core.c" ] && [ -f "$HERE/rt_hooks_freebsd.c" ]; then
	ok "every source libc.mk adds exists"
else
	fail "libc.mk names a source that does not exist"
fi

# --- nm verification on real ELF objects ---
cat >"$T/hook.c" <<'EOF'
#define ALIAS(f) extern __typeof__(f) __restrack_##f __attribute__((alias(#f), visibility("hidden")));
int open(const char *p, int f, ...) { (void)p; return f + 1; }
int openat(int d, const char *p, int f, ...) { (void)p; return d + f + 2; }
int _open(const char *p, int f, ...) { (void)p; return f + 3; }
int _openat(int d, const char *p, int f, ...) { (void)p; return d + f + 4; }
#ifdef LIBC_WINS
/* fork as libc's own would be: the hidden alias points at the hook, the exported fork elsewhere */
static int hook_fork(void) { return 5; }
extern __typeof__(hook_fork) __restrack_fork __attribute__((alias("hook_fork"), visibility("hidden")));
int fork(void) { return 6; }
#else
int fork(void) { return 5; }
ALIAS(fork)
#endif
#ifdef COMPAT
/* like libc's openat@FBSD_1.1: an old version that stays libc's own */
int old_openat(int d, const char *p, int f, ...) { (void)p; return d + f + 9; }
__asm__(".symver old_openat, openat@FBSD_1.1");
#endif
ALIAS(open) ALIAS(openat) ALIAS(_open) ALIAS(_openat)
#ifdef NS
int rename(const char *o, const char *n) { (void)o; (void)n; return 10; }
ALIAS(rename)
#ifdef NS_LIBC_WINS
static int hook_unlink(const char *p) { (void)p; return 11; }
extern __typeof__(hook_unlink) __restrack_unlink __attribute__((alias("hook_unlink"), visibility("hidden")));
int unlink(const char *p) { (void)p; return 12; }
#else
int unlink(const char *p) { (void)p; return 11; }
ALIAS(unlink)
#endif
#define NSFN(f) int f(void) { return 13; } ALIAS(f)
NSFN(renameat) NSFN(link) NSFN(linkat) NSFN(symlink) NSFN(symlinkat) NSFN(unlinkat) NSFN(rmdir) NSFN(mkdir) NSFN(mkdirat)
#endif
EOF
if "$CC" -shared -fPIC -o "$T/libhooked.so" "$T/hook.c" 2>"$T/cc.err" &&
	"$CC" -shared -fPIC -DLIBC_WINS -o "$T/libwon.so" "$T/hook.c" 2>>"$T/cc.err" &&
	"$CC" -shared -fPIC -DNS -o "$T/libns.so" "$T/hook.c" 2>>"$T/cc.err" &&
	"$CC" -shared -fPIC -DNS -DNS_LIBC_WINS -o "$T/libnswon.so" "$T/hook.c" 2>>"$T/cc.err" &&
	printf 'FBSD_1.0 { global: open; fork; _open; _openat; local: *; };\nFBSD_1.1 { };\nFBSD_1.2 { global: openat; } FBSD_1.1;\n' >"$T/v.map" &&
	"$CC" -shared -fPIC -DCOMPAT -Wl,--version-script="$T/v.map" -o "$T/libcompat.so" "$T/hook.c" 2>>"$T/cc.err"; then
	for nm in nm llvm-nm; do
		command -v "$nm" >/dev/null 2>&1 || { echo "skip nm checks with $nm: not installed"; continue; }
		NM=$nm run "$nm: a library whose symbols are the hook's passes -v" 0 'are restrack.s hook' -v "$T/libhooked.so"
		NM=$nm run "$nm: a library where libc's fork won is refused" 1 'fork at .* is not the hook' -v "$T/libwon.so"
		NM=$nm run "$nm: a compat openat@FBSD_1.1 of libc's own passes, with a note" 0 'note: openat@FBSD_1.1 .* not hooked' -v "$T/libcompat.so"
		NM=$nm run "$nm: with the namespace hooks in, they are checked too" 0 'fork rename renameat .* mkdirat are restrack.s hook' -v "$T/libns.so"
		NM=$nm run "$nm: a namespace call where libc's won is refused" 1 'unlink at .* is not the hook' -v "$T/libnswon.so"
	done
	# The whole run with a stand-in make whose "build" produces one of the
	# libraries above: verified, installed, and the tree left as found; or
	# refused and nothing installed.
	printf '%s\n' '#!/bin/sh' 'case "$*" in' '*-V*) echo "$FAKE_OBJ" ;;' \
		'*all*) mkdir -p "$FAKE_OBJ" && cp "$FAKE_LIB" "$FAKE_OBJ/libc.so.7.full" && cp "$FAKE_LIB" "$FAKE_OBJ/libc.so.7" ;;' \
		'esac' >"$T/fakemake"
	chmod +x "$T/fakemake"
	mktree "$T/full"
	cp "$T/full/lib/libc/Makefile" "$T/full.orig"
	MAKE=$T/fakemake FAKE_OBJ=$T/obj1 FAKE_LIB=$T/libhooked.so run "a full run builds, verifies and installs" 0 "installed $T/prefix1/libc.so.7" -s "$T/full" -m amd64 -p "$T/prefix1"
	if [ -f "$T/prefix1/libc.so.7" ] && cmp -s "$T/full.orig" "$T/full/lib/libc/Makefile" &&
		[ ! -e "$T/obj1/libc.so.7" ] && [ ! -e "$T/obj1/libc.so.7.full" ]; then
		ok "after a full run the libc is in the prefix, the Makefile is the original, the objdir's hooked libc is gone"
	else
		fail "after a full run: prefix $(ls "$T/prefix1" 2>&1); Makefile diff: $(diff "$T/full.orig" "$T/full/lib/libc/Makefile")"
	fi
	MAKE=$T/fakemake FAKE_OBJ=$T/obj2 FAKE_LIB=$T/libwon.so run "a full run whose libc is not hooked installs nothing" 1 'do not install this libc' -s "$T/full" -m amd64 -p "$T/prefix2"
	if [ ! -e "$T/prefix2/libc.so.7" ]; then ok "nothing installed after a failed verification"; else fail "a libc that failed verification was installed"; fi
	MAKE=$T/fakemake FAKE_OBJ=$T/obj3 FAKE_LIB=$T/libwon.so run "after a failed run it says the block is still in" 1 'block is still in .*integrate.sh -u removes it' -s "$T/full" -m amd64 -p "$T/prefix2"
	sh "$SCRIPT" -u -s "$T/full" >/dev/null

	cp "$T/libhooked.so" "$T/libstripped.so"
	if strip "$T/libstripped.so" 2>/dev/null; then
		run "a stripped library cannot be verified and says why" 1 'stripped' -v "$T/libstripped.so"
	fi
	printf 'int f(void) { return 0; }\n' >"$T/plain.c"
	"$CC" -shared -fPIC -o "$T/libplain.so" "$T/plain.c"
	run "a library without the hook is refused" 1 'no __restrack_open symbol' -v "$T/libplain.so"
else
	fail "cannot build the stand-in libraries with $CC: $(cat "$T/cc.err")"
fi

run "-v on a missing file says so" 1 'does not exist' -v "$T/none.so"
run "an unknown flag prints the usage" 2 'Usage: integrate.sh' -x

echo "integrate_test.sh: $N checks, $FAILS failed"
[ "$FAILS" -eq 0 ]
