# Shared set-up for tools/demo and tools/test: sourced, not run.
# Installs missing Debian packages (as root), then configures and builds a build tree.
# Re-running on a set-up machine skips what is already done.

ANYSOCK_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

# The Debian packages the build and the tests need (see README.md, "Dependencies").
ANYSOCK_PACKAGES=(
  cmake ninja-build g++ pkg-config  # the build
  libgtest-dev libgmock-dev         # the test suites
  libbenchmark-dev                  # tools/bench
  clang-format                      # the format check in tools/test
  libpcap-dev                       # drivers/pcap: the libpcap link driver
  libxdp-dev libbpf-dev             # drivers/af_xdp: AF_XDP sockets and the XDP program feeding them
  iproute2 ethtool                  # tests/drivers: veth pairs and TAPs in the tests' own namespace
  tshark                            # tests/sim: an independent reader checks the simulator's pcaps
  curl netcat-openbsd python3       # tests/links: real clients and servers against anysock over TAP
  dnsmasq-base iputils-ping         # tests/links: a DNS server for lwIP's resolver; ping v4/v6
  apt debian-archive-keyring gpgv   # fetching Debian's lwIP source package (signed index)
  ca-certificates
)

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

ensure_packages() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "anysock: missing Debian packages: ${missing[*]}" >&2
    echo "         install them with: sudo apt-get install -y ${missing[*]}" >&2
    return 1
  fi
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# configure_and_build DIR [cmake args...]: configures DIR once, then builds it incrementally.
configure_and_build() {
  local dir="$1"; shift
  if [ ! -f "$dir/build.ninja" ]; then
    log "configuring $dir"
    cmake -S "$ANYSOCK_ROOT" -B "$dir" -G Ninja "$@" >/dev/null
  fi
  log "building $dir"
  cmake --build "$dir" -- -j"$(nproc)"
}
