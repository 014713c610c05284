#!/usr/bin/env bash
# The demo's traced workload: a small "host" running five applications that
# share files the way real ones do. `make demo` runs it under
# `restrack run`, so every process below is traced.
#
#   service  appends requests to a log, reads the config, and records each
#            request in a SQLite database (through the sqlite3 CLI, a child)
#   shipper  tails the service's log and ships the lines to its own file
#   workers  a pool of two workers that read the same config and write
#            their own results
#   janitor  trims old rows from the same SQLite database (a second writer)
#   batch    an unrelated job: sorts a file into another
#
# Usage: workload.sh DIR            run everything, pids go to DIR/pids/
#        workload.sh ROLE DIR ...   one application (started by the above)
# Each application is this script started again with a role, so process
# listings name the role ("workload.sh service") instead of a bare bash.
set -euo pipefail
self=$0

service() { # DIR
	local d=$1 i
	for i in $(seq 1 12); do
		# Reading the config on every request, as services that reload do.
		grep -q '^port=' "$d/srv/etc/app.conf"
		echo "$(date +%T.%N) GET /item/$i 200" >>"$d/srv/log/service.log"
		sqlite3 -cmd '.timeout 5000' "$d/srv/db/app.db" "INSERT INTO requests(path) VALUES ('/item/$i');"
		sleep 0.1
	done
}

shipper() { # DIR
	local d=$1 i
	for i in $(seq 1 12); do
		sleep 0.12
		tail -n 2 "$d/srv/log/service.log" >>"$d/ship/shipped.log" 2>/dev/null || true
	done
}

worker() { # DIR N
	local d=$1 n=$2 i
	for i in $(seq 1 5); do
		workers=$(sed -n 's/^workers=//p' "$d/srv/etc/app.conf")
		echo "worker $n of $workers: job $i done" >>"$d/work/result-$n.txt"
		sleep 0.1
	done
}

workers() { # DIR: the pool, whose two workers are its children
	bash "$self" worker "$1" 1 &
	bash "$self" worker "$1" 2 &
	wait
}

janitor() { # DIR
	local d=$1 i
	for i in $(seq 1 4); do
		sleep 0.3
		sqlite3 -cmd '.timeout 5000' "$d/srv/db/app.db" \
			"DELETE FROM requests WHERE id < (SELECT max(id) - 5 FROM requests);"
	done
}

batch() { # DIR
	sort -n "$1/batch/input.txt" >"$1/batch/sorted.txt"
}

if [ $# -ge 2 ]; then
	role=$1
	shift
	"$role" "$@"
	exit
fi

d=$1
bash "$self" service "$d" &
echo $! >"$d/pids/service"
bash "$self" shipper "$d" &
echo $! >"$d/pids/shipper"
bash "$self" workers "$d" &
echo $! >"$d/pids/workers"
bash "$self" janitor "$d" &
echo $! >"$d/pids/janitor"
bash "$self" batch "$d" &
echo $! >"$d/pids/batch"
wait
