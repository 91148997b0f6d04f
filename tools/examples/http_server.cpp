// A small HTTP/1.1 server on anysock: real clients (curl, a browser, wget) talking to a program
// written on the socket API, over whichever backend ANYSOCK_BACKEND names, e.g. an lwIP host on a
// TAP device:
//
//   ANYSOCK_BACKEND=lwip+tap:iface=as_tap0,ip=10.77.1.2/24 http_server -d /srv 10.77.1.2 8080
//   curl http://10.77.1.2:8080/bytes/1000000 | sha256sum
//
// Usage: http_server [-d DIR] [-n CONNECTIONS] [HOST [PORT]]   (HOST '' = every address,
// PORT 8080; -n: exit after serving that many connections)
//
//   GET  /              a small HTML page
//   GET  /bytes/N       N bytes of a fixed pseudo-random stream, generated as they are sent
//   GET  /PATH          the file DIR/PATH (with -d)
//   PUT  /PATH          stores the body as DIR/PATH (with -d)
//   POST /ANY, PUT /ANY (without -d): reads the body and answers its size and SHA-256
//
// Bodies stream in 64 KiB pieces both ways (Content-Length or chunked requests; Expect:
// 100-continue is answered), so their size is not limited by memory. Each request prints one line
// on stdout: the method, path, status, body bytes and the SHA-256 of the body sent or received,
// which `sha256sum` on the client's side must match. One thread per connection; every response
// closes its connection.
#include <anysock/socket.hpp>
#include <atomic>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "example_support.hpp"
#include "sha256.hpp"

namespace {

constexpr size_t kPiece = 64 * 1024;

std::mutex g_out;  // one log line at a time

void log_line(const std::string& line) {
  std::lock_guard lk(g_out);
  std::cout << line << std::endl;
}

// Reads a connection through a buffer: lines of the request head, then body bytes.
class reader {
 public:
  explicit reader(anysock::socket& s) : s_(s), buf_(kPiece) {}

  /// One line without its CRLF; nullopt at end of stream.
  std::optional<std::string> line() {
    std::string out;
    while (true) {
      if (pos_ == end_ && !fill()) return out.empty() ? std::nullopt : std::optional(out);
      const char* start = buf_.data() + pos_;
      const void* nl = std::memchr(start, '\n', end_ - pos_);
      if (nl == nullptr) {
        out.append(start, end_ - pos_);
        pos_ = end_;
        if (out.size() > 16384) throw std::runtime_error("request line too long");
        continue;
      }
      const size_t n = static_cast<const char*>(nl) - start;
      out.append(start, n);
      pos_ += n + 1;
      if (!out.empty() && out.back() == '\r') out.pop_back();
      return out;
    }
  }

  /// Up to `max` bytes (at least one unless the stream ended).
  std::string_view some(size_t max) {
    if (pos_ == end_ && !fill()) return {};
    const size_t n = std::min(max, end_ - pos_);
    std::string_view piece(buf_.data() + pos_, n);
    pos_ += n;
    return piece;
  }

 private:
  bool fill() {
    pos_ = 0;
    end_ = s_.recv_into(buf_.data(), buf_.size());
    return end_ > 0;
  }

  anysock::socket& s_;
  std::vector<char> buf_;
  size_t pos_ = 0, end_ = 0;
};

struct request {
  std::string method, path;
  std::optional<uint64_t> content_length;
  bool chunked = false;
  bool expect_continue = false;
};

std::string lower(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

std::optional<uint64_t> number(std::string_view text, int base = 10) {
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\r')) text.remove_suffix(1);
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value, base);
  if (ec != std::errc() || text.empty()) return std::nullopt;
  if (base == 16) return value;  // chunk sizes may carry extensions after ';'
  if (end != text.data() + text.size()) return std::nullopt;
  return value;
}

std::optional<request> read_head(reader& in) {
  std::optional<std::string> first = in.line();
  if (!first) return std::nullopt;
  request r;
  const size_t sp1 = first->find(' ');
  const size_t sp2 = first->find(' ', sp1 + 1);
  if (sp1 == std::string::npos || sp2 == std::string::npos) throw std::runtime_error("bad request");
  r.method = first->substr(0, sp1);
  r.path = first->substr(sp1 + 1, sp2 - sp1 - 1);
  while (true) {
    std::optional<std::string> h = in.line();
    if (!h) throw std::runtime_error("connection closed in the request head");
    if (h->empty()) break;
    const size_t colon = h->find(':');
    if (colon == std::string::npos) continue;
    const std::string name = lower(h->substr(0, colon));
    const std::string value = lower(h->substr(colon + 1));
    if (name == "content-length") r.content_length = number(value);
    if (name == "transfer-encoding" && value.find("chunked") != std::string::npos) r.chunked = true;
    if (name == "expect" && value.find("100-continue") != std::string::npos) {
      r.expect_continue = true;
    }
  }
  return r;
}

// Calls sink(piece) for every piece of the request body; returns its length.
template <class Sink>
uint64_t read_body(reader& in, const request& r, Sink sink) {
  uint64_t total = 0;
  auto take = [&](uint64_t n) {
    while (n > 0) {
      std::string_view piece = in.some(static_cast<size_t>(std::min<uint64_t>(n, kPiece)));
      if (piece.empty()) throw std::runtime_error("connection closed in the body");
      sink(piece);
      n -= piece.size();
      total += piece.size();
    }
  };
  if (r.chunked) {
    while (true) {
      std::optional<std::string> size_line = in.line();
      if (!size_line) throw std::runtime_error("connection closed in a chunk");
      std::optional<uint64_t> n = number(*size_line, 16);
      if (!n) throw std::runtime_error("bad chunk size");
      if (*n == 0) {
        while (true) {  // trailers, up to the empty line
          std::optional<std::string> t = in.line();
          if (!t || t->empty()) break;
        }
        break;
      }
      take(*n);
      in.line();  // the CRLF after the chunk
    }
  } else if (r.content_length) {
    take(*r.content_length);
  }
  return total;
}

void respond_head(anysock::socket& s, int status, std::string_view reason, uint64_t length,
                  std::string_view type) {
  std::string head = "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason) + "\r\n";
  head += "Content-Length: " + std::to_string(length) + "\r\n";
  head += "Content-Type: " + std::string(type) + "\r\n";
  head += "Connection: close\r\nServer: anysock-http-example\r\n\r\n";
  s.sendall(head);
}

void respond(anysock::socket& s, int status, std::string_view reason, std::string_view body,
             std::string_view type = "text/plain") {
  respond_head(s, status, reason, body.size(), type);
  s.sendall(body);
}

// A path inside the served directory, or nullopt for one that would leave it.
std::optional<std::string> file_for(const std::string& dir, const std::string& path) {
  if (dir.empty() || path.size() < 2 || path[0] != '/') return std::nullopt;
  if (path.find("..") != std::string::npos || path.find('\0') != std::string::npos) {
    return std::nullopt;
  }
  return dir + path;
}

// GET /bytes/N: xorshift64 blocks, hashed as they go out.
void send_generated(anysock::socket& s, uint64_t n, examples::sha256& hash) {
  respond_head(s, 200, "OK", n, "application/octet-stream");
  std::vector<uint64_t> block(kPiece / 8);
  uint64_t x = 0x9e3779b97f4a7c15ull;
  while (n > 0) {
    for (uint64_t& w : block) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      w = x;
    }
    const size_t len = static_cast<size_t>(std::min<uint64_t>(n, kPiece));
    hash.update(block.data(), len);
    s.sendall(std::string_view(reinterpret_cast<const char*>(block.data()), len));
    n -= len;
  }
}

void serve(anysock::socket conn, const std::string& dir) {
  reader in(conn);
  std::optional<request> r = read_head(in);
  if (!r) return;
  examples::sha256 hash;
  int status = 200;
  if (r->expect_continue && (r->method == "PUT" || r->method == "POST")) {
    conn.sendall("HTTP/1.1 100 Continue\r\n\r\n");
  }
  if (r->method == "GET" || r->method == "HEAD") {
    const bool head_only = r->method == "HEAD";
    std::optional<std::string> file = file_for(dir, r->path);
    if (r->path == "/") {
      const std::string page =
          "<!doctype html><title>anysock</title><h1>Hello from anysock</h1>"
          "<p>This page was served by an HTTP server written on anysock's socket API.</p>\n";
      hash.update(page.data(), page.size());
      if (head_only) {
        respond_head(conn, 200, "OK", page.size(), "text/html");
      } else {
        respond(conn, 200, "OK", page, "text/html");
      }
    } else if (r->path.rfind("/bytes/", 0) == 0 && number(r->path.substr(7)) && !head_only) {
      send_generated(conn, *number(r->path.substr(7)), hash);
    } else if (file) {
      std::ifstream f(*file, std::ios::binary);
      if (!f) {
        status = 404;
        respond(conn, 404, "Not Found", "not found\n");
      } else {
        f.seekg(0, std::ios::end);
        const auto size = static_cast<uint64_t>(f.tellg());
        f.seekg(0);
        respond_head(conn, 200, "OK", size, "application/octet-stream");
        std::vector<char> buf(kPiece);
        while (!head_only && f) {
          f.read(buf.data(), static_cast<std::streamsize>(buf.size()));
          const auto got = static_cast<size_t>(f.gcount());
          if (got == 0) break;
          hash.update(buf.data(), got);
          conn.sendall(std::string_view(buf.data(), got));
        }
      }
    } else {
      status = 404;
      respond(conn, 404, "Not Found", "not found\n");
    }
  } else if (r->method == "PUT" || r->method == "POST") {
    std::optional<std::string> file = r->method == "PUT" ? file_for(dir, r->path) : std::nullopt;
    std::ofstream out;
    if (file) out.open(*file, std::ios::binary | std::ios::trunc);
    const uint64_t n = read_body(in, *r, [&](std::string_view piece) {
      hash.update(piece.data(), piece.size());
      if (out.is_open()) out.write(piece.data(), static_cast<std::streamsize>(piece.size()));
    });
    status = file ? 201 : 200;
    respond(conn, status, file ? "Created" : "OK",
            std::to_string(n) + " bytes, sha256 " + hash.hex() + "\n");
  } else {
    status = 405;
    respond(conn, 405, "Method Not Allowed", "GET, HEAD, PUT or POST\n");
  }
  log_line(r->method + " " + r->path + " " + std::to_string(status) + " " +
           std::to_string(hash.bytes()) + " bytes sha256 " + hash.hex());
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir;
  long connections = -1;
  std::vector<char*> rest{argv[0]};
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if ((a == "-d" || a == "-n") && i + 1 < argc) {
      if (a == "-d") dir = argv[++i];
      if (a == "-n") connections = std::strtol(argv[++i], nullptr, 10);
    } else if (a.size() > 1 && a[0] == '-') {
      std::cerr << "usage: " << argv[0] << " [-d DIR] [-n CONNECTIONS] [HOST [PORT]]\n";
      return 2;
    } else {
      rest.push_back(argv[i]);
    }
  }
  const bool port_given = rest.size() > 2;
  auto [host, port] = examples::parse_host_port(static_cast<int>(rest.size()), rest.data(), "");
  if (!port_given) port = 8080;
  return examples::run(argv[0], [&, host = host, port = port] {
    const int family = host.find(':') != std::string::npos ? AF_INET6 : AF_INET;
    anysock::socket s(family, SOCK_STREAM);
    s.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1);
    s.bind({host, port});
    s.listen(16);
    log_line("listening on " + examples::repr(s.getsockname()));
    std::vector<std::thread> workers;
    for (long served = 0; connections < 0 || served < connections; ++served) {
      auto [conn, addr] = s.accept();
      workers.emplace_back([c = std::move(conn), &dir]() mutable {
        try {
          serve(std::move(c), dir);
        } catch (const std::exception& e) {
          log_line(std::string("error: ") + e.what());
        }
      });
      if (connections < 0) workers.back().detach(), workers.pop_back();
    }
    for (auto& w : workers) w.join();
    return 0;
  });
}
