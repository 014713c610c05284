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

# make bench's real C build is `make -j2` of Debian's GNU hello source,
# fetched through apt (only Debian's mirrors need be reachable) and cached
# where bench.HelloGlob looks. apt-get source needs deb-src entries: they
# are added for the mirrors the machine already uses.
hello_dir=/var/cache/restrack-bench/hello
if ! compgen -G "$hello_dir/hello_*.orig.tar.gz" >/dev/null; then
  if ! apt-get source --print-uris hello >/dev/null 2>&1; then
    if [ -f /etc/apt/sources.list.d/debian.sources ]; then
      sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources |
        $SUDO tee /etc/apt/sources.list.d/restrack-bench-deb-src.sources >/dev/null
    elif [ -f /etc/apt/sources.list ]; then
      grep '^deb ' /etc/apt/sources.list | sed 's/^deb /deb-src /' |
        $SUDO tee /etc/apt/sources.list.d/restrack-bench-deb-src.list >/dev/null
    fi
    $SUDO apt-get update -qq || echo "setup: apt-get update failed after adding deb-src entries" >&2
  fi
  $SUDO mkdir -p "$hello_dir"
  # --download-only: the upstream tarball is what is built (it ships its
  # configure), so dpkg-dev is not needed to unpack the Debian package.
  (cd "$hello_dir" && $SUDO apt-get source --download-only -qq hello) ||
    echo "setup: could not fetch GNU hello's source: make bench will skip its build workload" >&2
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
