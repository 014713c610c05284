#!/usr/bin/env bash
# make demo-fleet: three simulated hosts on this machine share one sshfs
# export, each traces its part of a workload with `restrack run --publish`
# into one PostgreSQL, and the plan for beta's log shipper pulls in alpha's
# service across hosts (docs/fleet.md). Needs root (mount and network
# namespaces, FUSE mounts) and scripts/setup-debian.sh's packages.
set -euo pipefail
BUILD=$(cd "${1:-build}" && pwd)
RESTRACK=$BUILD/restrack
say() { printf '\n== %s\n' "$*"; }
die() { echo "demo-fleet: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "needs root: each simulated host runs in its own mount and network namespace"
for t in pg_ctl sshfs /usr/sbin/sshd ssh-keygen unshare runuser python3 fusermount3; do
  command -v "$t" >/dev/null || die "$t is missing: run scripts/setup-debian.sh"
done
[ -e /dev/fuse ] || die "no /dev/fuse: sshfs cannot mount here"

W=$(mktemp -d /tmp/restrack-demo-fleet.XXXXXX)
chmod 755 "$W"
PGBIN=$(dirname "$(readlink -f "$(command -v pg_ctl)")")
cleanup() {
  for h in alpha beta gamma; do fusermount3 -u "$W/$h/mnt" 2>/dev/null || true; done
  [ -f "$W/sshd.pid" ] && kill "$(cat "$W/sshd.pid")" 2>/dev/null || true
  runuser -u nobody -- "$PGBIN/pg_ctl" -D "$W/pg/data" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$W"
}
[ -n "${KEEP:-}" ] || trap cleanup EXIT

say "PostgreSQL 15 in $W/pg, on a unix socket only"
mkdir -p "$W/pg/sock"
chown -R nobody: "$W/pg"
runuser -u nobody -- "$PGBIN/initdb" -D "$W/pg/data" -U restrack --auth=trust -E UTF8 --no-sync >/dev/null
runuser -u nobody -- "$PGBIN/pg_ctl" -D "$W/pg/data" -l "$W/pg/log" -o "-c listen_addresses='' -k $W/pg/sock" -w start >/dev/null
DSN="host=$W/pg/sock user=restrack dbname=postgres"

cd "$W"  # the hosts' working directory: the plan lists it as read
say "an sshd on loopback exporting $W/export over SFTP"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$W/export/shared" /run/sshd
echo "level=2" > "$W/export/shared/app.conf"
ssh-keygen -q -t ed25519 -N "" -f "$W/hostkey"
ssh-keygen -q -t ed25519 -N "" -f "$W/id"
cp "$W/id.pub" "$W/authorized_keys"
cat > "$W/sshd_config" <<CONF
ListenAddress 127.0.0.1
Port $PORT
HostKey $W/hostkey
AuthorizedKeysFile $W/authorized_keys
PidFile $W/sshd.pid
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
Subsystem sftp internal-sftp
CONF
/usr/sbin/sshd -f "$W/sshd_config"

# host NAME MOUNTPOINT WORKLOAD: a mount namespace with the export mounted
# at MOUNTPOINT and a private tmpfs at $W/local (one path, each host its own
# files), then WORKLOAD traced in a network namespace of its own (the sshfs
# connection was made before, from outside it).
host() {
  local name=$1 mp=$2 work=$3
  mkdir -p "$mp" "$W/local"
  say "host $name: export at $mp; $work"
  unshare --mount --propagation private bash -c "
    set -e
    sshfs -p $PORT -o IdentityFile=$W/id -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes \
      root@127.0.0.1:$W/export $mp
    trap 'fusermount3 -u $mp' EXIT
    mount -t tmpfs tmpfs $W/local
    unshare --net $RESTRACK run --store $W/$name/store --publish '$DSN' --host-id $name -- \
      sh -c 'echo \$\$ > $W/$name.pid; M=$mp; $work'
  "
}
host alpha "$W/alpha/mnt" 'for i in 1 2 3; do echo "request $i" >> $M/shared/service.log; done; echo up > '"$W"'/local/state'
host beta  "$W/beta/data" 'tail -n 2 $M/shared/service.log; cat $M/shared/app.conf > /dev/null; echo shipped > '"$W"'/local/state'
host gamma "$W/gamma/srv" 'cat $M/shared/app.conf; echo report > '"$W"'/local/state'

BETA=$(cat "$W/beta.pid")
ALPHA=$(cat "$W/alpha.pid")
say "restrack plan --fleet DSN --ap beta:$BETA"
"$RESTRACK" plan --fleet "$DSN" --ap "beta:$BETA"
say "restrack explain --fleet DSN --ap beta:$BETA --pid alpha:$ALPHA"
"$RESTRACK" explain --fleet "$DSN" --ap "beta:$BETA" --pid "alpha:$ALPHA"
mkdir -p "$BUILD/demo-fleet"
"$RESTRACK" plan --fleet "$DSN" --ap "beta:$BETA" --json > "$BUILD/demo-fleet/plan.json"
"$RESTRACK" plan --fleet "$DSN" --ap "beta:$BETA" --dot > "$BUILD/demo-fleet/plan.dot"
say "written: $BUILD/demo-fleet/plan.{json,dot}"
