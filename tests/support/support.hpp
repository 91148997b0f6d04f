// Test helpers shared by every suite.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "anysock/error.hpp"

namespace anysock::testing {

/// Bounds calls that would otherwise hang (seconds); never a speed expectation.
inline constexpr double kGenerousWait = 5.0;

/// The errno an anysock::error thrown by `op` carries, or 0 when `op` returns normally.
template <class Op>
int errno_of(Op&& op) {
  try {
    op();
  } catch (const error& e) {
    return e.code().value();
  }
  return 0;
}

/// Deterministic, non-repeating-looking bytes (xorshift), so reordering or loss changes a hash.
inline std::string pattern(size_t size, uint32_t seed) {
  std::string out(size, '\0');
  uint32_t x = seed | 1u;
  for (char& c : out) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    c = static_cast<char>(x & 0xff);
  }
  return out;
}

}  // namespace anysock::testing
