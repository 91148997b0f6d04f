// What the examples need beyond anysock itself: Python's repr() of the values they print, the
// optional [HOST [PORT]] arguments, and a main() wrapper that reports an uncaught error the way a
// Python traceback would end (message on stderr, exit status 1).
#pragma once

#include <anysock/socket.hpp>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <string>
#include <string_view>

namespace examples {

/// Python's repr() of a str/bytes value: quoted, with \\, \t, \n, \r and unprintable bytes
/// escaped. Single quotes unless the text holds a ' and no ".
inline std::string repr(std::string_view data) {
  const bool has_single = data.find('\'') != std::string_view::npos;
  const char quote = (has_single && data.find('"') == std::string_view::npos) ? '"' : '\'';
  std::string out(1, quote);
  for (unsigned char c : data) {
    if (c == '\\' || c == static_cast<unsigned char>(quote)) {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c < 0x20 || c >= 0x7f) {
      char hex[5];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    } else {
      out += static_cast<char>(c);
    }
  }
  out += quote;
  return out;
}

/// Python's repr() of a socket address tuple: ('127.0.0.1', 50007) for IPv4,
/// ('::1', 50007, 0, 0) for IPv6 (the tuple is told apart by the ':' in the host).
inline std::string repr(const anysock::address& a) {
  // Appended piece by piece: "(" + std::string trips GCC 12's -Wrestrict false positive at -O3.
  std::string out = "(";
  out += repr(a.host);
  out += ", " + std::to_string(a.port);
  if (a.host.find(':') != std::string::npos) {
    out += ", " + std::to_string(a.flowinfo) + ", " + std::to_string(a.scope_id);
  }
  return out + ")";
}

/// The program's [HOST [PORT]] arguments.
struct host_port {
  std::string host;
  uint16_t port = 0;
};

/// Reads `prog [HOST [PORT]]`, defaulting to `default_host` and Python's port 50007. On a bad
/// argument prints the usage and exits with status 2.
inline host_port parse_host_port(int argc, char** argv, std::string default_host) {
  host_port hp{std::move(default_host), 50007};
  auto usage = [&] {
    std::cerr << "usage: " << argv[0] << " [HOST [PORT]]   (PORT defaults to 50007)\n";
    std::exit(2);
  };
  if (argc > 3) usage();
  if (argc > 1) hp.host = argv[1];
  if (argc > 2) {
    std::string_view text = argv[2];
    unsigned value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size() || text.empty() || value > 65535) {
      usage();
    }
    hp.port = static_cast<uint16_t>(value);
  }
  return hp;
}

/// Runs `body`, turning an escaped exception into "<prog>: <what>" on stderr and exit status 1.
template <class Body>
int run(const char* prog, Body body) {
  try {
    return body();
  } catch (const std::exception& e) {
    std::cerr << prog << ": " << e.what() << '\n';
    return 1;
  }
}

}  // namespace examples
