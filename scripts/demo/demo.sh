#!/usr/bin/env bash
# make demo: trace a small multi-application workload with restrack, then
# ask restrack what must move with one of its applications.
#
# Usage: scripts/demo/demo.sh [BUILD_DIR]   (default: build; binaries from `make`)
# Leaves everything in BUILD_DIR/demo: the trace store, plan.txt, plan.json,
# plan.dot and, when Graphviz is installed, plan.svg.
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
restrack=$build/restrack
for f in "$restrack" "$build/librestrack.so"; do
	[ -e "$f" ] || { echo "demo: $f is missing: run make first" >&2; exit 1; }
done
command -v sqlite3 >/dev/null || { echo "demo: sqlite3 is missing: run sudo ./scripts/setup-debian.sh" >&2; exit 1; }

demo=$(realpath -m "$build/demo")
store=$build/demo/store # shown relative: shorter commands to copy
rm -rf "$demo"
mkdir -p "$demo"/{srv/etc,srv/log,srv/db,ship,work,batch,pids}

# The state the applications find when they start. It is made here,
# before tracing, as an installer would: only what the applications
# themselves do is traced.
printf 'port=8080\nworkers=2\nlog_level=info\n' >"$demo/srv/etc/app.conf"
sqlite3 "$demo/srv/db/app.db" 'CREATE TABLE requests(id INTEGER PRIMARY KEY, path TEXT);'
seq 200 -7 1 >"$demo/batch/input.txt"

bold="" plain=""
if [ -t 1 ]; then # headings in bold on a terminal only, never in a log
	bold=$(tput bold 2>/dev/null || true)
	plain=$(tput sgr0 2>/dev/null || true)
fi
say() { printf '\n%s== %s%s\n' "$bold" "$*" "$plain"; }

say "1. Tracing a workload of five applications (about 2 seconds)"
cat <<TEXT
restrack run starts scripts/demo/workload.sh with the shim preloaded, so every
file each process opens, creates, renames or deletes is recorded, and so are
all their descendants. The workload (files under $demo/srv):
  service  appends to srv/log/service.log, reads srv/etc/app.conf, and inserts
           into the SQLite database srv/db/app.db (its sqlite3 child writes it)
  shipper  tails srv/log/service.log into ship/shipped.log
  workers  two workers that read srv/etc/app.conf and write work/result-N.txt
  janitor  deletes old rows from srv/db/app.db (a second writer of the database)
  batch    unrelated: sorts batch/input.txt into batch/sorted.txt
TEXT
echo
echo "\$ $restrack run --store $store -- scripts/demo/workload.sh $build/demo"
"$restrack" run --store "$store" -- scripts/demo/workload.sh "$build/demo"

shipper=$(cat "$demo/pids/shipper")
janitor=$(cat "$demo/pids/janitor")
workers=$(cat "$demo/pids/workers")
batch=$(cat "$demo/pids/batch")

say "2. Which process is the shipper? Ask restrack ps"
echo "restrack ps lists the traced processes as a tree; --depth 1 shows the workload"
echo "and the applications it started (--depth 2 their children, and so on):"
echo "\$ $restrack ps --store $store --depth 1"
"$restrack" ps --store "$store" --depth 1 | grep -v '^  restrack plan'
echo "(the demo also wrote each application's pid under $build/demo/pids/)"

say "3. What must move with the shipper (AP $shipper)?"
cat <<TEXT
We ask to move the log shipper. restrack follows the sharing in the trace:
  - a file that someone writes ties its users together (Model 2): they move
    together, and whatever they share in turn comes too;
  - a file that everybody only reads moves and leaves a copy behind (Model 1);
  - what every host provides (/usr/lib, /proc, /dev/null...) is ignored, listed.
TEXT
echo
echo "\$ $restrack plan --store $store --ap $shipper"
"$restrack" plan --store "$store" --ap "$shipper" | tee "$demo/plan.txt"

say "4. Why does the janitor (AP $janitor) move? Ask restrack explain"
echo "\$ $restrack explain --store $store --ap $shipper --pid $janitor"
"$restrack" explain --store "$store" --ap "$shipper" --pid "$janitor"
echo
echo "\$ $restrack explain --store $store --ap $shipper --pid $workers"
"$restrack" explain --store "$store" --ap "$shipper" --pid "$workers"
batch_says=$("$restrack" explain --store "$store" --ap "$shipper" --pid "$batch")

"$restrack" plan --store "$store" --ap "$shipper" --json >"$demo/plan.json"
"$restrack" plan --store "$store" --ap "$shipper" --dot >"$demo/plan.dot"
say "5. The plan as data and as a picture"
echo "  $build/demo/plan.json  the same plan as JSON (restrack plan --json)"
echo "  $build/demo/plan.dot   the dependency graph (restrack plan --dot)"
if command -v dot >/dev/null; then
	dot -Tsvg "$demo/plan.dot" >"$demo/plan.svg"
	echo "  $build/demo/plan.svg   drawn by Graphviz, with a legend: open it in a browser"
else
	echo "  (install Graphviz to render it: sudo ./scripts/setup-debian.sh, then dot -Tsvg)"
fi

cat <<TEXT

${bold}Reading the plan:${plain} moving the shipper (AP $shipper) drags the service with it,
because the shipper reads the log the service writes. The service writes the
database, and so does the janitor (AP $janitor): it must move too. The workers
(AP $workers) only read the config the service also reads, so they stay and keep
a copy of it.
Every application is workload.sh started again with a role, so all of them read
the script: it moves too, and a copy stays for the applications that stay.
TEXT
# The batch job's sentence follows what the plan says of it, not a script.
if grep -q "copy" <<<"$batch_says"; then
	echo "The batch job (AP $batch) shares no written file with them: it stays, and is"
	echo "listed only as an AP that keeps a copy of what it read (the script)."
else
	echo "The batch job (AP $batch) shares nothing with them: it stays, and the plan"
	echo "does not name it."
fi
echo "Try another AP: $restrack plan --store $store --ap $workers"

say "6. Carry the plan out: pack the shipper's files into one archive"
echo "\$ $restrack pack --store $store --ap $shipper -o $demo/shipper.tar.zst"
"$restrack" pack --store "$store" --ap "$shipper" -o "$demo/shipper.tar.zst"
echo
echo "What the archive holds (restrack unpack --dry-run verifies every checksum and lists it):"
echo "\$ $restrack unpack $demo/shipper.tar.zst --root $demo/target --dry-run"
"$restrack" unpack "$demo/shipper.tar.zst" --root "$demo/target" --dry-run
echo
echo "Unpack it for real with: $restrack unpack $demo/shipper.tar.zst --root DIR"
echo "Or move the running APs: $restrack migrate --store $store --ap $shipper --to DIR --emit"
