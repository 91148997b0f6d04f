// Prints whether the process runs in secure-execution mode (AT_SECURE: set-uid, set-gid or file
// capabilities) and the spec of the process default backend, or what choosing it threw. Run by
// secure_env_test.cpp as a set-gid copy with ANYSOCK_BACKEND set.
#include <sys/auxv.h>

#include <cstdio>
#include <exception>

#include "anysock/backend.hpp"

int main() {
  std::printf("secure=%lu\n", getauxval(AT_SECURE));
  try {
    std::printf("backend=%s\n", anysock::default_backend().spec().c_str());
  } catch (const std::exception& e) {
    std::printf("error=%s\n", e.what());
  }
  return 0;
}
