#!/usr/bin/env bash
# What the shim adds to a process start (issue 12 §3: ≤ +100 µs), side by
# side in one run, with a collector answering on a private rendezvous
# socket:
#
#  1. startcost.c: an untraced parent posix_spawns /bin/true N times per
#     variant, the variants taking turns — untraced, an empty LD_PRELOAD
#     library (the floor any preload pays), and the shim: every child
#     registers with the collector (the first process of a tree).
#  2. a bash loop of N /bin/true, R rounds per variant taking turns: under
#     the shim bash is traced and lends its ring to each child at exec (the
#     rest of a tree). Per process = the round's wall time / N; the mean
#     and the median are over the rounds.
#
#   libcshim/bench/startcost.sh [BUILD_DIR] [N] [R]
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
N=${2:-500}
R=${3:-15}
T=$(mktemp -d /tmp/restrack-startcost.XXXXXX)
# The rings where restrack run puts its own: /dev/shm (tmpfs) when it can.
RINGS=$T/rings
[ -d /dev/shm ] && [ -w /dev/shm ] && RINGS=$(mktemp -d /dev/shm/restrack-startcost.XXXXXX)/rings
trap 'kill -TERM $CPID 2>/dev/null; wait 2>/dev/null; rm -rf "$T" "$(dirname "$RINGS")"' EXIT
cc -O2 -o "$T/startcost" libcshim/bench/startcost.c
echo 'void restrack_startcost_empty(void) {}' > "$T/empty.c"
cc -shared -fPIC -o "$T/empty.so" "$T/empty.c"
"$BUILD/collector" -rendezvous "$T/rdv.sock" -ring-dir "$RINGS" -store "$T/store" -socket none -retain-events 0 2>"$T/collector.log" &
CPID=$!
for _ in $(seq 100); do [ -S "$T/rdv.sock" ] && break; sleep 0.1; done
SHIM=$(cd "$BUILD" && pwd)/librestrack.so

echo "== load before: $(uptime)"
echo "== 1. every child registers (posix_spawn from an untraced parent), $N starts per variant"
echo "   cpu = the child's own user+sys; the collector's CPU per registration below it"
ticks() { awk '{print $14 + $15}' "/proc/$CPID/stat"; }
c0=$(ticks)
"$T/startcost" "$N" /bin/true "" "LD_PRELOAD=$T/empty.so" "LD_PRELOAD=$SHIM;RESTRACK_SOCKET=$T/rdv.sock"
c1=$(ticks)
echo "   collector CPU per registration (its user+sys over the run / $((N + 5)) starts, 10 ms ticks: $((c1 - c0))): $(echo "($c1 - $c0) * 10000 / ($N + 5)" | bc) us"
# What the round trip itself costs: the same child opening the ring by its
# path (RESTRACK_RING, no collector asked; it then reads its start time and
# seccomp status from /proc itself). Only the owner of the ring can.
RING=$(ls "$RINGS"/uid-*.ring 2>/dev/null | head -1)
if [ -n "$RING" ] && [ -r "$RING" ] && [ -w "$RING" ]; then
  echo "   the same, the shim opening the ring by path instead of registering:"
  "$T/startcost" "$N" /bin/true "" "LD_PRELOAD=$SHIM;RESTRACK_SOCKET=$T/rdv.sock" "LD_PRELOAD=$SHIM;RESTRACK_RING=$RING"
fi

echo "== 2. a traced bash lends its ring to each child: bash loop of $N /bin/true, $R rounds per variant"
echo "   wall = the round's elapsed time / N; cpu = the round's user+sys (bash and its children) / N:"
echo "   on a shared machine cpu is what the processes themselves spent, wall adds the wait for a core"
declare -A wall cpu
for r in $(seq "$R"); do
  for v in untraced empty shim; do
    case $v in
      untraced) envs=() ;;
      empty) envs=(LD_PRELOAD="$T/empty.so") ;;
      shim) envs=(LD_PRELOAD="$SHIM" RESTRACK_SOCKET="$T/rdv.sock") ;;
    esac
    /usr/bin/time -f "%e %U %S" -o "$T/time" env -u LD_PRELOAD "${envs[@]}" bash -c "for i in \$(seq $N); do /bin/true; done"
    read -r e u s < "$T/time"
    wall[$v]+="$(echo "$e * 1000000 / $N" | bc -l) "
    cpu[$v]+="$(echo "($u + $s) * 1000000 / $N" | bc -l) "
  done
done
stats() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1; s+=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.1f %.1f", s/NR, m}'; }
for kind in wall cpu; do
  declare -n k=$kind
  read -r um umed <<<"$(echo "${k[untraced]}" | stats)"
  printf '%-5s %-9s %10s %10s %12s %12s\n' "$kind" variant mean_us median_us added_mean added_median
  for v in untraced empty shim; do
    read -r m med <<<"$(echo "${k[$v]}" | stats)"
    printf '%-5s %-9s %10.1f %10.1f %+12.1f %+12.1f\n' "$kind" "$v" "$m" "$med" "$(echo "$m - $um" | bc)" "$(echo "$med - $umed" | bc)"
  done
done
echo "== load after: $(uptime)"
grep -c "not traced" "$T/collector.log" >/dev/null && { echo "startcost: some processes were not traced:"; cat "$T/collector.log"; } || true
