#!/usr/bin/env bash
# Runs one pair of example programs (tools/examples) and checks what they print.
#
#   run_echo_pair.sh SERVER CLIENT SERVER_HOST CLIENT_HOST
#     starts SERVER on SERVER_HOST and a free port, waits until that port listens, runs CLIENT
#     against CLIENT_HOST and the port, and checks: the client exits 0 and prints exactly
#     "Received 'Hello, world'"; the server prints "Connected by (<client address>)" and exits 0 by
#     itself (it serves one connection).
#   run_echo_pair.sh --refused CLIENT CLIENT_HOST EXPECTED_TEXT
#     runs CLIENT against a port where nothing listens: it must exit 1 and print EXPECTED_TEXT
#     (on stdout or stderr).
#
# Kernel backend only: readiness is read from /proc/net/tcp{,6}. Every wait is bounded and the
# server is killed on any way out. Exit 77 (a CTest skip) when the host has no IPv6 loopback and
# an IPv6 address was asked for.
set -euo pipefail

work="$(mktemp -d)"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then kill "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  for f in "$work"/*; do [ -s "$f" ] && { echo "--- ${f##*/}:" >&2; cat "$f" >&2; }; done
  exit 1
}

needs_ipv6() { case "$1" in *:*) return 0 ;; *) return 1 ;; esac; }
have_ipv6_loopback() { grep -qs '^00000000000000000000000000000001 ' /proc/net/if_inet6; }

# The TCP sockets of this host whose local port is $1 and state $2 ('' = any state).
sockets_on_port() {
  local hex
  hex="$(printf '%04X' "$1")"
  cat /proc/net/tcp /proc/net/tcp6 2>/dev/null |
    awk -v p=":$hex" -v st="$2" 'NR > 1 && substr($2, length($2) - 4) == p && (st == "" || $4 == st)'
}

# A port below the ephemeral range that no TCP socket of this host uses right now.
pick_port() {
  local port
  for _ in $(seq 100); do
    port=$((20000 + RANDOM % 12000))
    if [ -z "$(sockets_on_port "$port" '')" ]; then echo "$port"; return 0; fi
  done
  fail "no free port found"
}

[ -r /proc/net/tcp ] || fail "/proc/net/tcp is not readable: this driver needs Linux"

if [ "$1" = "--refused" ]; then
  client="$2" client_host="$3" expected="$4"
  if needs_ipv6 "$client_host" && ! have_ipv6_loopback; then echo "no IPv6 loopback"; exit 77; fi
  port="$(pick_port)"
  status=0
  timeout 20 "$client" "$client_host" "$port" >"$work/client.out" 2>"$work/client.err" || status=$?
  [ "$status" -eq 1 ] || fail "client exited with $status, expected 1"
  cat "$work/client.out" "$work/client.err" | grep -qF -- "$expected" ||
    fail "client did not print '$expected'"
  echo "ok: $(cat "$work/client.out" "$work/client.err")"
  exit 0
fi

server="$1" client="$2" server_host="$3" client_host="$4"
if { needs_ipv6 "$server_host" || needs_ipv6 "$client_host"; } && ! have_ipv6_loopback; then
  echo "no IPv6 loopback"
  exit 77
fi

# Start the server; a port taken between pick_port and bind (EADDRINUSE) is retried elsewhere.
listening=0
for attempt in 1 2 3 4 5; do
  port="$(pick_port)"
  "$server" "$server_host" "$port" >"$work/server.out" 2>"$work/server.err" &
  server_pid=$!
  for _ in $(seq 200); do  # up to 10 s
    if [ -n "$(sockets_on_port "$port" 0A)" ]; then listening=1; break; fi
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.05
  done
  [ "$listening" = 1 ] && break
  if kill -0 "$server_pid" 2>/dev/null; then fail "server did not listen on port $port within 10 s"; fi
  server_status=0
  wait "$server_pid" || server_status=$?
  server_pid=""
  grep -q 'Address already in use' "$work/server.err" ||
    fail "server exited with $server_status before listening (attempt $attempt)"
done
[ "$listening" = 1 ] || fail "server could not bind a free port in 5 attempts"

client_status=0
timeout 20 "$client" "$client_host" "$port" >"$work/client.out" 2>"$work/client.err" ||
  client_status=$?
[ "$client_status" -eq 0 ] || fail "client exited with $client_status"
[ "$(cat "$work/client.out")" = "Received 'Hello, world'" ] ||
  fail "client printed '$(cat "$work/client.out")', expected 'Received 'Hello, world''"

# The server serves one connection and exits by itself: give it 10 s.
for _ in $(seq 200); do
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.05
done
kill -0 "$server_pid" 2>/dev/null && fail "server still running 10 s after its client finished"
server_status=0
wait "$server_pid" || server_status=$?
server_pid=""
[ "$server_status" -eq 0 ] || fail "server exited with $server_status"
# ('127.0.0.1', 41234) for IPv4, ('::1', 41234, 0, 0) for IPv6.
grep -Eqx "Connected by \('(127\.0\.0\.1|::1)', [0-9]+(, 0, [0-9]+)?\)" "$work/server.out" ||
  fail "server printed '$(cat "$work/server.out")', expected 'Connected by (<loopback>, <port>)'"

echo "ok: server: $(cat "$work/server.out"); client: $(cat "$work/client.out")"
