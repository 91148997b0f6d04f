// main() of the tests of lwIP hosts on real links: re-runs itself inside a private network
// namespace (tests/drivers/netns.hpp), with IPv6 on (the drivers' own tests turn it off).
#include <gtest/gtest.h>

#include "links_support.hpp"

int main(int argc, char** argv) {
  int status = anysock::testing::run_tests_in_namespace(argc, argv);
  if (status >= 0) return status;  // the child in the namespace ran the tests
  if (anysock::testing::in_private_namespace()) anysock::testing::prepare_links_namespace();
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
