#!/usr/bin/env bash
# Two builds of the shim side by side on a process start (issue 12 §3):
# a traced bash runs a loop of N /bin/true, R rounds, the variants taking
# turns — untraced, an empty LD_PRELOAD library, the shim of BUILD_A and
# the shim of BUILD_B, each with its own collector (rings on /dev/shm, as
# restrack run's). Per process: CPU (perf stat's task-clock of bash and its
# children / N: what the processes spent, robust to a loaded machine) and
# page faults (deterministic), min / median / mean over the rounds.
#
#   libcshim/bench/startab.sh BUILD_A BUILD_B [N] [R]
set -euo pipefail
A=$(cd "$1" && pwd); B=$(cd "$2" && pwd)
N=${3:-100}
R=${4:-30}
command -v perf >/dev/null || { echo "startab: needs perf" >&2; exit 2; }
T=$(mktemp -d /tmp/restrack-startab.XXXXXX)
S=$T; [ -d /dev/shm ] && [ -w /dev/shm ] && S=$(mktemp -d /dev/shm/restrack-startab.XXXXXX)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$T" "$S"' EXIT
echo 'void restrack_startab_empty(void) {}' > "$T/empty.c"
cc -shared -fPIC -o "$T/empty.so" "$T/empty.c"
for v in a b; do
  b=$A; [ $v = b ] && b=$B
  "$b/collector" -rendezvous "$T/$v.sock" -ring-dir "$S/rings-$v" -store "$T/store-$v" -socket none -retain-events 0 2>"$T/collector-$v.log" &
  pids+=($!)
done
for _ in $(seq 100); do [ -S "$T/a.sock" ] && [ -S "$T/b.sock" ] && break; sleep 0.1; done
echo "== load before: $(uptime)"
declare -A cpu pf
variants=(untraced empty A B)
for _ in $(seq "$R"); do
  for v in "${variants[@]}"; do
    case $v in
      untraced) envs=() ;;
      empty) envs=(LD_PRELOAD="$T/empty.so") ;;
      A) envs=(LD_PRELOAD="$A/librestrack.so" RESTRACK_SOCKET="$T/a.sock") ;;
      B) envs=(LD_PRELOAD="$B/librestrack.so" RESTRACK_SOCKET="$T/b.sock") ;;
    esac
    env -u LD_PRELOAD "${envs[@]}" perf stat -x, -e task-clock,page-faults -o "$T/stat" \
      bash -c "for i in \$(seq $N); do /bin/true; done"
    t=$(awk -F, '/task-clock/ {print $1}' "$T/stat")  # ms
    p=$(awk -F, '/page-faults/ {print $1}' "$T/stat")
    cpu[$v]+="$(echo "$t * 1000 / $N" | bc -l) "
    pf[$v]+="$(echo "$p / $N" | bc -l) "
  done
done
stats() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1; s+=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%8.1f %8.1f %8.1f", a[1], m, s/NR}'; }
printf '%-9s %8s %8s %8s | %8s %8s %8s\n' variant cpu_min cpu_med cpu_mean pf_min pf_med pf_mean
for v in "${variants[@]}"; do
  printf '%-9s %s | %s\n' "$v" "$(echo "${cpu[$v]}" | stats)" "$(echo "${pf[$v]}" | stats)"
done
echo "   (CPU µs and page faults per process; A = $A, B = $B)"
echo "== load after: $(uptime)"
