#!/usr/bin/env bash
# make soak: the host collector under a long, mixed load (issue 11). Not in
# CI. Three traced "services" — root, nobody and restrack-test, started with
# nothing but LD_PRELOAD and the rendezvous socket — open distinct paths at
# a steady pace and start a process every 50 opens; the collector is killed
# (SIGKILL) and restarted every SOAK_RESTART_SECONDS. At the end, per uid,
# what the services produced must equal what the store received plus what
# was counted as dropped, with no record stored twice.
#
#   SOAK_MINUTES=30 SOAK_RATE=200 SOAK_RESTART_SECONDS=180 scripts/soak.sh [BUILD_DIR]
#
# Needs root (three uids), cc, sqlite3 and setpriv.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
MINUTES=${SOAK_MINUTES:-30}
RATE=${SOAK_RATE:-200}
RESTART=${SOAK_RESTART_SECONDS:-180}
[ "$(id -u)" -eq 0 ] || { echo "soak: needs root (services of three uids)" >&2; exit 1; }
id -u restrack-test >/dev/null 2>&1 || { echo "soak: user restrack-test missing: run scripts/setup-debian.sh" >&2; exit 1; }
for b in collector librestrack.so; do
  [ -e "$BUILD/$b" ] || { echo "soak: $BUILD/$b missing: run make" >&2; exit 1; }
done

T=$(mktemp -d /tmp/restrack-soak.XXXXXX)
chmod 755 "$T"
cc -O2 -Wall -Wextra -Werror -o "$T/soakload" libcshim/tests/soakload.c
cp "$BUILD/librestrack.so" "$T/librestrack.so"
chmod 755 "$T/librestrack.so"
SOCK=$T/rdv.sock
STORE=$T/store
SECS=$((MINUTES * 60))
echo "soak: $MINUTES min, $RATE opens/s per service, collector killed every ${RESTART}s; work dir $T"

CPID=
start_collector() {
  "$BUILD/collector" -rendezvous "$SOCK" -ring-dir "$T/rings" -store "$STORE" -socket "$T/query.sock" \
    -retain-events 0 2>>"$T/collector.log" &
  CPID=$!
  for _ in $(seq 100); do [ -S "$SOCK" ] && return 0; sleep 0.1; done
  echo "soak: the collector did not come up (see $T/collector.log)" >&2
  exit 1
}
cleanup() { [ -n "$CPID" ] && kill -TERM "$CPID" 2>/dev/null; wait 2>/dev/null || true; }
trap cleanup EXIT
start_collector

declare -A UIDS=([root]=0 [nobody]=65534 [test]=$(id -u restrack-test))
declare -A GIDS=([root]=0 [nobody]=65534 [test]=$(id -g restrack-test))
SPIDS=()
for tag in root nobody test; do
  env -i PATH=/usr/bin:/bin LD_PRELOAD="$T/librestrack.so" RESTRACK_SOCKET="$SOCK" \
    setpriv --reuid="${UIDS[$tag]}" --regid="${GIDS[$tag]}" --clear-groups \
    "$T/soakload" "$tag" "$RATE" "$SECS" >"$T/produced-$tag" 2>&1 &
  SPIDS+=($!)
done

end=$((SECONDS + SECS))
kills=0
while [ $SECONDS -lt $end ]; do
  left=$((end - SECONDS))
  sleep $((left < RESTART ? left : RESTART))
  [ $SECONDS -lt $end ] || break
  kill -KILL "$CPID"; wait "$CPID" 2>/dev/null || true
  kills=$((kills + 1))
  echo "soak: $(date +%T) collector killed ($kills), restarting"
  sleep 1
  start_collector
done
for p in "${SPIDS[@]}"; do wait "$p"; done
kill -TERM "$CPID"; wait "$CPID" || true
CPID=

q() { sqlite3 -readonly "$STORE/restrack.db" "$1"; }
fail=0
printf '%-8s %6s %10s %10s %8s %10s  %s\n' service uid produced received dropped duplicates verdict
for tag in root nobody test; do
  uid=${UIDS[$tag]}
  produced=$(sed -n 's/^produced //p' "$T/produced-$tag")
  received=$(q "SELECT count(*) FROM files WHERE path LIKE '/nonexistent-soak/$tag/%';")
  calls=$(q "SELECT coalesce(sum(a.count + a.failures), 0) FROM accesses a JOIN files f ON f.id = a.file_id WHERE f.path LIKE '/nonexistent-soak/$tag/%';")
  dropped=$(q "SELECT coalesce(sum(dropped_full + dropped_toobig + abandoned + corrupted), 0) FROM sources WHERE path LIKE '%/uid-$uid.ring';")
  dup=$((calls - received))
  verdict=ok
  # Drops are counted per ring, for every kind of record: they bound the
  # services' lost opens from above.
  if [ -z "$produced" ] || [ "$dup" -ne 0 ] || [ "$received" -gt "$produced" ] || [ $((produced - received)) -gt "$dropped" ]; then
    verdict=FAIL
    fail=1
  fi
  printf '%-8s %6s %10s %10s %8s %10s  %s\n' "$tag" "$uid" "${produced:-?}" "$received" "$dropped" "$dup" "$verdict"
done
echo "soak: collector killed and restarted $kills times; untraced processes: $(grep -c 'not traced' "$T/collector.log" || true)"
if [ $fail -ne 0 ]; then
  echo "soak: FAIL (work dir kept: $T)" >&2
  exit 1
fi
rm -rf "$T"
echo "soak: PASS"
