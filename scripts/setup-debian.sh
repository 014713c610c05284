#!/usr/bin/env bash
# Installs everything restrack's build, tests, demo and benchmarks need on a
# fresh Debian machine (run as root or with sudo). Safe to run twice.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo

packages=(
  build-essential  # cc for the shim and the C tests
  make git ca-certificates
  sqlite3          # to open the store by hand; used by tests
  graphviz         # make demo renders the plan as SVG
  strace           # benchmark column and shim comparisons
  liblttng-ust-dev lttng-tools  # LTTng-UST benchmark column
  python3 tar      # real programs the shim tests trace
  curl             # the collector socket's HTTP side is tested with curl --unix-socket
  bmake            # reads the FreeBSD libc make fragments in integrate_test.sh
  clang llvm       # FreeBSD type-check of the shim; rebuilding and checking the eBPF object
  libbpf-dev       # BPF headers for that check
  postgresql       # the fleet database (docs/fleet.md), and the server psql reaches over TCP in planner/postgres_e2e_test.go; tests initdb their own throwaway server
  openssh-server sshfs  # the fleet test shares files between simulated hosts over sshfs (FUSE)
  rsync            # restrack migrate moves the files with it
  shellcheck       # the tests check migrate --emit's script with it
  criu             # migrate --emit says what `criu check` says here
  util-linux       # unshare and mount: migrate starts APs chrooted in a target root
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
  export PATH=/usr/local/go/bin:$PATH
fi
command -v go >/dev/null || { echo "setup: Go 1.26 is required (https://go.dev/dl/), install it to /usr/local/go" >&2; exit 1; }
go mod download

# Syscall tracepoints (eBPF mode) need tracefs.
if [ -d /sys/kernel/tracing ] && [ ! -e /sys/kernel/tracing/events ]; then
  $SUDO mount -t tracefs nodev /sys/kernel/tracing || echo "setup: could not mount tracefs; eBPF tests will fail" >&2
fi
# A second unprivileged user for the multi-uid tests (the shim's rendezvous,
# restrack host), besides root and nobody: a system account, no login.
if ! id -u restrack-test >/dev/null 2>&1; then
  $SUDO useradd --system --no-create-home --shell /usr/sbin/nologin restrack-test
fi
echo "setup: done"
