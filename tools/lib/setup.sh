# shellcheck shell=bash
# Shared set-up for tools/demo and tools/test: sourced, not run.
# Installs missing Debian packages (as root), then configures and builds build trees.
# Re-running on a set-up machine skips what is already done.

ANYSOCK_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

# The Debian packages (see README.md, "Dependencies"). What the library and tools/demo need:
# shellcheck disable=SC2034  # used by the scripts that source this file
ANYSOCK_BUILD_PACKAGES=(
  cmake ninja-build g++ pkg-config  # the build
  libpcap-dev                       # drivers/pcap: the libpcap link driver
  libxdp-dev libbpf-dev             # drivers/af_xdp: AF_XDP sockets and the XDP program feeding them
  apt debian-archive-keyring gpgv   # fetching Debian's lwIP source package (signed index)
  ca-certificates
)
# ... and what only tools/test needs on top:
# shellcheck disable=SC2034
ANYSOCK_TEST_PACKAGES=(
  libgtest-dev libgmock-dev         # the test suites
  make                              # the Unix Makefiles build (CMake's default generator)
  clang-format                      # the format check in tools/test
  iproute2 ethtool                  # tests/drivers: veth pairs and TAPs in the tests' own namespace
  tshark                            # tests/sim: an independent reader checks the simulator's pcaps
  curl netcat-openbsd python3       # tests/links: real clients and servers against anysock over TAP
  dnsmasq-base iputils-ping         # tests/links: a DNS server for lwIP's resolver; ping v4/v6
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

# configure SOURCE DIR GENERATOR [-DNAME=VALUE...]: configures DIR (recognised by its CMakeCache.txt)
# from SOURCE with GENERATOR once. On a configured DIR, whatever its generator, cmake runs again only
# if one of the given values differs from DIR's cache or the last run did not finish (no
# CMakeFiles/TargetDirectories.txt, which the generate step writes).
configure() {
  local src="$1" dir="$2" generator="$3"; shift 3
  if [ ! -f "$dir/CMakeCache.txt" ]; then
    log "configuring $dir ($generator)"
    cmake -S "$src" -B "$dir" -G "$generator" "$@" >/dev/null
    return
  fi
  local arg name value stale=0
  [ -f "$dir/CMakeFiles/TargetDirectories.txt" ] || stale=1
  for arg in "$@"; do
    name="${arg#-D}"; name="${name%%=*}"; name="${name%%:*}"; value="${arg#*=}"
    [ "$(sed -n "s/^$name:[A-Z]*=//p" "$dir/CMakeCache.txt")" = "$value" ] || stale=1
  done
  if [ "$stale" = 1 ]; then
    log "configuring $dir again${*:+ ($*)}"
    cmake -S "$src" -B "$dir" "$@" >/dev/null
  fi
}

# build_tree DIR [TARGET...]: builds the given targets of DIR (all without any), incrementally.
build_tree() {
  local dir="$1"; shift
  log "building $dir${*:+ ($*)}"
  if [ $# -gt 0 ]; then
    cmake --build "$dir" --parallel "$(nproc)" --target "$@"
  else
    cmake --build "$dir" --parallel "$(nproc)"
  fi
}

# configure_and_build DIR [-DNAME=VALUE...]: a Ninja tree of the whole project, everything built.
configure_and_build() {
  local dir="$1"; shift
  configure "$ANYSOCK_ROOT" "$dir" Ninja "$@"
  build_tree "$dir"
}

# lwip_source_of DIR: the lwIP tree the configured DIR builds (its ANYSOCK_LWIP_SOURCE_DIR or its
# download), for further trees to reuse instead of downloading it again.
lwip_source_of() {
  local given
  given="$(sed -n 's/^ANYSOCK_LWIP_SOURCE_DIR:[A-Z]*=//p' "$1/CMakeCache.txt")"
  if [ -n "$given" ]; then
    echo "$given"
  else
    sed -n 2p "$1/_deps/lwip/fetched.stamp"
  fi
}
