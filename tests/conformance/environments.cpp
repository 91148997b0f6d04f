// The environments every conformance test runs in. The kernel backend is the reference.
#include "anysock/lwip.hpp"
#include "fixture.hpp"

namespace anysock::testing {
namespace {

std::vector<conformance_env> environments() {
  std::vector<conformance_env> envs;
  conformance_env kernel;
  kernel.name = "kernel";
  kernel.make_server = [] { return make_backend("kernel"); };
  kernel.make_client = [] { return make_backend("kernel"); };
  kernel.has_ipv6 = kernel_backend().has_family(AF_INET6);
  envs.push_back(kernel);

#ifdef ANYSOCK_TEST_LWIP
  // Every lwIP pool and the heap are back to their starting counts once a test's sockets are
  // closed.
  auto no_lwip_leaks = [] { EXPECT_EQ(lwip::leak_report(), "") << "lwIP memory still in use"; };

  // Client and server on two lwIP hosts that exchange packets over the in-memory link.
  conformance_env two;
  two.name = "lwip_two_hosts";
  two.make_server = [] {
    return make_backend("lwip+sim:host=srv,link=conf2,ip=10.99.0.1/24,ip6='fd00:99::1/64'");
  };
  two.make_client = [] {
    return make_backend("lwip+sim:host=cli,link=conf2,ip=10.99.0.2/24,ip6='fd00:99::2/64'");
  };
  two.server_host4 = two.dial_host4 = "10.99.0.1";
  two.server_host6 = two.dial_host6 = "fd00:99::1";
  two.server_name = "srv";
  two.has_unix = false;
  two.after_each = no_lwip_leaks;
  envs.push_back(two);

  // Both ends on one lwIP host, over its loopback.
  conformance_env solo;
  solo.name = "lwip_loopback";
  solo.make_server = [] { return make_backend("lwip+sim:host=solo,link=conf1"); };
  solo.make_client = [] { return make_backend("lwip+sim:host=solo,link=conf1"); };
  solo.has_unix = false;
  solo.after_each = no_lwip_leaks;
  envs.push_back(solo);
#endif
  return envs;
}

}  // namespace

INSTANTIATE_TEST_SUITE_P(Backends, Conformance, ::testing::ValuesIn(environments()),
                         [](const ::testing::TestParamInfo<conformance_env>& p) {
                           return p.param.name;
                         });

}  // namespace anysock::testing
