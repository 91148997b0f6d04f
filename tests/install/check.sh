#!/usr/bin/env bash
# Installs the build tree BUILD into a temporary prefix, then builds and runs a consumer program
# against it twice: with CMake's find_package(anysock) and with pkg-config. BUILD may come from any
# generator (tools/test runs this from a Ninja tree and from a Unix Makefiles one).
# Usage: tests/install/check.sh BUILD
set -euo pipefail
build="$(cd "$1" && pwd)"
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cmake --install "$build" --prefix "$work/prefix" >/dev/null

# CMake's default generator (or $CMAKE_GENERATOR): the consumer needs nothing else.
cmake -S "$here/consumer" -B "$work/cmake-build" -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/cmake-build" >/dev/null
"$work/cmake-build/consumer"

export PKG_CONFIG_PATH="$work/prefix/lib/pkgconfig:$work/prefix/lib/$(gcc -dumpmachine)/pkgconfig"
# shellcheck disable=SC2046
g++ -o "$work/pc-consumer" "$here/consumer/main.cpp" $(pkg-config --cflags --libs anysock)
"$work/pc-consumer"
echo "install check: 2 passed, 0 failed"
