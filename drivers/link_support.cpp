#include "link_support.hpp"

#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <stdexcept>

#include "anysock/error.hpp"

namespace anysock::drivers::detail {
namespace {

std::string join(std::span<const std::string_view> words) {
  std::string out;
  for (std::string_view w : words) {
    if (!out.empty()) out += ", ";
    out += w;
  }
  return out;
}

// A short-lived datagram socket for interface ioctls (any family reaches the device ioctls).
class ioctl_socket {
 public:
  ioctl_socket() : fd_(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) {}
  ~ioctl_socket() {
    if (fd_ >= 0) ::close(fd_);
  }
  ioctl_socket(const ioctl_socket&) = delete;
  ioctl_socket& operator=(const ioctl_socket&) = delete;
  // 0 or the errno of socket() / ioctl().
  int run(unsigned long request, ifreq& ifr) const {
    if (fd_ < 0) return errno;
    return ::ioctl(fd_, request, &ifr) == 0 ? 0 : errno;
  }

 private:
  int fd_;
};

ifreq request_for(const std::string& name) {
  ifreq ifr{};
  std::memcpy(ifr.ifr_name, name.c_str(), std::min(name.size(), sizeof ifr.ifr_name - 1));
  return ifr;
}

}  // namespace

option_reader::option_reader(std::string_view kind, const link_options& options,
                             std::span<const std::string_view> keys)
    : kind_(kind), options_(options) {
  for (size_t i = 0; i < options.size(); ++i) {
    const std::string& key = options[i].first;
    if (std::find(keys.begin(), keys.end(), key) == keys.end()) {
      throw std::invalid_argument(kind_ + ": unknown key '" + key +
                                  "' (this driver takes: " + join(keys) + ")");
    }
    for (size_t j = 0; j < i; ++j) {
      if (options[j].first == key) {
        throw std::invalid_argument(kind_ + ": key '" + key + "' given twice: give it once");
      }
    }
  }
}

const std::string* option_reader::find(std::string_view key) const {
  for (const auto& [k, v] : options_) {
    if (k == key) return &v;
  }
  return nullptr;
}

void option_reader::bad_value(std::string_view key, std::string_view value,
                              std::string_view expected) const {
  throw std::invalid_argument(kind_ + ": bad value " + std::string(key) + "=" + std::string(value) +
                              ": expected " + std::string(expected));
}

std::string option_reader::iface() const {
  const std::string* v = find("iface");
  if (v == nullptr || v->empty()) {
    throw std::invalid_argument(kind_ + ": needs iface=<interface name>, e.g. " + kind_ +
                                ":iface=as_u0");
  }
  if (v->size() >= IFNAMSIZ) {
    bad_value("iface", *v, "an interface name of at most 15 characters");
  }
  if (v->find_first_of("/: \t\n") != std::string::npos) {
    bad_value("iface", *v, "an interface name without '/', ':' or spaces");
  }
  return *v;
}

std::string option_reader::text(std::string_view key, std::string_view fallback) const {
  const std::string* v = find(key);
  return v != nullptr ? *v : std::string(fallback);
}

uint64_t option_reader::number(std::string_view key, uint64_t fallback, uint64_t min,
                               uint64_t max) const {
  const std::string* v = find(key);
  if (v == nullptr) return fallback;
  uint64_t n = 0;
  const char* end = v->data() + v->size();
  auto [ptr, ec] = std::from_chars(v->data(), end, n);
  if (v->empty() || ec != std::errc() || ptr != end || n < min || n > max) {
    bad_value(key, *v, "a whole number from " + std::to_string(min) + " to " + std::to_string(max));
  }
  return n;
}

bool option_reader::flag(std::string_view key, bool fallback) const {
  const std::string* v = find(key);
  if (v == nullptr) return fallback;
  if (*v == "1" || *v == "yes" || *v == "on" || *v == "true") return true;
  if (*v == "0" || *v == "no" || *v == "off" || *v == "false") return false;
  bad_value(key, *v, "1 or 0 (yes/no, on/off, true/false)");
}

std::string option_reader::choice(std::string_view key, std::string_view fallback,
                                  std::span<const std::string_view> choices) const {
  const std::string* v = find(key);
  if (v == nullptr) return std::string(fallback);
  if (std::find(choices.begin(), choices.end(), *v) == choices.end()) {
    bad_value(key, *v, "one of " + join(choices));
  }
  return *v;
}

int query_interface(const std::string& name, interface_info& out) {
  out.name = name;
  out.ifindex = static_cast<int>(::if_nametoindex(name.c_str()));
  if (out.ifindex == 0) return errno == ENXIO || errno == ENODEV ? ENODEV : errno;
  ioctl_socket s;
  ifreq ifr = request_for(name);
  if (int err = s.run(SIOCGIFMTU, ifr)) return err;
  out.mtu = ifr.ifr_mtu;
  ifr = request_for(name);
  if (int err = s.run(SIOCGIFHWADDR, ifr)) return err;
  if (ifr.ifr_hwaddr.sa_family != ARPHRD_ETHER) return EPROTONOSUPPORT;
  std::memcpy(out.mac.data(), ifr.ifr_hwaddr.sa_data, out.mac.size());
  ifr = request_for(name);
  if (int err = s.run(SIOCGIFFLAGS, ifr)) return err;
  out.flags = static_cast<unsigned short>(ifr.ifr_flags);
  return 0;
}

interface_info find_interface(std::string_view kind, const std::string& name) {
  interface_info info;
  int err = query_interface(name, info);
  if (err == ENODEV) {
    fail(ENODEV, kind,
         "no interface " + name + ": create it (e.g. `ip link add " + name +
             " type veth peer name <peer>`) or name one that `ip link` lists in this network "
             "namespace");
  }
  if (err == EPROTONOSUPPORT) {
    fail(err, kind, name + " is not an Ethernet interface: the link drivers carry Ethernet frames");
  }
  if (err != 0) fail(err, kind, "cannot read " + name + "'s settings");
  return info;
}

int interface_flags(int ifindex, unsigned& flags) {
  char name[IF_NAMESIZE] = {};
  if (::if_indextoname(static_cast<unsigned>(ifindex), name) == nullptr) {
    return errno == ENXIO || errno == ENODEV ? ENODEV : errno;
  }
  ioctl_socket s;
  ifreq ifr = request_for(name);
  if (int err = s.run(SIOCGIFFLAGS, ifr)) return err == ENXIO ? ENODEV : err;
  flags = static_cast<unsigned short>(ifr.ifr_flags);
  return 0;
}

link_monitor::link_monitor()
    : fd_(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE)) {
  if (fd_ < 0) throw error(errno, "cannot open a netlink socket to watch the interface");
  sockaddr_nl addr{};
  addr.nl_family = AF_NETLINK;
  addr.nl_groups = RTMGRP_LINK;
  if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    int err = errno;
    ::close(fd_);
    throw error(err, "cannot watch interface events (netlink RTMGRP_LINK)");
  }
}

link_monitor::~link_monitor() { ::close(fd_); }

bool link_monitor::drain(int ifindex) {
  alignas(nlmsghdr) char buf[8192];
  bool ours = false;
  for (;;) {
    ssize_t n = ::recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != ENOBUFS) return ours;  // EAGAIN: drained
      ours = true;                        // events were lost: assume one was ours
      continue;
    }
    size_t len = static_cast<size_t>(n);
    for (auto* h = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
      if ((h->nlmsg_type == RTM_NEWLINK || h->nlmsg_type == RTM_DELLINK) &&
          h->nlmsg_len >= NLMSG_LENGTH(sizeof(ifinfomsg))) {
        const auto* info = static_cast<const ifinfomsg*>(NLMSG_DATA(h));
        if (info->ifi_index == ifindex) ours = true;
      }
    }
  }
}

int socket_error(int fd) {
  int err = 0;
  socklen_t len = sizeof err;
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return errno;
  return err;
}

void fail(int err, std::string_view kind, const std::string& what) {
  throw error(err, std::string(kind) + ": " + what);
}

std::string privilege_hint(std::string_view capabilities) {
  std::string lower(capabilities);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return "needs " + std::string(capabilities) +
         ": run it as root, or give the program the capabilities (setcap " + lower +
         "+ep <program>)";
}

}  // namespace anysock::drivers::detail
