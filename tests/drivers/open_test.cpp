// Opening links: bad options are std::invalid_argument naming the key, what the OS refuses is an
// anysock::error whose errno and message say what is wrong and how to fix it.
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <thread>

#include "anysock/error.hpp"
#include "link.hpp"
#include "netns.hpp"

namespace anysock::testing {
namespace {

using drivers::link_options;
using drivers::open_link;

// The message of the std::invalid_argument `open` throws, or "" if it throws nothing.
template <class Open>
std::string invalid_argument_of(Open&& open) {
  try {
    open();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

// The errno and message of the anysock::error `open` throws ({0, ""} if none).
template <class Open>
std::pair<int, std::string> error_of(Open&& open) {
  try {
    open();
  } catch (const error& e) {
    return {e.code().value(), e.what()};
  }
  return {0, ""};
}

class OpenLink : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (!in_private_namespace()) GTEST_SKIP() << namespace_unavailable_reason();
  }
  void TearDown() override { (void)shell("ip link del as_u0 2>/dev/null"); }
  const std::string& kind() const { return GetParam(); }
};

TEST(OpenLinkKinds, UnknownKindIsAnInvalidArgumentListingTheKnownOnes) {
  std::string m = invalid_argument_of([] { open_link("dpdkk", {{"iface", "as_u0"}}); });
  EXPECT_NE(m.find("unknown link driver 'dpdkk'"), std::string::npos) << m;
  EXPECT_NE(m.find("af_xdp"), std::string::npos) << m;
  EXPECT_EQ(drivers::link_kinds().size(), 4u);
  EXPECT_TRUE(drivers::link_option_keys("dpdkk").empty());
}

TEST_P(OpenLink, MissingIfaceIsAnInvalidArgument) {
  std::string m = invalid_argument_of([&] { open_link(kind(), {}); });
  EXPECT_NE(m.find(kind() + ": needs iface="), std::string::npos) << m;
}

TEST_P(OpenLink, UnknownKeyIsAnInvalidArgumentNamingIt) {
  std::string m = invalid_argument_of([&] {
    open_link(kind(), {{"iface", "as_u0"}, {"quue", "1"}});
  });
  EXPECT_NE(m.find("unknown key 'quue'"), std::string::npos) << m;
  EXPECT_NE(m.find("iface"), std::string::npos) << m;  // lists what it takes
}

TEST_P(OpenLink, RepeatedKeyIsAnInvalidArgument) {
  std::string m = invalid_argument_of([&] {
    open_link(kind(), {{"iface", "as_u0"}, {"iface", "as_u1"}});
  });
  EXPECT_NE(m.find("'iface' given twice"), std::string::npos) << m;
}

TEST_P(OpenLink, OverlongInterfaceNameIsAnInvalidArgument) {
  std::string m = invalid_argument_of([&] { open_link(kind(), {{"iface", "as_much_too_long0"}}); });
  EXPECT_NE(m.find("at most 15 characters"), std::string::npos) << m;
}

TEST_P(OpenLink, KnownKeysIncludeIface) {
  auto keys = drivers::link_option_keys(kind());
  EXPECT_NE(std::find(keys.begin(), keys.end(), "iface"), keys.end());
}

TEST_P(OpenLink, MissingInterfaceIsEnodevSayingHowToCreateIt) {
  link_options options{{"iface", "as_nope0"}};
  if (kind() == "tap") options.emplace_back("create", "0");
  auto [err, m] = error_of([&] { open_link(kind(), options); });
  EXPECT_EQ(err, ENODEV) << m;
  EXPECT_NE(m.find("no interface as_nope0"), std::string::npos) << m;
  EXPECT_NE(m.find(kind() == "tap" ? "ip tuntap add" : "ip link add"), std::string::npos) << m;
}

// Capabilities belong to a thread: drop them all in a new thread, and open there.
TEST_P(OpenLink, MissingPrivilegesAreEpermNamingTheCapability) {
  ASSERT_EQ(shell("ip link add as_u0 type veth peer name as_k0 && ip link set as_u0 up && "
                  "ip link set as_k0 up"),
            "");
  std::pair<int, std::string> result;
  std::thread unprivileged([&] {
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2] = {};
    if (::syscall(SYS_capget, &header, data) != 0) return;
    data[0].effective = data[1].effective = 0;
    data[0].inheritable = data[1].inheritable = 0;
    if (::syscall(SYS_capset, &header, data) != 0) return;
    // The TAP is new, so creating it needs CAP_NET_ADMIN; the others open the veth end.
    result = error_of([&] {
      open_link(kind(), {{"iface", kind() == "tap" ? "as_tap9" : "as_u0"}});
    });
  });
  unprivileged.join();
  EXPECT_EQ(result.first, EPERM) << result.second;
  EXPECT_NE(result.second.find(kind() == "tap" ? "CAP_NET_ADMIN" : "CAP_NET_RAW"),
            std::string::npos)
      << result.second;
  EXPECT_NE(result.second.find("root"), std::string::npos) << result.second;
}

INSTANTIATE_TEST_SUITE_P(Drivers, OpenLink, ::testing::Values("tap", "pcap", "af_packet", "af_xdp"),
                         [](const auto& p) { return p.param; });

TEST(OpenLinkOptions, MalformedNumbersAreInvalidArgumentsNamingKeyAndRange) {
  std::string m = invalid_argument_of([] {
    open_link("af_xdp", {{"iface", "as_u0"}, {"queue", "x1"}});
  });
  EXPECT_NE(m.find("queue=x1"), std::string::npos) << m;
  EXPECT_NE(m.find("whole number"), std::string::npos) << m;
  m = invalid_argument_of([] {
    open_link("af_packet", {{"iface", "as_u0"}, {"tx_frames", "100"}});
  });
  EXPECT_NE(m.find("power of two"), std::string::npos) << m;
  m = invalid_argument_of([] { open_link("af_xdp", {{"iface", "as_u0"}, {"mode", "fast"}}); });
  EXPECT_NE(m.find("mode=fast"), std::string::npos) << m;
  EXPECT_NE(m.find("zerocopy"), std::string::npos) << m;
  m = invalid_argument_of([] { open_link("pcap", {{"iface", "as_u0"}, {"promisc", "maybe"}}); });
  EXPECT_NE(m.find("promisc=maybe"), std::string::npos) << m;
}

class TapAttach : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!in_private_namespace()) GTEST_SKIP() << namespace_unavailable_reason();
  }
  void TearDown() override {
    (void)shell("ip link del as_tap1 2>/dev/null; ip link del as_u0 2>/dev/null");
  }
};

TEST_F(TapAttach, AttachesToAnExistingTapAndLeavesItBehind) {
  ASSERT_EQ(shell("ip tuntap add dev as_tap1 mode tap"), "");
  {
    auto l = open_link("tap", {{"iface", "as_tap1"}, {"create", "0"}});
    EXPECT_EQ(l->iface(), "as_tap1");
    EXPECT_EQ(l->mac(), sysfs_mac("as_tap1"));
    // A TAP without multi_queue takes one process: a second attach is refused, saying why.
    auto [err, m] = error_of([] { open_link("tap", {{"iface", "as_tap1"}}); });
    EXPECT_EQ(err, EBUSY) << m;
    EXPECT_NE(m.find("another process holds it"), std::string::npos) << m;
  }
  EXPECT_EQ(shell("ip link show as_tap1 >/dev/null"), "") << "the persistent TAP is gone";
}

TEST_F(TapAttach, ANonTapInterfaceIsRefused) {
  ASSERT_EQ(shell("ip link add as_u0 type veth peer name as_k0"), "");
  auto [err, m] = error_of([] { open_link("tap", {{"iface", "as_u0"}}); });
  EXPECT_EQ(err, EBUSY) << m;
  EXPECT_NE(m.find("not a TAP device"), std::string::npos) << m;
}

TEST_F(TapAttach, ACreatedTapGoesAwayWithTheLink) {
  {
    auto l = open_link("tap", {{"iface", "as_tap2"}});
    EXPECT_EQ(shell("ip link show as_tap2 >/dev/null"), "");
  }
  EXPECT_NE(shell("ip link show as_tap2 >/dev/null"), "");
}

}  // namespace
}  // namespace anysock::testing
