// Names on lwIP hosts: a host resolves the other hosts of its link by name (IPv4 and IPv6), the
// process-wide hosts table adds names, unknown names are gaierror(EAI_NONAME), and gethostname,
// getnameinfo and gethostbyaddr answer with the hosts' names.
#include <set>
#include <utility>

#include "lwip_support.hpp"

namespace anysock::testing {
namespace {

class Names : public LwipTest {
 protected:
  std::shared_ptr<backend> a_ =
      make_backend("lwip+sim:host=a,link=names,ip=10.64.0.1/24,ip6='fd00:64::1/64'");
  std::shared_ptr<backend> b_ =
      make_backend("lwip+sim:host=b,link=names,ip=10.64.0.2/24,ip6='fd00:64::2/64'");
};

// The EAI_* code of the gaierror `op` throws, or 0 if it throws none.
template <class Op>
int gai_code_of(Op&& op) {
  try {
    op();
  } catch (const gaierror& e) {
    return e.code().value();
  }
  return 0;
}

// Removes a hosts-table entry when the test ends, whatever happens.
struct host_entry_guard {
  std::string name;
  ~host_entry_guard() { lwip::remove_host_entry(name); }
};

}  // namespace

TEST_F(Names, AHostResolvesAnotherHostOfItsLinkToItsIPv4AndIPv6Addresses) {
  backend_scope scope(*b_);
  std::set<std::pair<int, std::string>> found;
  for (const addr_info& ai : getaddrinfo("a", "80", 0, SOCK_STREAM)) {
    EXPECT_EQ(ai.addr.port, 80);
    EXPECT_EQ(ai.type, SOCK_STREAM);
    found.emplace(ai.family, ai.addr.host);
  }
  const std::set<std::pair<int, std::string>> expected = {{AF_INET, "10.64.0.1"},
                                                          {AF_INET6, "fd00:64::1"}};
  EXPECT_EQ(found, expected);
  EXPECT_EQ(gethostbyname("a"), "10.64.0.1");
}

TEST_F(Names, CreateConnectionReachesAnotherHostByName) {
  socket l(*a_, AF_INET, SOCK_STREAM);  // IPv4 only: the IPv6 address is tried first and refused
  l.bind({"", 0});
  l.listen(1);
  l.settimeout(kGenerousWait);
  backend_scope scope(*b_);
  socket c = create_connection({"a", l.getsockname().port}, kGenerousWait);
  auto [s, peer] = l.accept();
  EXPECT_EQ(peer.host, "10.64.0.2");
  EXPECT_EQ(&c.get_backend(), b_.get());
  c.sendall("by name");
  s.settimeout(kGenerousWait);
  EXPECT_EQ(s.recv(64), "by name");
}

TEST_F(Names, AnUnknownNameIsGaierrorNoName) {
  backend_scope scope(*b_);
  EXPECT_EQ(gai_code_of([] { getaddrinfo("no-such-host", "80"); }), EAI_NONAME);
  EXPECT_EQ(gai_code_of([] {
              create_connection({"no-such-host", 80}, kGenerousWait);
            }),
            EAI_NONAME);
  EXPECT_EQ(gai_code_of([] { gethostbyname("no-such-host"); }), EAI_NONAME);
}

TEST_F(Names, AHostsTableEntryResolvesOnEveryHostUntilRemoved) {
  host_entry_guard guard{"db.example"};
  lwip::add_host_entry("db.example", "10.64.0.1");
  socket l(*a_, AF_INET, SOCK_STREAM);
  l.bind({"10.64.0.1", 0});
  l.listen(1);
  l.settimeout(kGenerousWait);
  {
    backend_scope scope(*b_);
    std::vector<addr_info> infos = getaddrinfo("db.example", "80", 0, SOCK_STREAM);
    ASSERT_EQ(infos.size(), 1u);
    EXPECT_EQ(infos[0].family, AF_INET);
    EXPECT_EQ(infos[0].addr.host, "10.64.0.1");
    socket c = create_connection({"db.example", l.getsockname().port}, kGenerousWait);
    EXPECT_EQ(l.accept().second.host, "10.64.0.2");
  }
  {
    backend_scope scope(*a_);
    EXPECT_EQ(gethostbyname("db.example"), "10.64.0.1");
  }
  lwip::remove_host_entry("db.example");
  backend_scope scope(*b_);
  EXPECT_EQ(gai_code_of([] { getaddrinfo("db.example", "80"); }), EAI_NONAME);
}

TEST_F(Names, AHostsTableEntryMustBeANumericAddress) {
  EXPECT_THROW(lwip::add_host_entry("bad.example", "not-an-address"), std::invalid_argument);
  EXPECT_THROW(lwip::add_host_entry("", "10.64.0.1"), std::invalid_argument);
}

TEST_F(Names, GethostnameInAHostsScopeIsThatHostsName) {
  backend_scope outer(*b_);
  EXPECT_EQ(gethostname(), "b");
  {
    backend_scope inner(*a_);
    EXPECT_EQ(gethostname(), "a");
  }
  EXPECT_EQ(gethostname(), "b");
}

TEST_F(Names, GetnameinfoAndGethostbyaddrNameTheHostOwningAnAddress) {
  backend_scope scope(*b_);
  EXPECT_EQ(getnameinfo({"10.64.0.1", 80}, 0).first, "a");
  EXPECT_EQ(getnameinfo({"fd00:64::1", 80}, 0).first, "a");
  EXPECT_EQ(getnameinfo({"10.64.0.2", 80}, 0).first, "b");
  EXPECT_EQ(getnameinfo({"10.64.0.1", 80}, NI_NUMERICHOST).first, "10.64.0.1");
  EXPECT_EQ(getnameinfo({"10.64.0.99", 80}, 0).first, "10.64.0.99") << "nobody owns it";
  EXPECT_EQ(gai_code_of([] { getnameinfo({"10.64.0.99", 80}, NI_NAMEREQD); }), EAI_NONAME);
  EXPECT_EQ(gethostbyaddr("10.64.0.1").name, "a");
}

}  // namespace anysock::testing
