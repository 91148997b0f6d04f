// The name functions, through the client's backend: getaddrinfo and its filters, getnameinfo, the
// gethostby* family, host names, protocol and service databases, and has_ipv6().
//
// Only "localhost" (env().server_name) and numeric hosts are ever resolved: the machine's DNS
// server must not be queried. getfqdn() without an argument would resolve this machine's own name,
// so the tests pass it a name instead.
#include <algorithm>
#include <cerrno>
#include <fstream>
#include <initializer_list>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "fixture.hpp"

namespace anysock::testing {
namespace {

bool has_host(const std::vector<addr_info>& infos, const std::string& host) {
  return std::any_of(infos.begin(), infos.end(),
                     [&](const addr_info& i) { return i.addr.host == host; });
}

bool all_of_type(const std::vector<addr_info>& infos, int type) {
  return std::all_of(infos.begin(), infos.end(),
                     [&](const addr_info& i) { return i.type == type; });
}

// (family, type, proto) of each entry, or the gaierror's code as {0, 0, code}.
std::vector<std::tuple<int, int, int>> kinds_of(backend& b, const char* host, const char* port,
                                                int family, int type, int proto) {
  std::vector<std::tuple<int, int, int>> out;
  try {
    for (const addr_info& i : b.getaddrinfo(host, port, family, type, proto, 0)) {
      out.emplace_back(i.family, i.type, i.proto);
    }
  } catch (const gaierror& e) {
    out.emplace_back(0, 0, e.code().value());
  }
  return out;
}

// Whether this machine's /etc/hosts names `name` (so resolving it asks no DNS server).
bool in_etc_hosts(const std::string& name) {
  std::ifstream hosts("/etc/hosts");
  std::string line;
  while (std::getline(hosts, line)) {
    std::istringstream words(line.substr(0, line.find('#')));
    std::string word;
    words >> word;  // the address
    while (words >> word) {
      if (word == name) return true;
    }
  }
  return false;
}

}  // namespace

TEST_P(Conformance, GetaddrinfoOfNumericHostAndPortReturnsThatAddress) {
  backend_scope scope(client());
  auto infos = getaddrinfo(std::string("127.0.0.1"), std::string("80"));
  ASSERT_FALSE(infos.empty());
  for (const addr_info& info : infos) {
    EXPECT_EQ(info.family, AF_INET);
    EXPECT_EQ(info.addr, (address{"127.0.0.1", 80}));
  }
}

TEST_P(Conformance, GetaddrinfoTakesANumericPort) {
  backend_scope scope(client());
  auto infos = getaddrinfo(std::string("127.0.0.1"), uint16_t{8080}, AF_INET, SOCK_STREAM);
  ASSERT_EQ(infos.size(), 1u);
  EXPECT_EQ(infos[0].addr, (address{"127.0.0.1", 8080}));
  EXPECT_EQ(infos[0].type, SOCK_STREAM);
  EXPECT_EQ(infos[0].proto, IPPROTO_TCP);
}

TEST_P(Conformance, GetaddrinfoFamilyFilterReturnsOnlyThatFamily) {
  SKIP_UNLESS_FAMILY(AF_INET6);
  backend_scope scope(client());
  auto infos = getaddrinfo(std::string("::1"), std::string("443"), AF_INET6);
  ASSERT_FALSE(infos.empty());
  for (const addr_info& info : infos) {
    EXPECT_EQ(info.family, AF_INET6);
    EXPECT_EQ(info.addr.host, "::1");
    EXPECT_EQ(info.addr.port, 443);
  }
  // An IPv6 literal is no IPv4 address (AI_NUMERICHOST keeps the resolver out of it).
  EXPECT_THROW(getaddrinfo(std::string("::1"), std::string("443"), AF_INET, 0, 0, AI_NUMERICHOST),
               gaierror);
}

TEST_P(Conformance, GetaddrinfoTypeFilterReturnsOnlyThatType) {
  backend_scope scope(client());
  auto any_type = getaddrinfo(std::string("127.0.0.1"), std::string("53"), AF_INET);
  EXPECT_TRUE(std::any_of(any_type.begin(), any_type.end(),
                          [](const addr_info& i) { return i.type == SOCK_STREAM; }));
  EXPECT_TRUE(std::any_of(any_type.begin(), any_type.end(),
                          [](const addr_info& i) { return i.type == SOCK_DGRAM; }));

  auto dgram = getaddrinfo(std::string("127.0.0.1"), std::string("53"), AF_INET, SOCK_DGRAM);
  ASSERT_FALSE(dgram.empty());
  EXPECT_TRUE(all_of_type(dgram, SOCK_DGRAM));
  EXPECT_EQ(dgram[0].proto, IPPROTO_UDP);
}

TEST_P(Conformance, GetaddrinfoResolvesAServiceName) {
  backend_scope scope(client());
  auto infos = getaddrinfo(std::string("127.0.0.1"), std::string("http"), AF_INET, SOCK_STREAM);
  ASSERT_FALSE(infos.empty());
  EXPECT_EQ(infos[0].addr.port, 80);
}

TEST_P(Conformance, GetaddrinfoWithoutHostAndWithAiPassiveGivesTheWildcardAddress) {
  backend_scope scope(client());
  auto v4 = getaddrinfo(std::nullopt, std::string("8080"), AF_INET, SOCK_STREAM, 0, AI_PASSIVE);
  ASSERT_EQ(v4.size(), 1u);
  EXPECT_EQ(v4[0].addr, (address{"0.0.0.0", 8080}));

  auto v4_loopback = getaddrinfo(std::nullopt, std::string("8080"), AF_INET, SOCK_STREAM);
  ASSERT_EQ(v4_loopback.size(), 1u);
  EXPECT_EQ(v4_loopback[0].addr, (address{"127.0.0.1", 8080}));  // without AI_PASSIVE

  if (family_available(AF_INET6)) {
    auto v6 = getaddrinfo(std::nullopt, std::string("8080"), AF_INET6, SOCK_STREAM, 0, AI_PASSIVE);
    ASSERT_EQ(v6.size(), 1u);
    EXPECT_EQ(v6[0].addr.host, "::");
  }
}

TEST_P(Conformance, GetaddrinfoOfANonNumericHostWithAiNumerichostRaisesGaierror) {
  backend_scope scope(client());
  try {
    getaddrinfo(std::string("not-a-number.invalid"), std::string("80"), 0, 0, 0, AI_NUMERICHOST);
    ADD_FAILURE() << "getaddrinfo returned";
  } catch (const gaierror& e) {
    EXPECT_EQ(e.code().value(), EAI_NONAME);
    EXPECT_EQ(&e.code().category(), &gai_category());
  }
  // gaierror is an anysock::error like every other socket failure.
  EXPECT_THROW(getaddrinfo(std::string("also.not.numeric"), std::nullopt, 0, 0, 0, AI_NUMERICHOST),
               anysock::error);
}

TEST_P(Conformance, GetaddrinfoOfTheServerNameIncludesTheServerAddress) {
  backend_scope scope(client());
  auto infos = getaddrinfo(env().server_name, std::string("80"), AF_INET, SOCK_STREAM);
  EXPECT_TRUE(has_host(infos, env().server_host4)) << env().server_name;
}

TEST_P(Conformance, GetnameinfoWithNumericFlagsReturnsNumericHostAndPort) {
  backend_scope scope(client());
  auto [host, service] = getnameinfo({"127.0.0.1", 80}, NI_NUMERICHOST | NI_NUMERICSERV);
  EXPECT_EQ(host, "127.0.0.1");
  EXPECT_EQ(service, "80");
}

TEST_P(Conformance, GetnameinfoNamesTheServiceWithoutNiNumericserv) {
  backend_scope scope(client());
  auto [host, service] = getnameinfo({"127.0.0.1", 80}, NI_NUMERICHOST);
  EXPECT_EQ(host, "127.0.0.1");
  EXPECT_EQ(service, "http");
}

TEST_P(Conformance, GethostbynameOfTheServerNameReturnsTheServerAddress) {
  backend_scope scope(client());
  EXPECT_EQ(gethostbyname(env().server_name), env().server_host4);
  EXPECT_EQ(gethostbyname("127.0.0.1"), "127.0.0.1");  // numeric hosts come back unchanged
}

TEST_P(Conformance, GethostbynameTakesEveryNumericFormGlibcTakes) {
  backend_scope scope(client());
  EXPECT_EQ(gethostbyname("127.1"), "127.0.0.1");
  EXPECT_EQ(gethostbyname("0x7f.1"), "127.0.0.1");
  EXPECT_EQ(gethostbyname("0177.0.0.1"), "127.0.0.1");
  EXPECT_EQ(gethostbyname("127.0.1"), "127.0.0.1");
  EXPECT_EQ(gethostbyname("2130706433"), "127.0.0.1");
  // Nothing with trailing text is numeric (AI_NUMERICHOST: no name service is asked).
  for (const char* bad :
       {"127.0.0.1 x", "127.0.0.1x", "1.2.3.4.", "0x", "08", "1.2.3.256", "127.0.0.1\t"}) {
    SCOPED_TRACE(bad);
    EXPECT_THROW(getaddrinfo(std::string(bad), std::nullopt, AF_INET, 0, 0, AI_NUMERICHOST),
                 gaierror);
  }
  auto infos = getaddrinfo(std::string("127.1"), std::nullopt, AF_INET, SOCK_STREAM, 0,
                           AI_NUMERICHOST | AI_CANONNAME);
  ASSERT_EQ(infos.size(), 1u);
  EXPECT_EQ(infos[0].addr.host, "127.0.0.1");
  EXPECT_EQ(infos[0].canonname, "127.1");
}

TEST_P(Conformance, GetaddrinfoGivesTheKernelsTypeAndProtocolForEveryPair) {
  backend_scope scope(client());
  // The case users meet: a protocol alone selects its socket type, and every entry carries it.
  auto infos = getaddrinfo(std::string("localhost"), std::nullopt, 0, 0, IPPROTO_TCP);
  ASSERT_FALSE(infos.empty());
  for (const addr_info& i : infos) {
    EXPECT_EQ(i.type, SOCK_STREAM);
    EXPECT_EQ(i.proto, IPPROTO_TCP);
  }
  // Every pair, with and without a service, against the kernel's answers (the reference).
  for (int type : std::initializer_list<int>{0, SOCK_STREAM, SOCK_DGRAM, SOCK_RAW, SOCK_SEQPACKET,
                                             SOCK_DCCP, 7}) {
    for (int proto : std::initializer_list<int>{0, IPPROTO_TCP, IPPROTO_UDP, IPPROTO_DCCP,
                                                IPPROTO_GRE, IPPROTO_SCTP, IPPROTO_UDPLITE}) {
      for (const char* port : {static_cast<const char*>(nullptr), "80", "http", "domain"}) {
        SCOPED_TRACE("type " + std::to_string(type) + " proto " + std::to_string(proto) +
                     (port ? std::string(" port ") + port : std::string()));
        EXPECT_EQ(kinds_of(client(), "127.0.0.1", port, AF_INET, type, proto),
                  kinds_of(kernel_backend(), "127.0.0.1", port, AF_INET, type, proto));
      }
    }
  }
}

TEST_P(Conformance, GetfqdnOfTheWildcardAddressesMeansThisHost) {
  backend_scope scope(client());
  const std::string me = gethostname();
  if (&client() == &kernel_backend() && !in_etc_hosts(me)) {
    GTEST_SKIP() << "this machine's name '" << me
                 << "' is not in /etc/hosts: resolving it would ask a DNS server";
  }
  const std::string fqdn = getfqdn(me);
  EXPECT_EQ(getfqdn(""), fqdn);
  EXPECT_EQ(getfqdn("0.0.0.0"), fqdn);
  EXPECT_EQ(getfqdn("::"), fqdn);  // Python 3
}

TEST_P(Conformance, GethostbynameExOfTheServerNameListsTheServerAddress) {
  backend_scope scope(client());
  host_entry e = gethostbyname_ex(env().server_name);
  EXPECT_FALSE(e.name.empty());
  EXPECT_NE(std::find(e.addresses.begin(), e.addresses.end(), env().server_host4),
            e.addresses.end());
}

TEST_P(Conformance, GethostbyaddrOfLoopbackNamesIt) {
  backend_scope scope(client());
  host_entry e = gethostbyaddr("127.0.0.1");
  EXPECT_FALSE(e.name.empty());
  EXPECT_NE(std::find(e.addresses.begin(), e.addresses.end(), "127.0.0.1"), e.addresses.end());
}

TEST_P(Conformance, GethostnameAndGetfqdnAreNotEmpty) {
  backend_scope scope(client());
  EXPECT_FALSE(gethostname().empty());
  std::string fqdn = getfqdn(env().server_name);
  EXPECT_FALSE(fqdn.empty());
  EXPECT_EQ(getfqdn("  " + env().server_name + " "), fqdn);  // surrounding blanks are ignored
}

TEST_P(Conformance, GetprotobynameKnowsTcpAndUdp) {
  EXPECT_EQ(getprotobyname("tcp"), IPPROTO_TCP);
  EXPECT_EQ(getprotobyname("udp"), IPPROTO_UDP);
  EXPECT_THROW(getprotobyname("no-such-protocol"), anysock::error);
}

TEST_P(Conformance, GetservbynameAndGetservbyportKnowHttp) {
  EXPECT_EQ(getservbyname("http", "tcp"), 80);
  EXPECT_EQ(getservbyname("http"), 80);
  EXPECT_EQ(getservbyport(80, "tcp"), "http");
  EXPECT_THROW(getservbyname("no-such-service", "tcp"), anysock::error);
  EXPECT_THROW(getservbyname("http", "no-such-proto"), anysock::error);
  EXPECT_THROW(getservbyport(80, "no-such-proto"), anysock::error);
}

TEST_P(Conformance, HasIpv6MatchesWhetherAnIpv6SocketCanBeMade) {
  backend_scope scope(client());
  bool can_make = true;
  try {
    socket s(client(), AF_INET6, SOCK_STREAM);
  } catch (const error&) {
    can_make = false;
  }
  EXPECT_EQ(has_ipv6(), can_make);
}

}  // namespace anysock::testing
