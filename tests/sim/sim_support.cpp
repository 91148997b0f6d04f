#include "sim_support.hpp"

#include <arpa/inet.h>
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <stdexcept>

namespace anysock::sim_testing {

// ---- streams ------------------------------------------------------------------------------------

uint64_t mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

uint64_t stream_bytes::word(uint64_t index) const { return mix64(mix64(id_) ^ index); }

std::string stream_bytes::at(uint64_t offset, size_t n) const {
  std::string out(n, '\0');
  for (size_t i = 0; i < n;) {
    const uint64_t pos = offset + i;
    const uint64_t w = word(pos / 8);
    for (size_t b = pos % 8; b < 8 && i < n; ++b, ++i) {
      out[i] = static_cast<char>((w >> (8 * b)) & 0xff);
    }
  }
  return out;
}

size_t stream_bytes::first_mismatch(uint64_t offset, std::string_view data) const {
  const std::string expected = at(offset, data.size());
  for (size_t i = 0; i < data.size(); ++i) {
    if (data[i] != expected[i]) return i;
  }
  return std::string_view::npos;
}

// ---- traffic ------------------------------------------------------------------------------------

const char* to_string(outcome o) {
  switch (o) {
    case outcome::not_run:
      return "not_run";
    case outcome::completed:
      return "completed";
    case outcome::clean_error:
      return "clean_error";
    case outcome::wrong_bytes:
      return "wrong_bytes";
    case outcome::bad_end:
      return "bad_end";
  }
  return "?";
}

size_t traffic_report::count(outcome o) const {
  return static_cast<size_t>(
      std::count_if(streams.begin(), streams.end(), [o](const auto& s) { return s.result == o; }));
}

std::string traffic_report::digest() const {
  std::ostringstream out;
  out.precision(9);
  for (size_t i = 0; i < streams.size(); ++i) {
    out << i << ' ' << to_string(streams[i].result) << ' ' << streams[i].finished << ' '
        << streams[i].detail << '\n';
  }
  for (const std::string& p : server_problems) out << "server: " << p << '\n';
  return out.str();
}

namespace {

// The wire protocol: a 24-byte header {magic, kind, id, parameter}, then the stream.
constexpr uint32_t kMagic = 0x53494d54;  // "SIMT"
constexpr size_t kHeaderSize = 24;
// How long servers keep waiting after the last stream's deadline (virtual seconds).
constexpr double kServerMargin = 30.0;
// Acceptors wake this often (virtual seconds) to see whether every client is done.
constexpr double kAcceptPoll = 0.5;
// Writers hand the stream to sendall in slices of these sizes, in turn, so that the boundaries of
// sends, segments and receives move relative to each other.
constexpr size_t kSlices[] = {16384, 1, 65536, 1400, 7, 40000, 4096, 536};

// A point in virtual time by which something must be done.
class deadline {
 public:
  explicit deadline(double at) : at_(at) {}
  double left() const { return at_ - sim::now(); }
  // Sets `s`'s timeout to the time left; anysock::timeout when none is.
  void arm(socket& s) const {
    const double l = left();
    if (l <= 0) throw timeout();
    s.settimeout(l);
  }

 private:
  double at_;
};

void put_u32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void put_u64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
uint64_t get_le(std::string_view in, size_t offset, size_t size) {
  uint64_t v = 0;
  for (size_t i = 0; i < size; ++i) {
    v |= uint64_t{static_cast<unsigned char>(in[offset + i])} << (8 * i);
  }
  return v;
}

// Up to `n` bytes: exactly n, or fewer when the peer ended the stream first.
std::string recv_exact(socket& s, size_t n, const deadline& d) {
  std::string out;
  while (out.size() < n) {
    d.arm(s);
    std::string got = s.recv(std::min<size_t>(n - out.size(), 65536));
    if (got.empty()) break;
    out += got;
  }
  return out;
}

// Sends bytes [0, n) of `gen` in varying slices.
void send_stream(socket& s, const stream_bytes& gen, uint64_t n, const deadline& d) {
  size_t slice = 0;
  for (uint64_t off = 0; off < n;) {
    const size_t k =
        static_cast<size_t>(std::min<uint64_t>(kSlices[slice++ % std::size(kSlices)], n - off));
    d.arm(s);
    s.sendall(gen.at(off, k));
    off += k;
  }
}

// Reads up to `n` bytes of `gen`'s stream and checks each. Returns the bytes read (fewer than n
// at an early end of stream); sets `wrong` to a description at the first wrong byte and stops.
uint64_t receive_stream(socket& s, const stream_bytes& gen, uint64_t n, const deadline& d,
                        std::string& wrong) {
  uint64_t got = 0;
  while (got < n) {
    d.arm(s);
    const std::string piece = s.recv(static_cast<size_t>(std::min<uint64_t>(n - got, 65536)));
    if (piece.empty()) break;
    const size_t bad = gen.first_mismatch(got, piece);
    if (bad != std::string_view::npos) {
      wrong = "byte " + std::to_string(got + bad) + " differs";
      return got + bad;
    }
    got += piece.size();
  }
  return got;
}

uint64_t request_id(uint64_t id, int k) { return mix64(id ^ (uint64_t(k + 1) << 40) ^ 0x5151); }
uint64_t response_id(uint64_t id, int k) { return mix64(id ^ (uint64_t(k + 1) << 40) ^ 0xa2a2); }

struct traffic_state {
  std::vector<stream_plan> plan;
  std::vector<stream_result> results;
  std::vector<sim::host*> clients;                                      // per stream
  std::map<std::string, std::unique_ptr<std::atomic<int>>> unfinished;  // streams per server
  std::mutex problems_lock;  // never held across a call of ours: no thread can block on it
  std::vector<std::string> problems;
  uint16_t port = 0;
  double t0 = 0;               // virtual time the workload started
  double server_deadline = 0;  // absolute virtual time

  void problem(const std::string& what) {
    std::lock_guard<std::mutex> g(problems_lock);
    problems.push_back(what);
  }
};

// ---- the server side --------------------------------------------------------------------------

void serve_upload(socket& c, traffic_state& st, uint64_t id, uint64_t bytes, const deadline& d) {
  std::string wrong;
  const uint64_t got = receive_stream(c, stream_bytes(id), bytes, d, wrong);
  if (!wrong.empty()) return st.problem("upload " + std::to_string(id) + ": " + wrong);
  if (got < bytes) return;  // the client gave up
  d.arm(c);
  if (!c.recv(1).empty()) return st.problem("upload " + std::to_string(id) + ": too many bytes");
  std::string receipt;
  put_u64(receipt, got);
  d.arm(c);
  c.sendall(receipt);
}

void serve_exchanges(socket& c, traffic_state& st, uint64_t id, uint64_t rounds,
                     const deadline& d) {
  for (int k = 0;; ++k) {
    const std::string h = recv_exact(c, 8, d);
    if (h.size() < 8) return;  // the client is done (or gave up)
    if (static_cast<uint64_t>(k) >= rounds) {
      return st.problem("exchanges " + std::to_string(id) + ": more rounds than announced");
    }
    const uint64_t req_len = get_le(h, 0, 4), resp_len = get_le(h, 4, 4);
    if (req_len > (1u << 20) || resp_len > (1u << 20)) {
      return st.problem("exchanges " + std::to_string(id) + ": malformed request header");
    }
    std::string wrong;
    const uint64_t got = receive_stream(c, stream_bytes(request_id(id, k)), req_len, d, wrong);
    if (!wrong.empty()) {
      return st.problem("exchanges " + std::to_string(id) + " request " + std::to_string(k) + ": " +
                        wrong);
    }
    if (got < req_len) return;
    send_stream(c, stream_bytes(response_id(id, k)), resp_len, d);
  }
}

void serve_connection(socket& c, traffic_state& st) {
  const deadline d(st.server_deadline);
  struct closer {  // closes at the end of the handler, whenever its capture is destroyed
    socket& s;
    ~closer() { s.close(); }
  } close_at_end{c};
  try {
    const std::string h = recv_exact(c, kHeaderSize, d);
    if (h.size() < kHeaderSize) return;  // the client gave up before its header arrived
    if (get_le(h, 0, 4) != kMagic) return st.problem("a header with a wrong magic number");
    const uint64_t kind = get_le(h, 4, 4), id = get_le(h, 8, 8), param = get_le(h, 16, 8);
    switch (kind) {
      case 1:
        return serve_upload(c, st, id, param, d);
      case 2:
        return send_stream(c, stream_bytes(id), param, d);
      case 3:
        return serve_exchanges(c, st, id, param, d);
      default:
        return st.problem("a header with an unknown kind");
    }
  } catch (const error&) {
    // The client gave up (reset) or the world is ending: not the server's business.
  }
}

void accept_loop(sim::host& h, std::shared_ptr<traffic_state> st) {
  socket l(AF_INET6, SOCK_STREAM);
  l.bind({"::", st->port});
  l.listen(64);
  std::atomic<int>& unfinished = *st->unfinished.at(h.name());
  while (unfinished.load() > 0 && sim::now() < st->server_deadline) {
    l.settimeout(std::min(kAcceptPoll, std::max(1e-3, st->server_deadline - sim::now())));
    try {
      auto conn = std::make_shared<socket>(l.accept().first);
      h.spawn([conn, st] { serve_connection(*conn, *st); });
    } catch (const timeout&) {
    }
  }
}

// ---- the client side --------------------------------------------------------------------------

std::string header(stream_kind kind, uint64_t id, uint64_t param) {
  std::string h;
  put_u32(h, kMagic);
  put_u32(h, kind == stream_kind::upload ? 1 : kind == stream_kind::download ? 2 : 3);
  put_u64(h, id);
  put_u64(h, param);
  return h;
}

// Runs one stream as its client; fills `r` (completed, or wrong_bytes/bad_end with a reason).
void run_stream(const stream_plan& p, uint16_t port, const deadline& d, stream_result& r) {
  if (d.left() <= 0) throw timeout();
  socket s = create_connection({p.dial, port}, d.left());
  const uint64_t param = p.kind == stream_kind::exchanges ? uint64_t(p.exchanges) : p.bytes;
  d.arm(s);
  s.sendall(header(p.kind, p.id, param));
  std::string wrong;
  auto fail = [&r](outcome o, std::string why) {
    r.result = o;
    r.detail = std::move(why);
  };
  switch (p.kind) {
    case stream_kind::upload: {
      send_stream(s, stream_bytes(p.id), p.bytes, d);
      s.shutdown(SHUT_WR);
      const std::string receipt = recv_exact(s, 8, d);
      if (receipt.size() < 8) return fail(outcome::bad_end, "no receipt");
      if (get_le(receipt, 0, 8) != p.bytes) return fail(outcome::bad_end, "wrong receipt");
      break;
    }
    case stream_kind::download: {
      const uint64_t got = receive_stream(s, stream_bytes(p.id), p.bytes, d, wrong);
      if (!wrong.empty()) return fail(outcome::wrong_bytes, wrong);
      if (got < p.bytes) {
        return fail(outcome::bad_end, "end of stream after " + std::to_string(got) + " bytes");
      }
      break;
    }
    case stream_kind::exchanges:
      for (int k = 0; k < p.exchanges; ++k) {
        const uint64_t m = mix64(p.id * 131 + uint64_t(k));
        const uint32_t req_len = 1 + static_cast<uint32_t>(m % 3000);
        const uint32_t resp_len = 1 + static_cast<uint32_t>((m >> 32) % 9000);
        std::string h;
        put_u32(h, req_len);
        put_u32(h, resp_len);
        d.arm(s);
        s.sendall(h);
        send_stream(s, stream_bytes(request_id(p.id, k)), req_len, d);
        const uint64_t got =
            receive_stream(s, stream_bytes(response_id(p.id, k)), resp_len, d, wrong);
        if (!wrong.empty())
          return fail(outcome::wrong_bytes, "response " + std::to_string(k) + ": " + wrong);
        if (got < resp_len)
          return fail(outcome::bad_end, "response " + std::to_string(k) + " cut short");
      }
      s.shutdown(SHUT_WR);
      break;
  }
  d.arm(s);
  if (!s.recv(1).empty()) return fail(outcome::bad_end, "bytes after the end");
  if (d.left() < 0) return fail(outcome::bad_end, "finished after its deadline");
  r.result = outcome::completed;
}

void client(size_t index, std::shared_ptr<traffic_state> st) {
  const stream_plan& p = st->plan[index];
  stream_result& r = st->results[index];
  const double begin = st->t0 + p.start;
  if (begin > sim::now()) sim::sleep(begin - sim::now());
  try {
    run_stream(p, st->port, deadline(begin + p.deadline), r);
  } catch (const error& e) {  // timeout, reset, refused, ...
    r.result = outcome::clean_error;
    r.detail = e.what();
  }
  r.finished = sim::now();
  --*st->unfinished.at(p.server);
}

}  // namespace

traffic_report run_traffic(sim::world& w, const std::vector<stream_plan>& plan, uint16_t port,
                           std::vector<world_event> events) {
  auto st = std::make_shared<traffic_state>();
  st->plan = plan;
  st->results.resize(plan.size());
  st->port = port;
  st->t0 = w.now();
  double last = st->t0;
  for (const stream_plan& p : plan) {
    auto& n = st->unfinished[p.server];
    if (!n) n = std::make_unique<std::atomic<int>>(0);
    ++*n;
    last = std::max(last, st->t0 + p.start + p.deadline);
  }
  st->server_deadline = last + kServerMargin;
  for (const auto& [name, n] : st->unfinished) {
    sim::host& h = w.get(name);
    h.spawn([&h, st] { accept_loop(h, st); });
  }
  for (size_t i = 0; i < plan.size(); ++i) {
    w.get(plan[i].client).spawn([i, st] { client(i, st); });
  }
  std::stable_sort(events.begin(), events.end(),
                   [](const world_event& a, const world_event& b) { return a.at < b.at; });
  for (const world_event& e : events) {
    if (st->t0 + e.at > w.now()) w.run_for(st->t0 + e.at - w.now());
    e.apply(w);
  }
  w.run();
  traffic_report report;
  report.streams = st->results;
  std::lock_guard<std::mutex> g(st->problems_lock);
  report.server_problems = st->problems;
  return report;
}

// ---- captures -----------------------------------------------------------------------------------

capture_file read_pcap(const std::string& path) {
  const std::string data = read_file(path);
  if (data.size() < 24) throw std::runtime_error(path + ": too short for a pcap header");
  const uint32_t magic = static_cast<uint32_t>(get_le(data, 0, 4));
  bool swapped = false, nanos = false;
  switch (magic) {
    case 0xa1b2c3d4:
      break;
    case 0xd4c3b2a1:
      swapped = true;
      break;
    case 0xa1b23c4d:
      nanos = true;
      break;
    case 0x4d3cb2a1:
      swapped = nanos = true;
      break;
    default:
      throw std::runtime_error(path + ": not a pcap file");
  }
  auto u32 = [&](size_t off) {
    uint32_t v = static_cast<uint32_t>(get_le(data, off, 4));
    return swapped ? __builtin_bswap32(v) : v;
  };
  capture_file out;
  out.link_type = u32(20);
  for (size_t off = 24; off < data.size();) {
    if (data.size() - off < 16) throw std::runtime_error(path + ": a record header is cut off");
    const uint32_t sec = u32(off), frac = u32(off + 4), incl = u32(off + 8);
    if (data.size() - off - 16 < incl) throw std::runtime_error(path + ": a record is cut off");
    captured_packet p;
    p.time = sec + frac * (nanos ? 1e-9 : 1e-6);
    p.bytes = data.substr(off + 16, incl);
    out.packets.push_back(std::move(p));
    off += 16 + incl;
  }
  return out;
}

std::optional<packet_summary> summarize(std::string_view pkt) {
  auto u8 = [&](size_t off) { return static_cast<uint8_t>(pkt[off]); };
  auto be16 = [&](size_t off) { return static_cast<uint16_t>(u8(off) << 8 | u8(off + 1)); };
  if (pkt.empty()) return std::nullopt;
  packet_summary s;
  s.version = u8(0) >> 4;
  char text[INET6_ADDRSTRLEN];
  size_t transport = 0, end = pkt.size();
  if (s.version == 4) {
    if (pkt.size() < 20) return std::nullopt;
    const size_t ihl = size_t(u8(0) & 0x0f) * 4;
    if (ihl < 20 || pkt.size() < ihl) return std::nullopt;
    s.protocol = u8(9);
    ::inet_ntop(AF_INET, pkt.data() + 12, text, sizeof text);
    s.src = text;
    ::inet_ntop(AF_INET, pkt.data() + 16, text, sizeof text);
    s.dst = text;
    end = std::min<size_t>(pkt.size(), be16(2));
    if ((be16(6) & 0x1fff) != 0) return s;  // a later fragment: no transport header
    transport = ihl;
  } else if (s.version == 6) {
    if (pkt.size() < 40) return std::nullopt;
    ::inet_ntop(AF_INET6, pkt.data() + 8, text, sizeof text);
    s.src = text;
    ::inet_ntop(AF_INET6, pkt.data() + 24, text, sizeof text);
    s.dst = text;
    end = std::min<size_t>(pkt.size(), 40 + size_t{be16(4)});
    int next = u8(6);
    size_t off = 40;
    while (next == 0 || next == 43 || next == 60 || next == 44) {
      if (pkt.size() < off + 8) return std::nullopt;
      if (next == 44 && (be16(off + 2) & 0xfff8) != 0) {
        s.protocol = u8(off);
        return s;  // a later fragment
      }
      const size_t len = next == 44 ? 8 : (size_t{u8(off + 1)} + 1) * 8;
      next = u8(off);
      off += len;
    }
    s.protocol = next;
    transport = off;
  } else {
    return std::nullopt;
  }
  if (s.protocol == IPPROTO_TCP && end >= transport + 20) {
    s.src_port = be16(transport);
    s.dst_port = be16(transport + 2);
    s.tcp_flags = u8(transport + 13);
    const size_t doff = size_t(u8(transport + 12) >> 4) * 4;
    s.payload = end > transport + doff ? end - transport - doff : 0;
  } else if (s.protocol == IPPROTO_UDP && end >= transport + 8) {
    s.src_port = be16(transport);
    s.dst_port = be16(transport + 2);
    s.payload = end - transport - 8;
  }
  return s;
}

// ---- files --------------------------------------------------------------------------------------

temp_dir::temp_dir() {
  std::string templ = (std::filesystem::temp_directory_path() / "anysock-sim-XXXXXX").string();
  if (::mkdtemp(templ.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = templ;
}

temp_dir::~temp_dir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::string self_path() {
  std::error_code ec;
  const auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string("<this test program>") : p.string();
}

}  // namespace anysock::sim_testing
