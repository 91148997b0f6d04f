// Choosing backends: parsing spec strings, make_backend and the registry, the process default
// (read once from ANYSOCK_BACKEND), backend_scope, backend lifetime, and fromfd on the kernel.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>

#include "anysock/socket.hpp"

namespace anysock {
namespace {

using params = std::vector<std::pair<std::string, std::string>>;

// The what() of the std::invalid_argument that parse_backend_spec(spec) throws ("" if none).
std::string parse_error(std::string_view spec) {
  try {
    parse_backend_spec(spec);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

// The what() of the std::invalid_argument that make_backend(spec) throws ("" if none).
std::string make_error(std::string_view spec) {
  try {
    make_backend(spec);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

// ---- a do-nothing backend, to tell backends apart and watch their lifetime ----------------------

class inert_socket final : public socket_impl {
 public:
  int fileno() const override { return 1000; }
  int bind(const sockaddr*, socklen_t) override { return ENOSYS; }
  int listen(int) override { return ENOSYS; }
  int connect(const sockaddr*, socklen_t, const wait_spec&) override { return ENOSYS; }
  int accept(const wait_spec&, std::unique_ptr<socket_impl>&, sockaddr_storage&,
             socklen_t&) override {
    return ENOSYS;
  }
  int recv(void*, size_t, int, const wait_spec&, size_t&, sockaddr_storage*, socklen_t*) override {
    return ENOSYS;
  }
  int send(const void*, size_t, int, const wait_spec&, size_t&, const sockaddr*,
           socklen_t) override {
    return ENOSYS;
  }
  int shutdown(int) override { return ENOSYS; }
  int getsockname(sockaddr_storage&, socklen_t&) const override { return ENOSYS; }
  int getpeername(sockaddr_storage&, socklen_t&) const override { return ENOSYS; }
  int getsockopt(int, int, void*, socklen_t&) const override { return ENOSYS; }
  int setsockopt(int, int, const void*, socklen_t) override { return ENOSYS; }
  short poll_now(short) override { return 0; }
};

class inert_backend final : public backend {
 public:
  explicit inert_backend(std::string spec) : spec_(std::move(spec)) {}
  std::string spec() const override { return spec_; }
  double now() const override { return 0; }
  bool has_family(int family) const override { return family == AF_INET; }
  int open(int, int, int, std::unique_ptr<socket_impl>& out) override {
    out = std::make_unique<inert_socket>();
    return 0;
  }
  int socketpair(int, int, int, std::unique_ptr<socket_impl>&,
                 std::unique_ptr<socket_impl>&) override {
    return EOPNOTSUPP;
  }
  int poll(std::span<poll_entry>, const wait_spec&, int& ready) override {
    ready = 0;
    return ENOSYS;
  }
  std::vector<addr_info> getaddrinfo(const char*, const char*, int, int, int, int) override {
    throw gaierror(EAI_FAIL);
  }
  std::pair<std::string, std::string> getnameinfo(const sockaddr*, socklen_t, int) override {
    throw gaierror(EAI_FAIL);
  }
  host_entry gethostbyname_ex(const std::string&) override { throw herror(NO_RECOVERY); }
  host_entry gethostbyaddr(const std::string&) override { throw herror(NO_RECOVERY); }
  std::string gethostname() override { return "inert"; }

 private:
  std::string spec_;
};

std::shared_ptr<backend> make_inert(const backend_spec& spec) {
  std::string text = spec.kind;
  char separator = ':';
  for (const auto& [key, value] : spec.params) {
    text += separator + key + "=" + value;
    separator = ',';
  }
  return std::make_shared<inert_backend>(text);
}

// Registers the "inert" kind once for the tests that need a second backend.
std::shared_ptr<backend> make_inert_backend(const std::string& name) {
  register_backend_kind("inert", &make_inert);
  return make_backend("inert:name=" + name);
}

// ---- parse_backend_spec
// ---------------------------------------------------------------------------

TEST(ParseBackendSpec, AKindAloneHasNoParams) {
  backend_spec s = parse_backend_spec("kernel");
  EXPECT_EQ(s.kind, "kernel");
  EXPECT_TRUE(s.params.empty());
}

TEST(ParseBackendSpec, SplitsKeyValuePairs) {
  backend_spec s = parse_backend_spec("lwip+tap:iface=as_tap0,ip=10.77.1.2/24");
  EXPECT_EQ(s.kind, "lwip+tap");
  EXPECT_EQ(s.params, (params{{"iface", "as_tap0"}, {"ip", "10.77.1.2/24"}}));
}

TEST(ParseBackendSpec, QuotedValuesMayContainCommasAndColons) {
  backend_spec s = parse_backend_spec("lwip+pcap:file='/tmp/a,b:c.pcap',ip=10.0.0.1/8,note=''");
  EXPECT_EQ(s.kind, "lwip+pcap");
  EXPECT_EQ(s.params, (params{{"file", "/tmp/a,b:c.pcap"}, {"ip", "10.0.0.1/8"}, {"note", ""}}));
}

TEST(ParseBackendSpec, KeysKeepTheirOrder) {
  backend_spec s = parse_backend_spec("x:zeta=1,alpha=2,mid=3");
  EXPECT_EQ(s.params, (params{{"zeta", "1"}, {"alpha", "2"}, {"mid", "3"}}));
}

TEST(ParseBackendSpec, EmptyKindIsRejected) {
  EXPECT_NE(parse_error(""), "");
  EXPECT_NE(parse_error(":iface=x").find("kind"), std::string::npos) << parse_error(":iface=x");
}

TEST(ParseBackendSpec, BadCharactersInTheKindAreRejected) {
  EXPECT_NE(parse_error("ker nel").find("'ker nel'"), std::string::npos);
}

TEST(ParseBackendSpec, MissingEqualsSignNamesThePart) {
  std::string message = parse_error("lwip+tap:iface");
  EXPECT_NE(message.find("'iface'"), std::string::npos) << message;
  message = parse_error("lwip+tap:ip=1.2.3.4,gateway,x=1");
  EXPECT_NE(message.find("'gateway'"), std::string::npos) << message;
}

TEST(ParseBackendSpec, EmptyKeyIsRejected) {
  std::string message = parse_error("lwip+tap:=value");
  EXPECT_NE(message.find("key"), std::string::npos) << message;
}

TEST(ParseBackendSpec, DuplicateKeyNamesTheKey) {
  std::string message = parse_error("lwip+tap:iface=a,ip=1.2.3.4/8,iface=b");
  EXPECT_NE(message.find("'iface'"), std::string::npos) << message;
  EXPECT_NE(message.find("twice"), std::string::npos) << message;
}

TEST(ParseBackendSpec, UnterminatedQuoteNamesTheKey) {
  std::string message = parse_error("lwip+pcap:file='/tmp/x.pcap");
  EXPECT_NE(message.find("'file'"), std::string::npos) << message;
  EXPECT_NE(message.find("unterminated"), std::string::npos) << message;
}

TEST(ParseBackendSpec, TrailingCommaIsRejected) {
  std::string message = parse_error("lwip+tap:iface=as_tap0,");
  EXPECT_NE(message.find("trailing ','"), std::string::npos) << message;
}

TEST(ParseBackendSpec, ColonsInAValueNeedNoQuotesAfterTheKind) {
  // Issue 5's own example: IPv6 addresses read as written; quoting them still works.
  backend_spec s =
      parse_backend_spec("lwip+tap:iface=as_tap0,ip=10.77.1.2/24,gw=10.77.1.1,ip6=fd00:77:1::2/64");
  EXPECT_EQ(s.kind, "lwip+tap");
  ASSERT_EQ(s.params.size(), 4u);
  EXPECT_EQ(s.params[3].first, "ip6");
  EXPECT_EQ(s.params[3].second, "fd00:77:1::2/64");
  backend_spec q = parse_backend_spec("lwip+tap:ip6='fd00:77:1::2/64'");
  EXPECT_EQ(q.params.at(0).second, "fd00:77:1::2/64");
}

TEST(ParseBackendSpec, AQuoteInsideAnUnquotedValueNamesTheKey) {
  std::string message = parse_error("lwip+tap:iface=as_tap0,ip=fe'80");
  EXPECT_NE(message.find("'ip'"), std::string::npos) << message;
  EXPECT_NE(message.find("quote"), std::string::npos) << message;
}

TEST(ParseBackendSpec, TextAfterAQuotedValueIsRejected) {
  std::string message = parse_error("lwip+pcap:file='a'b,ip=1");
  EXPECT_NE(message.find("'file'"), std::string::npos) << message;
}

// ---- make_backend and the registry
// ----------------------------------------------------------------

TEST(MakeBackend, KernelIsTheKernelBackend) {
  std::shared_ptr<backend> b = make_backend("kernel");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b.get(), &kernel_backend());
  EXPECT_EQ(b->spec(), "kernel");
  socket s(*b, AF_INET, SOCK_STREAM);
  EXPECT_GE(s.fileno(), 0);
  EXPECT_EQ(&s.get_backend(), &kernel_backend());
}

TEST(MakeBackend, KernelTakesNoKeys) {
  std::string message = make_error("kernel:x=1");
  EXPECT_NE(message.find("'x'"), std::string::npos) << message;
}

TEST(MakeBackend, UnknownKindIsAnInvalidArgumentNamingIt) {
  std::string message = make_error("nosuch");
  EXPECT_NE(message.find("'nosuch'"), std::string::npos) << message;
  EXPECT_NE(make_error("nosuch:a=1"), "");
  EXPECT_NE(make_error(""), "");  // and a malformed spec never reaches a factory
}

TEST(MakeBackend, RegisteredKindsAreMadeFromTheirSpec) {
  std::shared_ptr<backend> b = make_inert_backend("one");
  EXPECT_EQ(b->spec(), "inert:name=one");
  EXPECT_NE(b.get(), &kernel_backend());
}

// ---- default backend, scopes and lifetime
// ---------------------------------------------------------

TEST(DefaultBackend, IsReadOnceFromTheEnvironment) {
  const char* original = std::getenv("ANYSOCK_BACKEND");
  const std::optional<std::string> saved =
      original ? std::optional<std::string>(original) : std::nullopt;
  backend& first = default_backend();
  if (original == nullptr) {
    EXPECT_EQ(&first, &kernel_backend());  // unset means the kernel
  }

  ASSERT_EQ(::setenv("ANYSOCK_BACKEND", "nosuch:bad", 1), 0);
  EXPECT_EQ(&default_backend(), &first);
  EXPECT_NO_THROW(socket(AF_INET, SOCK_STREAM));
  if (saved) {
    ::setenv("ANYSOCK_BACKEND", saved->c_str(), 1);
  } else {
    ::unsetenv("ANYSOCK_BACKEND");
  }
}

TEST(BackendScope, NestsAndRestoresTheDefault) {
  auto outer = make_inert_backend("outer");
  auto inner = make_inert_backend("inner");
  backend& before = default_backend();
  {
    backend_scope outer_scope(*outer);
    EXPECT_EQ(&default_backend(), outer.get());
    {
      backend_scope inner_scope(*inner);
      EXPECT_EQ(&default_backend(), inner.get());
      socket s(AF_INET, SOCK_STREAM);
      EXPECT_EQ(&s.get_backend(), inner.get());
    }
    EXPECT_EQ(&default_backend(), outer.get());
    socket s(AF_INET, SOCK_STREAM);
    EXPECT_EQ(&s.get_backend(), outer.get());
  }
  EXPECT_EQ(&default_backend(), &before);
}

TEST(BackendScope, AppliesOnlyToItsOwnThread) {
  auto scoped = make_inert_backend("scoped");
  backend& before = default_backend();
  backend_scope scope(*scoped);
  backend* seen_by_other_thread = nullptr;
  std::thread([&] { seen_by_other_thread = &default_backend(); }).join();
  EXPECT_EQ(seen_by_other_thread, &before);
  EXPECT_EQ(&default_backend(), scoped.get());
}

TEST(BackendScope, KeepsItsBackendAlive) {
  auto b = make_inert_backend("scope-owned");
  std::weak_ptr<backend> watch = b;
  {
    backend_scope scope(*b);
    b.reset();
    EXPECT_FALSE(watch.expired());
    EXPECT_EQ(default_backend().spec(), "inert:name=scope-owned");
  }
  EXPECT_TRUE(watch.expired());
}

TEST(BackendLifetime, ASocketKeepsItsBackendAlive) {
  auto b = make_inert_backend("socket-owned");
  std::weak_ptr<backend> watch = b;
  socket s(*b, AF_INET, SOCK_STREAM);
  b.reset();
  EXPECT_FALSE(watch.expired());
  EXPECT_EQ(s.get_backend().spec(), "inert:name=socket-owned");
  EXPECT_EQ(s.fileno(), 1000);
  s.close();
  EXPECT_TRUE(watch.expired());
}

TEST(BackendLifetime, SetDefaultBackendReplacesTheProcessDefault) {
  backend& before = default_backend();
  auto b = make_inert_backend("process");
  set_default_backend(*b);
  EXPECT_EQ(&default_backend(), b.get());
  socket s(AF_INET, SOCK_STREAM);
  EXPECT_EQ(&s.get_backend(), b.get());
  std::thread([&] { EXPECT_EQ(&default_backend(), b.get()); }).join();
  set_default_backend(before);
  EXPECT_EQ(&default_backend(), &before);
}

// ---- fromfd (kernel descriptors only)
// -------------------------------------------------------------

TEST(Fromfd, DuplicatesTheDescriptorAndLeavesTheOriginalOpen) {
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  {
    socket s = fromfd(fds[0], AF_UNIX, SOCK_STREAM);
    s.settimeout(5.0);
    EXPECT_NE(s.fileno(), fds[0]);
    EXPECT_EQ(&s.get_backend(), &kernel_backend());
    EXPECT_EQ(s.family(), AF_UNIX);
    EXPECT_EQ(s.type(), SOCK_STREAM);
    EXPECT_EQ(s.getsockopt(SOL_SOCKET, SO_TYPE), SOCK_STREAM);

    s.sendall("from anysock");
    char buf[32] = {};
    ASSERT_EQ(::recv(fds[1], buf, sizeof buf, 0), 12);
    EXPECT_EQ(std::string(buf, 12), "from anysock");
    ASSERT_EQ(::send(fds[1], "to anysock", 10, 0), 10);
    EXPECT_EQ(s.recv(32), "to anysock");
    s.close();
  }
  // The original descriptor still works: the peer gets what it sends.
  ASSERT_EQ(::send(fds[0], "still open", 10, MSG_NOSIGNAL), 10);
  char buf[32] = {};
  EXPECT_EQ(::recv(fds[1], buf, sizeof buf, 0), 10);
  EXPECT_EQ(std::string(buf, 10), "still open");
  ::close(fds[0]);
  ::close(fds[1]);
}

TEST(Fromfd, ABadDescriptorRaisesEbadf) {
  try {
    fromfd(-1, AF_INET, SOCK_STREAM);
    ADD_FAILURE() << "fromfd(-1) returned";
  } catch (const error& e) {
    EXPECT_EQ(e.code().value(), EBADF);
  }
}

}  // namespace
}  // namespace anysock
