// The "lwip+sim" backend kind: lwIP hosts on the in-memory link, made from a spec such as
// "lwip+sim:host=a,link=lab,ip=10.9.0.1/24,ip6=fd00:9::1/64,mtu=65535,pcap=a.pcap". Also the
// engine-wide functions of anysock/lwip.hpp.
#include <arpa/inet.h>

#include <stdexcept>

#include "../../drivers/sim/sim_link.hpp"
#include "anysock/lwip.hpp"
#include "anysock_lwip_port.h"
#include "host.hpp"

namespace anysock::lwip_detail {
namespace {

int prefix_of(const std::string& value, int max, const std::string& key) {
  auto slash = value.find('/');
  if (slash == std::string::npos) return max == 32 ? 24 : 64;
  try {
    size_t used = 0;
    int p = std::stoi(value.substr(slash + 1), &used);
    if (used == value.size() - slash - 1 && p >= 0 && p <= max) return p;
  } catch (const std::exception&) {
  }
  throw std::invalid_argument("lwip+sim: bad prefix length in " + key + "=" + value);
}

void check_ip4(const std::string& key, const std::string& value, bool with_prefix) {
  std::string addr = value.substr(0, value.find('/'));
  in_addr a{};
  if (inet_pton(AF_INET, addr.c_str(), &a) != 1 || (!with_prefix && addr != value)) {
    throw std::invalid_argument("lwip+sim: " + key + "=" + value + " is not an IPv4 address" +
                                (with_prefix ? " (a.b.c.d/len)" : ""));
  }
  if (with_prefix) prefix_of(value, 32, key);
}

void check_ip6(const std::string& value) {
  std::string addr = value.substr(0, value.find('/'));
  in6_addr a{};
  if (inet_pton(AF_INET6, addr.c_str(), &a) != 1) {
    throw std::invalid_argument("lwip+sim: ip6=" + value + " is not an IPv6 address (addr/len)");
  }
  prefix_of(value, 128, "ip6");
}

std::shared_ptr<backend> make_sim_host(const backend_spec& spec) {
  host_config cfg;
  bool engine_given = false;
  engine::mode mode = engine::mode::thread;
  bool only_identity = true;  // only link/host keys: may name an existing host
  for (const auto& [key, value] : spec.params) {
    if (key == "host") {
      if (value.empty()) throw std::invalid_argument("lwip+sim: host= needs a name");
      cfg.name = value;
      continue;
    }
    if (key == "link") {
      if (value.empty()) throw std::invalid_argument("lwip+sim: link= needs a name");
      cfg.link = value;
      continue;
    }
    only_identity = false;
    if (key == "ip") {
      check_ip4(key, value, true);
      cfg.ip = value;
    } else if (key == "gw") {
      check_ip4(key, value, false);
      cfg.gw = value;
    } else if (key == "ip6") {
      check_ip6(value);
      cfg.ip6.push_back(value);
    } else if (key == "mtu") {
      size_t used = 0;
      long mtu = -1;
      try {
        mtu = std::stol(value, &used);
      } catch (const std::exception&) {
      }
      if (used != value.size() || mtu < 1280 || mtu > 65535) {
        throw std::invalid_argument("lwip+sim: mtu=" + value + " must be 1280..65535");
      }
      cfg.mtu = static_cast<size_t>(mtu);
    } else if (key == "mac") {
      unsigned m[6];
      char tail = 0;
      if (std::sscanf(value.c_str(), "%x:%x:%x:%x:%x:%x%c", &m[0], &m[1], &m[2], &m[3], &m[4],
                      &m[5], &tail) != 6) {
        throw std::invalid_argument("lwip+sim: mac=" + value + " is not xx:xx:xx:xx:xx:xx");
      }
      cfg.mac = value;
    } else if (key == "pcap") {
      if (value.empty()) throw std::invalid_argument("lwip+sim: pcap= needs a file name");
      cfg.pcap = value;
    } else if (key == "engine") {
      if (value != "thread" && value != "poll") {
        throw std::invalid_argument("lwip+sim: engine=" + value + " (expected thread or poll)");
      }
      mode = value == "thread" ? engine::mode::thread : engine::mode::poll;
      engine_given = true;
    } else {
      throw std::invalid_argument("lwip+sim: unknown key '" + key +
                                  "' (keys: host, link, ip, gw, ip6, mtu, mac, pcap, engine)");
    }
  }
  std::shared_ptr<engine> eng = engine::acquire(mode, engine_given);
  std::unique_lock lk(eng->mutex());
  sim_link& link = eng->link(cfg.link);
  if (!cfg.name.empty()) {
    if (host* existing = link.find_name(cfg.name)) {
      if (!only_identity) {
        throw std::invalid_argument("lwip+sim: host '" + cfg.name + "' already exists on link '" +
                                    cfg.link + "' (name it alone to use it)");
      }
      if (auto alive = existing->weak_from_this().lock()) return alive;
    }
  }
  // The smallest host number free on this link gives the default name and addresses.
  int n = 1;
  auto taken = [&](int k) {
    for (host* h : link.hosts()) {
      if (h->config().name == "host" + std::to_string(k)) return true;
      in_addr a{};
      std::string want = "10." + std::to_string(link.number()) + "." + std::to_string(k >> 8) +
                         "." + std::to_string(k & 0xff);
      inet_pton(AF_INET, want.c_str(), &a);
      if (h->owns_ip4(a.s_addr)) return true;
    }
    return false;
  };
  while (taken(n)) ++n;
  if (n > 65534) throw std::invalid_argument("lwip+sim: too many hosts on link " + cfg.link);
  if (cfg.name.empty()) cfg.name = "host" + std::to_string(n);
  const std::string L = std::to_string(link.number());
  if (cfg.ip.empty()) {
    cfg.ip = "10." + L + "." + std::to_string(n >> 8) + "." + std::to_string(n & 0xff) + "/16";
  }
  if (cfg.ip6.empty()) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "fd00:0:0:%x::%x/64", link.number(), n);
    cfg.ip6.emplace_back(buf);
  }
  if (cfg.mac.empty()) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "02:00:00:%02x:%02x:%02x", link.number() & 0xff, (n >> 8) & 0xff,
                  n & 0xff);
    cfg.mac = buf;
  }
  std::string text = "lwip+sim:host=" + cfg.name + ",link=" + cfg.link;
  auto h = std::make_shared<host>(eng, cfg, text);
  return h;
}

}  // namespace

backend_factory sim_factory() { return &make_sim_host; }

}  // namespace anysock::lwip_detail

namespace anysock::lwip {

counters read_counters() {
  auto eng = lwip_detail::engine::running();
  if (!eng) return {};
  std::unique_lock lk(eng->mutex());
  return eng->read_counters();
}

int poll() {
  auto eng = lwip_detail::engine::running();
  return eng ? eng->poll_once() : 0;
}

void set_memory_limit(size_t bytes) {
  auto eng = lwip_detail::engine::running();
  if (!eng) {
    anysock_lwip_set_heap_limit(bytes);
    return;
  }
  std::unique_lock lk(eng->mutex());
  anysock_lwip_set_heap_limit(bytes);
}

std::string leak_report() {
  auto eng = lwip_detail::engine::running();
  return eng ? eng->leak_report() : std::string();
}

}  // namespace anysock::lwip
