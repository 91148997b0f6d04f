// main() of the driver tests: re-runs itself inside a private network namespace (netns.hpp).
#include <gtest/gtest.h>

#include "netns.hpp"

int main(int argc, char** argv) {
  int status = anysock::testing::run_tests_in_namespace(argc, argv);
  if (status >= 0) return status;  // the child in the namespace ran the tests
  if (anysock::testing::in_private_namespace()) anysock::testing::prepare_namespace();
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
