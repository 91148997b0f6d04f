// The environments every conformance test runs in. The kernel backend is the reference.
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
  return envs;
}

}  // namespace

INSTANTIATE_TEST_SUITE_P(Backends, Conformance, ::testing::ValuesIn(environments()),
                         [](const ::testing::TestParamInfo<conformance_env>& p) {
                           return p.param.name;
                         });

}  // namespace anysock::testing
