// Byte-order helpers and the inet_* address conversions (pure functions, no backend).
#include <gtest/gtest.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>

#include "../support/support.hpp"
#include "anysock/socket.hpp"

namespace anysock {
namespace {

using testing::errno_of;

std::string bytes(std::initializer_list<unsigned char> list) {
  return std::string(list.begin(), list.end());
}

TEST(ByteOrder, HostToNetworkPutsTheMostSignificantByteFirst) {
  const uint32_t long_n = htonl(0x01020304u);
  unsigned char long_bytes[4];
  std::memcpy(long_bytes, &long_n, sizeof long_n);
  EXPECT_EQ(long_bytes[0], 1);
  EXPECT_EQ(long_bytes[1], 2);
  EXPECT_EQ(long_bytes[2], 3);
  EXPECT_EQ(long_bytes[3], 4);

  const uint16_t short_n = htons(0x0102);
  unsigned char short_bytes[2];
  std::memcpy(short_bytes, &short_n, sizeof short_n);
  EXPECT_EQ(short_bytes[0], 1);
  EXPECT_EQ(short_bytes[1], 2);
}

TEST(ByteOrder, ConversionsRoundTrip) {
  for (uint32_t x : {0u, 1u, 0x7f000001u, 0xdeadbeefu, 0xffffffffu}) {
    EXPECT_EQ(ntohl(htonl(x)), x);
    EXPECT_EQ(htonl(ntohl(x)), x);
  }
  for (uint16_t x : {uint16_t{0}, uint16_t{80}, uint16_t{0x1234}, uint16_t{0xffff}}) {
    EXPECT_EQ(ntohs(htons(x)), x);
    EXPECT_EQ(htons(ntohs(x)), x);
  }
  EXPECT_EQ(ntohs(htons(8080)), 8080);
}

TEST(InetAton, PacksADottedQuad) {
  EXPECT_EQ(inet_aton("127.0.0.1"), bytes({127, 0, 0, 1}));
  EXPECT_EQ(inet_aton("255.255.255.255"), bytes({255, 255, 255, 255}));
  EXPECT_EQ(inet_aton("0.0.0.0"), bytes({0, 0, 0, 0}));
}

TEST(InetAton, AcceptsTheShortForms) {
  EXPECT_EQ(inet_aton("127.1"), bytes({127, 0, 0, 1}));
  EXPECT_EQ(inet_aton("10.1.2"), bytes({10, 1, 0, 2}));
  EXPECT_EQ(inet_aton("2130706433"), bytes({127, 0, 0, 1}));  // one 32-bit number
  EXPECT_EQ(inet_aton("0x7f.1"), bytes({127, 0, 0, 1}));      // hexadecimal parts
}

TEST(InetAton, RejectsBadAddressesWithEinval) {
  for (const std::string bad : {"", "abc", "1.2.3.256", "1.2.3.4.5", "1..2.3", "-1.0.0.0"}) {
    EXPECT_EQ(errno_of([&] { inet_aton(bad); }), EINVAL) << bad;
  }
  EXPECT_EQ(errno_of([&] { inet_aton(std::string("127.0.0.1\0junk", 14)); }), EINVAL);
}

TEST(InetNtoa, FormatsFourPackedBytes) {
  EXPECT_EQ(inet_ntoa(bytes({127, 0, 0, 1})), "127.0.0.1");
  EXPECT_EQ(inet_ntoa(bytes({192, 168, 10, 254})), "192.168.10.254");
  EXPECT_EQ(inet_ntoa(inet_aton("10.1.2")), "10.1.0.2");
}

TEST(InetNtoa, OtherLengthsRaiseEinval) {
  EXPECT_EQ(errno_of([] { inet_ntoa(""); }), EINVAL);
  EXPECT_EQ(errno_of([] { inet_ntoa(bytes({1, 2, 3})); }), EINVAL);
  EXPECT_EQ(errno_of([] { inet_ntoa(bytes({1, 2, 3, 4, 5})); }), EINVAL);
}

TEST(InetPton, PacksIpv4AndIpv6) {
  EXPECT_EQ(inet_pton(AF_INET, "192.168.1.2"), bytes({192, 168, 1, 2}));
  EXPECT_EQ(inet_pton(AF_INET6, "::1"), std::string(15, '\0') + '\1');
  EXPECT_EQ(inet_pton(AF_INET6, "::"), std::string(16, '\0'));
  EXPECT_EQ(inet_pton(AF_INET6, "2001:db8::ff00:42:8329"),
            bytes({0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0xff, 0, 0, 0x42, 0x83, 0x29}));
  EXPECT_EQ(inet_pton(AF_INET6, "::ffff:1.2.3.4"),
            bytes({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 1, 2, 3, 4}));
}

TEST(InetPton, RejectsBadTextAndFamilies) {
  // inet_pton is strict: no short forms, unlike inet_aton.
  EXPECT_THROW(inet_pton(AF_INET, "127.1"), error);
  EXPECT_THROW(inet_pton(AF_INET, "::1"), error);
  EXPECT_THROW(inet_pton(AF_INET6, "1.2.3.4"), error);
  EXPECT_THROW(inet_pton(AF_INET6, "1:2:3:4:5:6:7:8:9"), error);
  EXPECT_THROW(inet_pton(AF_INET6, "2001:db8:::1"), error);
  EXPECT_THROW(inet_pton(AF_INET, std::string("1.2.3.4\0", 8)), error);
  EXPECT_EQ(errno_of([] { inet_pton(AF_UNIX, "1.2.3.4"); }), EAFNOSUPPORT);
}

TEST(InetNtop, FormatsIpv4) { EXPECT_EQ(inet_ntop(AF_INET, bytes({10, 0, 0, 255})), "10.0.0.255"); }

TEST(InetNtop, FormatsIpv6AsRfc5952Text) {
  auto canonical = [](const std::string& text) {
    return inet_ntop(AF_INET6, inet_pton(AF_INET6, text));
  };
  EXPECT_EQ(canonical("2001:0DB8:0000:0000:0000:0000:0000:0001"), "2001:db8::1");
  EXPECT_EQ(canonical("2001:DB8::ABCD"), "2001:db8::abcd");              // lower case
  EXPECT_EQ(canonical("2001:db8:0:0:1:0:0:1"), "2001:db8::1:0:0:1");     // first of equal runs
  EXPECT_EQ(canonical("2001:0:0:1:0:0:0:1"), "2001:0:0:1::1");           // the longest run
  EXPECT_EQ(canonical("2001:db8:0:1:1:1:1:1"), "2001:db8:0:1:1:1:1:1");  // one zero stays
  EXPECT_EQ(canonical("0:0:0:0:0:0:0:1"), "::1");
  EXPECT_EQ(canonical("0:0:0:0:0:0:0:0"), "::");
  EXPECT_EQ(canonical("fe80:0:0:0:0:0:0:0"), "fe80::");
}

TEST(InetNtop, RoundTripsWithInetPton) {
  for (const std::string text : {"2001:db8::1", "::1", "fe80::1:2", "1:2:3:4:5:6:7:8"}) {
    EXPECT_EQ(inet_ntop(AF_INET6, inet_pton(AF_INET6, text)), text);
  }
  for (const std::string text : {"0.0.0.0", "127.0.0.1", "255.255.255.255"}) {
    EXPECT_EQ(inet_ntop(AF_INET, inet_pton(AF_INET, text)), text);
  }
}

TEST(InetNtop, WrongPackedLengthIsAnInvalidArgument) {
  EXPECT_THROW(inet_ntop(AF_INET, bytes({1, 2, 3})), std::invalid_argument);
  EXPECT_THROW(inet_ntop(AF_INET, std::string(16, '\0')), std::invalid_argument);
  EXPECT_THROW(inet_ntop(AF_INET6, bytes({1, 2, 3, 4})), std::invalid_argument);
  EXPECT_THROW(inet_ntop(AF_INET6, std::string(17, '\0')), std::invalid_argument);
}

TEST(InetNtop, UnknownFamilyIsAnInvalidArgument) {
  EXPECT_THROW(inet_ntop(AF_UNIX, bytes({1, 2, 3, 4})), std::invalid_argument);
  EXPECT_THROW(inet_ntop(12345, std::string(16, '\0')), std::invalid_argument);
}

}  // namespace
}  // namespace anysock
