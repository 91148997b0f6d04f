// The "lwip+sim" backend kind: lwIP hosts on the in-memory link, made from a spec such as
// "lwip+sim:host=a,link=lab,ip=10.9.0.1/24,ip6=fd00:9::1/64,mtu=65535,pcap=a.pcap". Also the
// engine-wide functions of anysock/lwip.hpp.
#include <arpa/inet.h>

#include <stdexcept>

#include "../../drivers/sim/sim_link.hpp"
#include "anysock/lwip.hpp"
#include "anysock_lwip_port.h"
#include "host.hpp"
#include "spec_values.hpp"

namespace anysock::lwip_detail {
namespace {

constexpr std::string_view kKind = "lwip+sim";

std::shared_ptr<backend> make_sim_host(const backend_spec& spec) {
  host_config cfg;
  bool engine_given = false;
  engine::mode mode = engine::mode::thread;
  bool only_identity = true;  // only link/host keys: may name an existing host
  bool mode_given = false;
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
      check_ip4(kKind, key, value, true);
      cfg.ip = value;
    } else if (key == "gw") {
      check_ip4(kKind, key, value, false);
      cfg.gw = value;
    } else if (key == "ip6") {
      check_ip6(kKind, value);
      cfg.ip6.push_back(value);
    } else if (key == "mtu") {
      cfg.mtu = parse_mtu(kKind, value, 1280, 65535);
    } else if (key == "mac") {
      check_mac(kKind, value);
      cfg.mac = value;
    } else if (key == "pcap") {
      if (value.empty()) throw std::invalid_argument("lwip+sim: pcap= needs a file name");
      cfg.pcap = value;
    } else if (key == "pcap_mode") {
      cfg.pcap_mode = parse_file_mode(kKind, key, value);
      mode_given = true;
    } else if (key == "engine") {
      if (value != "thread" && value != "poll") {
        throw std::invalid_argument("lwip+sim: engine=" + value + " (expected thread or poll)");
      }
      mode = value == "thread" ? engine::mode::thread : engine::mode::poll;
      engine_given = true;
    } else {
      throw std::invalid_argument(
          "lwip+sim: unknown key '" + key +
          "' (keys: host, link, ip, gw, ip6, mtu, mac, pcap, pcap_mode, engine)");
    }
  }
  if (mode_given && cfg.pcap.empty()) {
    throw std::invalid_argument("lwip+sim: pcap_mode= needs pcap= (the capture file it is for)");
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
  lwip_detail::engine::with_lwip([bytes] { anysock_lwip_set_heap_limit(bytes); });
}

std::string leak_report() {
  auto eng = lwip_detail::engine::running();
  return eng ? eng->leak_report() : std::string();
}

}  // namespace anysock::lwip
