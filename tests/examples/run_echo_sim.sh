#!/usr/bin/env bash
# Runs tools/examples/echo_sim (the echo pair on two lwIP hosts of the in-memory link) and checks
# that it exits 0, that the client got "Hello, world" back and that frames crossed the link.
#
#   run_echo_sim.sh ECHO_SIM
set -euo pipefail

out="$(mktemp)"
trap 'rm -f "$out"' EXIT
fail() {
  echo "FAIL: $*" >&2
  cat "$out" >&2
  exit 1
}

status=0
timeout 30 "$1" >"$out" 2>&1 || status=$?
[ "$status" -eq 0 ] || fail "echo_sim exited with $status, expected 0"
grep -q "^client .*received 'Hello, world' (12 bytes)$" "$out" ||
  fail "the client did not print that it received 'Hello, world'"
grep -q "^server: received 'Hello, world' (12 bytes), sent it back$" "$out" ||
  fail "the server did not print that it echoed 'Hello, world'"
# Each host put frames on the link: "host NAME (...): N frames / M bytes out" with N > 0.
for host in server client; do
  grep -Eq "^  host $host \(.*\): [1-9][0-9]* frames / [0-9]+ bytes out" "$out" ||
    fail "host $host put no frames on the link"
done
echo "ok:"
cat "$out"
