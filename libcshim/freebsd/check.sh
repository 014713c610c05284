#!/bin/sh
# check.sh — on a FreeBSD machine: does the drop-in libc (or the preload
# shim) record what a program opens? Starts a collector on a ring of its
# own, runs small programs against it, and reads the events back with
# `restrack events`. Prints PASS/FAIL per case; exits non-zero on a failure.
#
# Usage: check.sh -b BIN [-l LIBDIR | -P SHIM]
#   -b BIN     directory with the restrack and collector binaries (GOOS=freebsd builds)
#   -l LIBDIR  the drop-in libc's prefix (integrate.sh -p; default /usr/local/lib/restrack)
#   -P SHIM    check the LD_PRELOAD build instead (path of librestrack.so)
#
# Cases: cat (open through the public wrapper), a C program that uses fopen
# (libc's internal _open), open() from a second thread (libthr's
# cancellation wrapper in the interposing slot), a forked child (the child's
# own pid), and mkdir and rename (the namespace hooks, which integrate.sh
# leaves out of some trees, saying so). The C cases need cc; without it they
# are skipped, said so.
set -eu

BIN=
LIBDIR=/usr/local/lib/restrack
PRELOAD=
while getopts b:l:P:h opt; do
	case $opt in
	b) BIN=$OPTARG ;;
	l) LIBDIR=$OPTARG ;;
	P) PRELOAD=$OPTARG ;;
	*) sed -n '/^# Usage:/,/^set -eu/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2; exit 2 ;;
	esac
done
[ -n "$BIN" ] && [ -x "$BIN/restrack" ] && [ -x "$BIN/collector" ] ||
	{ echo "check.sh: -b must name a directory with restrack and collector" >&2; exit 2; }
if [ -z "$PRELOAD" ] && [ ! -f "$LIBDIR/libc.so.7" ]; then
	echo "check.sh: $LIBDIR/libc.so.7 does not exist (integrate.sh -p, or -l LIBDIR)" >&2
	exit 2
fi

T=$(mktemp -d /tmp/restrack-check.XXXXXX)
COLLECTOR_PID=
cleanup() {
	[ -z "$COLLECTOR_PID" ] || kill "$COLLECTOR_PID" 2>/dev/null || true
	rm -rf "$T"
}
trap cleanup EXIT INT TERM
FAILS=0

"$BIN/collector" -ring "$T/ring" -store "$T/store" -socket none -drain-interval 5ms 2>"$T/collector.log" &
COLLECTOR_PID=$!
i=0
while [ ! -s "$T/ring" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
[ -s "$T/ring" ] || { echo "check.sh: the collector made no ring: $(cat "$T/collector.log")" >&2; exit 1; }

# traced CMD…: runs CMD with the drop-in libc (or the shim) and the ring.
traced() {
	if [ -n "$PRELOAD" ]; then
		env LD_PRELOAD="$PRELOAD" RESTRACK_RING="$T/ring" "$@"
	else
		env LD_LIBRARY_PATH="$LIBDIR" RESTRACK_RING="$T/ring" "$@"
	fi
}

echo hello >"$T/hello.txt"
out=$(traced cat "$T/hello.txt")
[ "$out" = hello ] || { echo "FAIL cat under the traced libc printed '$out'"; FAILS=$((FAILS + 1)); }

HAVE_CC=
if command -v cc >/dev/null 2>&1; then
	HAVE_CC=1
	cat >"$T/prog.c" <<'EOF'
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
static char dir[512];
static void *thr(void *a) {
	char p[600];
	(void)a;
	snprintf(p, sizeof p, "%s/thread.txt", dir);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd >= 0) close(fd);
	return NULL;
}
int main(int argc, char **argv) {
	char p[600];
	pthread_t t;
	if (argc < 2) return 2;
	strncpy(dir, argv[1], sizeof dir - 1);
	snprintf(p, sizeof p, "%s/stdio.txt", dir);
	FILE *f = fopen(p, "w");
	if (f) fclose(f);
	pthread_create(&t, NULL, thr, NULL);
	pthread_join(t, NULL);
	pid_t pid = fork();
	if (pid == 0) {
		snprintf(p, sizeof p, "%s/child.txt", dir);
		int fd = open(p, O_RDONLY | O_CREAT, 0644);
		if (fd >= 0) close(fd);
		_exit(0);
	}
	waitpid(pid, NULL, 0);
	snprintf(p, sizeof p, "%s/newdir", dir);
	mkdir(p, 0755);
	char q[600];
	snprintf(p, sizeof p, "%s/stdio.txt", dir);
	snprintf(q, sizeof q, "%s/renamed.txt", dir);
	rename(p, q);
	printf("%d\n", (int)pid);
	return 0;
}
EOF
	cc -pthread -o "$T/prog" "$T/prog.c"
	CHILD=$(traced "$T/prog" "$T")
else
	echo "SKIP the C cases (fopen, a thread, fork): no cc on this machine"
fi

sleep 0.2
kill "$COLLECTOR_PID"
wait "$COLLECTOR_PID" 2>/dev/null || true
COLLECTOR_PID=

# expect NAME PATH [PID]: an event on PATH (by PID) is in the store.
expect() {
	ev=$("$BIN/restrack" events -store "$T/store" -json -path "$2" ${3:+-pid "$3"} 2>&1 || true)
	if [ -n "$ev" ] && printf '%s\n' "$ev" | grep -q "\"$2\""; then
		echo "PASS $1"
	else
		echo "FAIL $1: no event on $2${3:+ by pid $3}"
		FAILS=$((FAILS + 1))
	fi
}

expect "cat's open of the file is recorded" "$T/hello.txt"
if [ -n "$HAVE_CC" ]; then
	expect "fopen (libc's internal _open) is recorded" "$T/stdio.txt"
	expect "open() in a second thread (libthr's slot) is recorded" "$T/thread.txt"
	expect "the forked child's open is recorded under the child's pid" "$T/child.txt" "$CHILD"
	expect "mkdir is recorded (namespace hooks)" "$T/newdir"
	expect "rename is recorded with its new name (namespace hooks)" "$T/renamed.txt"
fi
if [ "$FAILS" -ne 0 ]; then
	echo "check.sh: $FAILS failed; all events:"
	"$BIN/restrack" events -store "$T/store" -all || true
	exit 1
fi
echo "check.sh: all passed"
