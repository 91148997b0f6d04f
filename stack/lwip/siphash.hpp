// SipHash-2-4 (Aumasson and Bernstein, 2012): a keyed 64-bit hash, the pseudo-random function
// behind our RFC 6528 initial sequence numbers. Written from the paper's description.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace anysock::lwip_detail {

inline uint64_t siphash24(const uint64_t key[2], const void* data, size_t len) {
  auto rotl = [](uint64_t x, int b) { return (x << b) | (x >> (64 - b)); };
  uint64_t v0 = 0x736f6d6570736575ull ^ key[0];
  uint64_t v1 = 0x646f72616e646f6dull ^ key[1];
  uint64_t v2 = 0x6c7967656e657261ull ^ key[0];
  uint64_t v3 = 0x7465646279746573ull ^ key[1];
  auto round = [&] {
    v0 += v1;
    v1 = rotl(v1, 13);
    v1 ^= v0;
    v0 = rotl(v0, 32);
    v2 += v3;
    v3 = rotl(v3, 16);
    v3 ^= v2;
    v0 += v3;
    v3 = rotl(v3, 21);
    v3 ^= v0;
    v2 += v1;
    v1 = rotl(v1, 17);
    v1 ^= v2;
    v2 = rotl(v2, 32);
  };
  const auto* p = static_cast<const unsigned char*>(data);
  size_t blocks = len / 8;
  for (size_t i = 0; i < blocks; ++i) {
    uint64_t m;
    std::memcpy(&m, p + i * 8, 8);  // little-endian hosts (x86-64, arm64)
    v3 ^= m;
    round();
    round();
    v0 ^= m;
  }
  uint64_t last = static_cast<uint64_t>(len) << 56;
  for (size_t i = 0; i < len % 8; ++i) last |= static_cast<uint64_t>(p[blocks * 8 + i]) << (8 * i);
  v3 ^= last;
  round();
  round();
  v0 ^= last;
  v2 ^= 0xff;
  for (int i = 0; i < 4; ++i) round();
  return v0 ^ v1 ^ v2 ^ v3;
}

}  // namespace anysock::lwip_detail
