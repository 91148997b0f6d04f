// The backend kinds lwip+tap, lwip+pcap, lwip+af_packet and lwip+af_xdp: an lwIP host alone on an
// Ethernet link driver (drivers/link.hpp), made from a spec such as
// "lwip+tap:iface=as_tap0,ip=10.77.1.2/24,gw=10.77.1.1,ip6=fd00:77:1::2/64". The host's keys mean
// the same on every driver; the driver's own keys (queue=, promisc=, ...) pass through to it.
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <thread>

#include "../../drivers/link.hpp"
#include "anysock/backend.hpp"
#include "ethernet_link.hpp"
#include "host.hpp"
#include "spec_values.hpp"

namespace anysock::lwip_detail {
namespace {

constexpr std::string_view kHostKeys[] = {"iface", "host", "ip",        "gw",  "ip6",   "mtu",
                                          "mac",   "pcap", "pcap_mode", "dns", "engine"};

bool is_host_key(std::string_view key) {
  for (std::string_view k : kHostKeys) {
    if (k == key) return true;
  }
  return false;
}

std::string key_list(std::string_view driver) {
  std::string text;
  for (std::string_view k : kHostKeys)
    text += std::string(text.empty() ? "" : ", ") + std::string(k);
  for (std::string_view k : drivers::link_option_keys(driver)) {
    if (!is_host_key(k)) text += ", " + std::string(k);
  }
  return text;
}

// The spec as text again (values with ',' or quotes quoted), for backend::spec().
std::string spec_text(const backend_spec& spec) {
  std::string text = spec.kind;
  char sep = ':';
  for (const auto& [key, value] : spec.params) {
    text += sep;
    sep = ',';
    text += key + "=";
    if (value.find_first_of(",'") != std::string::npos) {
      text += "'";
      for (char c : value) text += c == '\'' ? std::string("''") : std::string(1, c);
      text += "'";
    } else {
      text += value;
    }
  }
  return text;
}

// A locally administered unicast address derived from the interface's, never equal to it (so the
// IPv6 link-local addresses of the kernel's side and ours differ too): the interface's address
// with the local bit set, the group bit cleared and bit 2 of the first byte flipped.
std::string derived_mac(const drivers::mac_address& iface) {
  drivers::mac_address m = iface;
  m[0] = static_cast<uint8_t>(((m[0] | 0x02) & 0xfe) ^ 0x04);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4],
                m[5]);
  return buf;
}

// The interface's IFF_* flags now (0 if they cannot be read).
unsigned interface_flags(const std::string& name) {
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  ifreq req{};
  std::strncpy(req.ifr_name, name.c_str(), IFNAMSIZ - 1);
  const int r = ::ioctl(fd, SIOCGIFFLAGS, &req);
  ::close(fd);
  return r == 0 ? static_cast<unsigned>(req.ifr_flags) & 0xffff : 0;
}

// A TAP gets its carrier when the link attaches, but the kernel only starts sending on it once its
// link watcher has run, which may be a second later: until then whatever the kernel sends there
// (an ARP reply, a SYN-ACK) is dropped. So wait for IFF_RUNNING, if the interface is up at all.
void wait_until_running(const std::string& iface) {
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (std::chrono::steady_clock::now() < give_up) {
    const unsigned flags = interface_flags(iface);
    if ((flags & IFF_UP) == 0 || (flags & IFF_RUNNING) != 0) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

std::shared_ptr<backend> make_ethernet_host(const backend_spec& spec) {
  const std::string& kind = spec.kind;
  const std::string driver = kind.substr(kind.find('+') + 1);
  host_config cfg;
  cfg.checksums = true;  // a real wire
  drivers::link_options options;
  std::string iface;
  std::string mtu_text;
  bool engine_given = false;
  bool only_identity = true;  // only iface/host: may name the host already on the interface
  engine::mode mode = engine::mode::thread;
  std::vector<std::string> seen;
  for (const auto& [key, value] : spec.params) {
    if (!is_host_key(key)) {
      const auto driver_keys = drivers::link_option_keys(driver);
      if (std::find(driver_keys.begin(), driver_keys.end(), key) == driver_keys.end()) {
        throw std::invalid_argument(kind + ": unknown key '" + key +
                                    "' (keys: " + key_list(driver) + ")");
      }
      options.emplace_back(key, value);  // the driver checks its own values
      only_identity = false;
      continue;
    }
    if (key != "ip6") {
      if (std::find(seen.begin(), seen.end(), key) != seen.end()) {
        throw std::invalid_argument(kind + ": key '" + key + "' given twice");
      }
      seen.push_back(key);
    }
    if (key == "iface") {
      iface = value;
      options.emplace_back(key, value);
      continue;
    }
    if (key == "host") {
      if (value.empty()) throw std::invalid_argument(kind + ": host= needs a name");
      cfg.name = value;
      continue;
    }
    only_identity = false;
    if (key == "ip") {
      check_ip4(kind, key, value, true);
      cfg.ip = value;
    } else if (key == "gw") {
      check_ip4(kind, key, value, false);
      cfg.gw = value;
    } else if (key == "ip6") {
      check_ip6(kind, value);
      cfg.ip6.push_back(value);
    } else if (key == "mtu") {
      parse_mtu(kind, value, 1280, 65535);
      mtu_text = value;
    } else if (key == "mac") {
      check_mac(kind, value);
      cfg.mac = value;
    } else if (key == "pcap") {
      if (value.empty()) throw std::invalid_argument(kind + ": pcap= needs a file name");
      cfg.pcap = value;
    } else if (key == "pcap_mode") {
      cfg.pcap_mode = parse_file_mode(kind, key, value);
    } else if (key == "dns") {
      check_ip(kind, key, value);
      cfg.dns = value;
    } else if (key == "engine") {
      if (value != "thread" && value != "poll") {
        throw std::invalid_argument(kind + ": engine=" + value + " (expected thread or poll)");
      }
      mode = value == "thread" ? engine::mode::thread : engine::mode::poll;
      engine_given = true;
    }
  }
  if (cfg.pcap.empty() && std::find(seen.begin(), seen.end(), "pcap_mode") != seen.end()) {
    throw std::invalid_argument(kind + ": pcap_mode= needs pcap= (the capture file it is for)");
  }
  if (iface.empty()) {
    throw std::invalid_argument(kind + ": iface= is required (the interface to attach to, e.g. " +
                                kind + ":iface=as_u0,ip=10.77.3.2/24)");
  }
  const std::string text = spec_text(spec);
  std::shared_ptr<engine> eng = engine::acquire(mode, engine_given);
  if (eng->run_mode() == engine::mode::sim) {
    throw std::invalid_argument(kind +
                                ": a real link cannot join a simulated world (anysock::sim)");
  }
  {
    // The interface may have its host already (the same spec made twice, e.g. ANYSOCK_BACKEND).
    std::unique_lock lk(eng->mutex());
    for (host* h : eng->hosts()) {
      if (h->link()->label() != driver + ":" + iface) continue;
      if (only_identity || h->spec() == text) {
        if (auto alive = h->weak_from_this().lock()) return alive;
      }
      throw std::invalid_argument(kind + ": " + iface + " already has an lwIP host (" + h->spec() +
                                  "); name it with iface= alone to use it");
    }
  }
  // Opening may take a while (an XDP program loads): not under the engine lock.
  std::unique_ptr<drivers::link> link = drivers::open_link(driver, options);
  wait_until_running(iface);
  cfg.mtu = static_cast<size_t>(link->mtu());
  if (!mtu_text.empty()) {
    size_t mtu = parse_mtu(kind, mtu_text, 1280, 65535);
    if (mtu > cfg.mtu) {
      throw std::invalid_argument(kind + ": mtu=" + mtu_text + " exceeds " + iface + "'s MTU " +
                                  std::to_string(cfg.mtu) + " (raise it with `ip link set " +
                                  iface + " mtu " + mtu_text + "`)");
    }
    cfg.mtu = mtu;
  }
  if (cfg.mac.empty()) cfg.mac = derived_mac(link->mac());
  if (cfg.name.empty()) cfg.name = iface;
  std::unique_lock lk(eng->mutex());
  auto medium = std::make_unique<ethernet_link>(*eng, std::move(link));
  return std::make_shared<host>(eng, cfg, text, std::move(medium));
}

}  // namespace

backend_factory ethernet_factory() { return &make_ethernet_host; }

}  // namespace anysock::lwip_detail
