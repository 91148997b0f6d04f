// Building and reading the few frames the driver tests exchange with the kernel: ARP, IPv4/UDP,
// and numbered frames of a local experimental ethertype.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace anysock::testing {

using mac = std::array<uint8_t, 6>;
using ip4 = std::array<uint8_t, 4>;

inline constexpr uint16_t kEtherArp = 0x0806;
inline constexpr uint16_t kEtherIp4 = 0x0800;
inline constexpr uint16_t kEtherTest = 0x88b5;  // IEEE 802 local experimental ethertype 1
inline constexpr mac kBroadcast{0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

inline uint16_t be16(std::span<const uint8_t> f, size_t at) {
  return static_cast<uint16_t>(f[at] << 8 | f[at + 1]);
}
inline void put16(std::vector<uint8_t>& f, size_t at, uint16_t v) {
  f[at] = static_cast<uint8_t>(v >> 8);
  f[at + 1] = static_cast<uint8_t>(v);
}
template <size_t N>
std::array<uint8_t, N> take(std::span<const uint8_t> f, size_t at) {
  std::array<uint8_t, N> out{};
  std::memcpy(out.data(), f.data() + at, N);
  return out;
}
template <size_t N>
void put(std::vector<uint8_t>& f, size_t at, const std::array<uint8_t, N>& v) {
  std::memcpy(f.data() + at, v.data(), N);
}

/// The Ethernet header fields of a frame (at least 14 bytes).
inline mac dst_of(std::span<const uint8_t> f) { return take<6>(f, 0); }
inline mac src_of(std::span<const uint8_t> f) { return take<6>(f, 6); }
inline uint16_t ethertype_of(std::span<const uint8_t> f) { return be16(f, 12); }

/// An ARP frame for IPv4 over Ethernet, padded to the 60-byte minimum.
inline std::vector<uint8_t> arp_frame(uint16_t op, const mac& dst, const mac& sha, const ip4& spa,
                                      const mac& tha, const ip4& tpa) {
  std::vector<uint8_t> f(60, 0);
  put(f, 0, dst);
  put(f, 6, sha);
  put16(f, 12, kEtherArp);
  put16(f, 14, 1);       // hardware: Ethernet
  put16(f, 16, 0x0800);  // protocol: IPv4
  f[18] = 6;
  f[19] = 4;
  put16(f, 20, op);
  put(f, 22, sha);
  put(f, 28, spa);
  put(f, 32, tha);
  put(f, 38, tpa);
  return f;
}

struct arp_fields {
  uint16_t op;
  mac sha;
  ip4 spa;
  mac tha;
  ip4 tpa;
};

/// The ARP fields of an IPv4-over-Ethernet ARP frame, or nothing for any other frame.
inline std::optional<arp_fields> parse_arp(std::span<const uint8_t> f) {
  if (f.size() < 42 || ethertype_of(f) != kEtherArp || be16(f, 14) != 1 || be16(f, 16) != 0x0800 ||
      f[18] != 6 || f[19] != 4) {
    return std::nullopt;
  }
  return arp_fields{be16(f, 20), take<6>(f, 22), take<4>(f, 28), take<6>(f, 32), take<4>(f, 38)};
}

struct udp_fields {
  ip4 src;
  ip4 dst;
  uint16_t sport;
  uint16_t dport;
  std::string payload;
};

/// The addresses, ports and payload of an IPv4/UDP frame (no options, not fragmented), or nothing.
inline std::optional<udp_fields> parse_udp(std::span<const uint8_t> f) {
  if (f.size() < 42 || ethertype_of(f) != kEtherIp4 || f[14] != 0x45 || f[23] != 17) {
    return std::nullopt;
  }
  size_t ip_len = be16(f, 16);
  size_t udp_len = be16(f, 38);
  if (14 + ip_len > f.size() || udp_len < 8 || 34 + udp_len > 14 + ip_len) return std::nullopt;
  udp_fields u{take<4>(f, 26), take<4>(f, 30), be16(f, 34), be16(f, 36), {}};
  u.payload.assign(reinterpret_cast<const char*>(f.data()) + 42, udp_len - 8);
  return u;
}

/// Test frame number `seq` of ethertype kEtherTest, `size` bytes (>= 60), with a payload derived
/// from `seq` so a frame can be checked byte by byte.
inline std::vector<uint8_t> numbered_frame(const mac& dst, const mac& src, uint32_t seq,
                                           size_t size) {
  std::vector<uint8_t> f(size, 0);
  put(f, 0, dst);
  put(f, 6, src);
  put16(f, 12, kEtherTest);
  f[14] = static_cast<uint8_t>(seq >> 24);
  f[15] = static_cast<uint8_t>(seq >> 16);
  f[16] = static_cast<uint8_t>(seq >> 8);
  f[17] = static_cast<uint8_t>(seq);
  for (size_t i = 18; i < size; ++i) f[i] = static_cast<uint8_t>(seq * 31 + i);
  return f;
}

/// The number in a numbered_frame(), if `f` is one (its bytes all as numbered_frame() made them).
inline std::optional<uint32_t> number_of(std::span<const uint8_t> f) {
  if (f.size() < 60 || ethertype_of(f) != kEtherTest) return std::nullopt;
  uint32_t seq = uint32_t{f[14]} << 24 | uint32_t{f[15]} << 16 | uint32_t{f[16]} << 8 | f[17];
  for (size_t i = 18; i < f.size(); ++i) {
    if (f[i] != static_cast<uint8_t>(seq * 31 + i)) return std::nullopt;
  }
  return seq;
}

}  // namespace anysock::testing
