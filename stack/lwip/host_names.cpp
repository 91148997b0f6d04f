// Name service on an lwIP host: numeric addresses, "localhost", the host's own name, the names of
// the other hosts on its link, and the process-wide hosts table (anysock::lwip::add_host_entry).
// A host whose spec names a DNS server (dns=, Ethernet links) then asks it through lwIP's DNS
// client; otherwise unknown names are gaierror(EAI_NONAME).
#include <arpa/inet.h>
#include <netdb.h>

#include <array>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <stdexcept>

#include "../../drivers/sim/sim_link.hpp"
#include "anysock/error.hpp"
#include "anysock/lwip.hpp"
#include "host.hpp"

namespace anysock::lwip_detail {
namespace {

struct hosts_table {
  std::mutex mu;
  std::map<std::string, std::vector<ip_addr_t>> entries;
};

hosts_table& table() {
  static auto* t = new hosts_table;  // never destroyed: used from static destructors' sockets
  return *t;
}

// An IPv4 address in any form glibc's getaddrinfo takes as numeric: inet_aton's (a, a.b, a.b.c,
// a.b.c.d; each part decimal, 0-octal or 0x-hex), with nothing after it (inet_aton itself stops
// at white space).
bool parse_ipv4_numeric(const std::string& text, in_addr& a4) {
  if (text.find_first_of(std::string(" \t\n\v\f\r\0", 7)) != std::string::npos) return false;
  return inet_aton(text.c_str(), &a4) != 0;
}

bool parse_numeric(const std::string& text, ip_addr_t& out) {
  in_addr a4{};
  if (parse_ipv4_numeric(text, a4)) {
    ip_addr_set_zero_ip4(&out);
    ip4_addr_set_u32(ip_2_ip4(&out), a4.s_addr);
    return true;
  }
  in6_addr a6{};
  if (inet_pton(AF_INET6, text.c_str(), &a6) == 1) {
    ip6_addr_t v6;
    std::memcpy(v6.addr, &a6, 16);
    ip6_addr_clear_zone(&v6);
    ip_addr_copy_from_ip6(out, v6);
    return true;
  }
  return false;
}

std::string numeric_text(const ip_addr_t& a) {
  char text[INET6_ADDRSTRLEN] = {};
  if (IP_IS_V4_VAL(a)) {
    in_addr a4{ip4_addr_get_u32(ip_2_ip4(&a))};
    inet_ntop(AF_INET, &a4, text, sizeof text);
  } else {
    inet_ntop(AF_INET6, ip_2_ip6(&a)->addr, text, sizeof text);
  }
  return text;
}

// A service name or number for `proto_name` ("tcp"/"udp"); -1 if unknown.
int service_port(const char* service, const char* proto_name) {
  char* end = nullptr;
  long n = std::strtol(service, &end, 10);
  if (*service != '\0' && *end == '\0') return n >= 0 && n <= 65535 ? static_cast<int>(n) : -1;
  servent entry{};
  servent* result = nullptr;
  std::array<char, 1024> buf{};
  if (getservbyname_r(service, proto_name, &entry, buf.data(), buf.size(), &result) == 0 &&
      result != nullptr) {
    return ntohs(static_cast<uint16_t>(result->s_port));
  }
  return -1;
}

std::vector<ip_addr_t> own_addresses(const netif* n) {
  std::vector<ip_addr_t> out;
  for (int i = LWIP_IPV6_NUM_ADDRESSES - 1; i > 0; --i) {  // configured IPv6, not link-local
    if (ip6_addr_isvalid(netif_ip6_addr_state(n, i)) &&
        !ip6_addr_isloopback(netif_ip6_addr(n, i))) {
      ip_addr_t a;
      ip_addr_copy_from_ip6(a, *netif_ip6_addr(n, i));
      out.push_back(a);
    }
  }
  ip_addr_t a4;
  ip_addr_copy_from_ip4(a4, *netif_ip4_addr(n));
  if (!is_any(a4)) out.push_back(a4);
  return out;
}

}  // namespace

std::vector<ip_addr_t> host::addresses() const { return own_addresses(&netif_); }

std::vector<ip_addr_t> host::resolve(const std::string& name) const {
  std::vector<ip_addr_t> out;
  if (name == "localhost" || name == "localhost.localdomain" || name == "ip6-localhost") {
    ip_addr_t v6, v4;
    ip_addr_set_loopback(1, &v6);
    ip_addr_set_loopback(0, &v4);
    if (name != "ip6-localhost") out.push_back(v4);
    out.insert(out.begin(), v6);
    return out;
  }
  {
    std::lock_guard lk(engine_->mutex());
    if (name == config_.name) return own_addresses(&netif_);
    if (host* other = link_->find_name(name)) return own_addresses(other->nif());
    if (const auto* gone = link_->remembered(name)) return *gone;
  }
  std::lock_guard lk(table().mu);
  if (auto it = table().entries.find(name); it != table().entries.end()) return it->second;
  return out;
}

std::vector<ip_addr_t> host::resolve_dns(const std::string& name, int family) {
  std::vector<ip_addr_t> out;
  ip_addr_t server;
  if (config_.dns.empty() || !parse_numeric(config_.dns, server)) return out;
  std::unique_lock lk(engine_->mutex());
  if (down_) throw error(ENETDOWN);
  // Both record types at once, as a resolver does for AF_UNSPEC.
  std::shared_ptr<engine::dns_query> q4, q6;
  if (family != AF_INET6) q4 = engine_->dns_lookup(this, server, name, false);
  if (family != AF_INET) q6 = engine_->dns_lookup(this, server, name, true);
  const wait_spec forever{wait_spec::mode::block, 0};
  engine_->wait(
      lk, forever, [&] { return down_ || ((!q4 || q4->done) && (!q6 || q6->done)); },
      "getaddrinfo");
  if (down_) throw error(ENETDOWN);
  for (const auto& q : {q4, q6}) {
    if (q && q->found) out.push_back(q->addr);
  }
  return out;
}

std::string host::name_of(const ip_addr_t& a) const {
  if (is_loopback(a)) return "localhost";
  {
    std::lock_guard lk(engine_->mutex());
    if (host* h = link_->find_address(a)) return h->config().name;
    if (std::string gone = link_->remembered_name(a); !gone.empty()) return gone;
  }
  std::lock_guard lk(table().mu);
  for (const auto& [name, addrs] : table().entries) {
    for (const ip_addr_t& x : addrs) {
      if (ip_addr_cmp(&x, &a)) return name;
    }
  }
  return "";
}

namespace {

// glibc's table of socket types and protocols for getaddrinfo (gaih_inet_typeproto), so every
// (type, proto) pair answers as on Linux — including kinds lwIP cannot open.
struct gai_kind {
  int type, proto;
  bool any_proto;    // SOCK_RAW takes whatever protocol was asked for
  bool no_service;   // ... and no service
  bool by_default;   // listed when neither type nor protocol is given
  const char* name;  // for getservbyname
};
constexpr gai_kind kGaiKinds[] = {
    {SOCK_STREAM, IPPROTO_TCP, false, false, true, "tcp"},
    {SOCK_DGRAM, IPPROTO_UDP, false, false, true, "udp"},
    {SOCK_DCCP, IPPROTO_DCCP, false, false, false, "dccp"},
    {SOCK_DGRAM, IPPROTO_UDPLITE, false, false, false, "udplite"},
    {SOCK_STREAM, IPPROTO_SCTP, false, false, false, "sctp"},
    {SOCK_SEQPACKET, IPPROTO_SCTP, false, false, false, "sctp"},
    {SOCK_RAW, 0, true, true, true, "raw"},
};

}  // namespace

std::vector<addr_info> host::getaddrinfo(const char* name, const char* port, int family, int type,
                                         int proto, int flags) {
  if (family != AF_UNSPEC && family != AF_INET && family != AF_INET6) throw gaierror(EAI_FAMILY);
  if (name == nullptr && port == nullptr) throw gaierror(EAI_NONAME);
  struct kind {
    int type, proto;
    const char* proto_name;
  };
  std::vector<kind> kinds;
  if (type != 0 || proto != 0) {
    // The first entry that fits, as glibc does.
    const gai_kind* k = nullptr;
    for (const gai_kind& g : kGaiKinds) {
      if ((type == 0 || type == g.type) && (proto == 0 || g.any_proto || proto == g.proto)) {
        k = &g;
        break;
      }
    }
    if (k == nullptr) throw gaierror(type != 0 ? EAI_SOCKTYPE : EAI_SERVICE);
    if (port != nullptr && k->no_service) throw gaierror(EAI_SERVICE);
    kinds.push_back({k->type, k->any_proto ? proto : k->proto, k->name});
  } else {
    // Every default kind; with a service name, only those that have services (glibc lists SOCK_RAW
    // with a numeric port, but looks no name up for it).
    const bool named_service =
        port != nullptr &&
        (port[0] == '\0' || std::strspn(port, "0123456789") != std::strlen(port));
    for (const gai_kind& g : kGaiKinds) {
      if (!g.by_default || (named_service && g.no_service)) continue;
      kinds.push_back({g.type, g.proto, g.name});
    }
  }
  // The port, per protocol (a service name may exist for TCP only).
  std::vector<int> ports(kinds.size(), 0);
  if (port != nullptr) {
    bool numeric = port[0] != '\0' && std::strspn(port, "0123456789") == std::strlen(port);
    if (!numeric && (flags & AI_NUMERICSERV)) throw gaierror(EAI_NONAME);
    bool any = false;
    for (size_t i = 0; i < kinds.size(); ++i) {
      ports[i] = service_port(port, kinds[i].proto_name);
      any = any || ports[i] >= 0;
    }
    if (!any) throw gaierror(EAI_SERVICE);
  }
  std::vector<ip_addr_t> addrs;
  std::string canon;
  if (name == nullptr) {
    ip_addr_t v4, v6;
    if (flags & AI_PASSIVE) {
      ip_addr_set_zero_ip4(&v4);
      ip_addr_set_zero_ip6(&v6);
    } else {
      ip_addr_set_loopback(0, &v4);
      ip_addr_set_loopback(1, &v6);
    }
    addrs = {v6, v4};
  } else {
    ip_addr_t a;
    if (parse_numeric(name, a)) {
      addrs.push_back(a);
      canon = name;
      if ((family == AF_INET && !IP_IS_V4_VAL(a)) || (family == AF_INET6 && IP_IS_V4_VAL(a))) {
        throw gaierror(EAI_ADDRFAMILY, name);
      }
    } else {
      if (flags & AI_NUMERICHOST) throw gaierror(EAI_NONAME, name);
      addrs = resolve(name);
      if (addrs.empty()) addrs = resolve_dns(name, family);
      canon = name;
      if (addrs.empty()) throw gaierror(EAI_NONAME, name);
    }
  }
  std::vector<addr_info> out;
  for (const ip_addr_t& a : addrs) {
    int fam = IP_IS_V4_VAL(a) ? AF_INET : AF_INET6;
    if (family != AF_UNSPEC && family != fam) continue;
    for (size_t i = 0; i < kinds.size(); ++i) {
      if (ports[i] < 0) continue;
      addr_info info;
      info.family = fam;
      info.type = kinds[i].type;
      info.proto = kinds[i].proto;
      info.addr = {numeric_text(a), static_cast<uint16_t>(ports[i]), 0, 0};
      if ((flags & AI_CANONNAME) && out.empty()) info.canonname = canon;
      out.push_back(info);
    }
  }
  if (out.empty()) throw gaierror(name != nullptr ? EAI_ADDRFAMILY : EAI_NONAME);
  return out;
}

std::pair<std::string, std::string> host::getnameinfo(const sockaddr* sa, socklen_t len,
                                                      int flags) {
  ip_addr_t a;
  uint16_t port = 0;
  if (sa->sa_family == AF_INET && len >= static_cast<socklen_t>(sizeof(sockaddr_in))) {
    sockaddr_in sin;
    std::memcpy(&sin, sa, sizeof sin);
    ip_addr_set_zero_ip4(&a);
    ip4_addr_set_u32(ip_2_ip4(&a), sin.sin_addr.s_addr);
    port = ntohs(sin.sin_port);
  } else if (sa->sa_family == AF_INET6 && len >= static_cast<socklen_t>(sizeof(sockaddr_in6))) {
    sockaddr_in6 sin6;
    std::memcpy(&sin6, sa, sizeof sin6);
    ip6_addr_t v6;
    std::memcpy(v6.addr, &sin6.sin6_addr, 16);
    ip6_addr_clear_zone(&v6);
    ip_addr_copy_from_ip6(a, v6);
    port = ntohs(sin6.sin6_port);
  } else {
    throw gaierror(EAI_FAMILY);
  }
  std::string host_text;
  if (!(flags & NI_NUMERICHOST)) host_text = name_of(a);
  if (host_text.empty()) {
    if (flags & NI_NAMEREQD) throw gaierror(EAI_NONAME);
    host_text = numeric_text(a);
  }
  std::string serv = std::to_string(port);
  if (!(flags & NI_NUMERICSERV)) {
    servent entry{};
    servent* result = nullptr;
    std::array<char, 1024> buf{};
    if (getservbyport_r(htons(port), (flags & NI_DGRAM) ? "udp" : "tcp", &entry, buf.data(),
                        buf.size(), &result) == 0 &&
        result != nullptr) {
      serv = result->s_name;
    }
  }
  return {host_text, serv};
}

host_entry host::gethostbyname_ex(const std::string& name) {
  host_entry e;
  ip_addr_t a;
  if (parse_numeric(name, a)) {
    if (!IP_IS_V4_VAL(a)) throw gaierror(EAI_ADDRFAMILY, name);
    // glibc's hosts lookup takes numeric forms of digits and dots only (no 0x parts).
    if (name.find_first_of("xX") != std::string::npos) throw herror(HOST_NOT_FOUND);
    return {name, {}, {numeric_text(a)}};
  }
  std::vector<ip_addr_t> addrs = resolve(name);
  if (addrs.empty()) addrs = resolve_dns(name, AF_INET);
  if (addrs.empty()) throw gaierror(EAI_NONAME, name);
  e.name = name;
  for (const ip_addr_t& x : addrs) {
    if (IP_IS_V4_VAL(x)) e.addresses.push_back(numeric_text(x));
  }
  if (e.addresses.empty()) throw herror(NO_ADDRESS);
  return e;
}

host_entry host::gethostbyaddr(const std::string& numeric_host) {
  ip_addr_t a;
  if (!parse_numeric(numeric_host, a)) {
    std::vector<ip_addr_t> addrs = resolve(numeric_host);
    if (addrs.empty()) addrs = resolve_dns(numeric_host, AF_UNSPEC);
    if (addrs.empty()) throw gaierror(EAI_NONAME, numeric_host);
    a = addrs.front();
  }
  std::string name = name_of(a);
  if (name.empty()) throw herror(HOST_NOT_FOUND);
  return {name, {}, {numeric_text(a)}};
}

}  // namespace anysock::lwip_detail

namespace anysock::lwip {

void add_host_entry(const std::string& name, const std::string& address) {
  ip_addr_t a;
  if (name.empty()) throw std::invalid_argument("hosts table: empty name");
  if (!lwip_detail::parse_numeric(address, a)) {
    throw std::invalid_argument("hosts table: '" + address +
                                "' is not a numeric IPv4/IPv6 address");
  }
  auto& t = lwip_detail::table();
  std::lock_guard lk(t.mu);
  t.entries[name].push_back(a);
}

void remove_host_entry(const std::string& name) {
  auto& t = lwip_detail::table();
  std::lock_guard lk(t.mu);
  t.entries.erase(name);
}

}  // namespace anysock::lwip
