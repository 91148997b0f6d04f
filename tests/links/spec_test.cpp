// Specs of lwIP hosts on real links: the same keys on every driver, the driver's own keys passed
// through, errors that say what is wrong (std::invalid_argument for the spec, anysock::error from
// the OS), a MAC address of the host's own, and pcap= capturing every frame both ways into a file
// of the owner's only (pcap_mode= otherwise), never through a symbolic link.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>

#include "anysock/lwip.hpp"
#include "anysock/socket.hpp"
#include "links_support.hpp"

namespace anysock::testing {
namespace {

// What make_backend(spec) threw as std::invalid_argument ("" if it did not).
std::string invalid_argument_of(const std::string& spec) {
  try {
    make_backend(spec);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

class LinkSpec : public LinkTest {
 protected:
  void SetUp() override {
    if (!in_private_namespace()) GTEST_SKIP() << namespace_unavailable_reason();
  }
};

TEST_F(LinkSpec, EveryDriverKindIsRegistered) {
  for (const std::string& driver : all_drivers()) {
    // Refused for the missing iface, not for an unknown kind.
    EXPECT_NE(invalid_argument_of("lwip+" + driver + ":ip=10.0.0.1/24").find("iface="),
              std::string::npos)
        << driver;
  }
}

TEST_F(LinkSpec, AnUnknownKeyIsInvalidArgumentNamingIt) {
  std::string what = invalid_argument_of("lwip+af_packet:iface=as_u3,bogus=1");
  EXPECT_NE(what.find("bogus"), std::string::npos) << what;
  EXPECT_NE(what.find("ip6"), std::string::npos) << what << " (should list the keys)";
  // Another driver's key is unknown too.
  what = invalid_argument_of("lwip+tap:iface=as_tap0,queue=0");
  EXPECT_NE(what.find("queue"), std::string::npos) << what;
}

TEST_F(LinkSpec, BadValuesAreInvalidArgumentNamingTheKey) {
  for (const char* spec : {"lwip+tap:iface=as_tap0,ip=10.0.0.300/24",
                           "lwip+tap:iface=as_tap0,ip6=fd00::zz/64", "lwip+tap:iface=as_tap0,gw=x",
                           "lwip+tap:iface=as_tap0,mtu=99", "lwip+tap:iface=as_tap0,mac=02:00",
                           "lwip+tap:iface=as_tap0,dns=resolver", "lwip+tap:iface=as_tap0,engine=x",
                           "lwip+tap:iface=as_tap0,ip=10.0.0.1/24,ip=10.0.0.2/24"}) {
    const std::string what = invalid_argument_of(spec);
    const std::string key = std::string(spec).substr(std::string(spec).rfind(',') + 1);
    EXPECT_NE(what.find(key.substr(0, key.find('='))), std::string::npos) << spec << ": " << what;
  }
}

TEST_F(LinkSpec, AMissingDeviceIsEnodevSayingHowToCreateIt) {
  try {
    make_backend("lwip+af_packet:iface=as_nope0,ip=10.77.9.2/24");
    FAIL() << "opened a missing interface";
  } catch (const error& e) {
    EXPECT_EQ(e.code().value(), ENODEV);
    EXPECT_NE(std::string(e.what()).find("ip link add"), std::string::npos) << e.what();
  }
}

TEST_F(LinkSpec, DriverKeysPassThroughToTheDriver) {
  link_ = link_for("af_xdp");
  ASSERT_EQ(create_kernel_side(link_), "");
  const std::string what = invalid_argument_of(link_.spec(",queue=x"));
  EXPECT_NE(what.find("queue"), std::string::npos) << what;
  host_ = make_backend(link_.spec(",queue=0,mode=copy"));
  auto [status, out] = run("ping -c 1 -W 2 " + link_.lwip_ip4());
  EXPECT_EQ(status, 0) << out;
}

TEST_F(LinkSpec, AnMtuAboveTheInterfacesIsInvalidArgument) {
  link_ = link_for("af_packet");
  ASSERT_EQ(create_kernel_side(link_), "");
  const std::string what = invalid_argument_of(link_.spec(",mtu=9000"));
  EXPECT_NE(what.find("mtu=9000"), std::string::npos) << what;
  EXPECT_NE(what.find("1500"), std::string::npos) << what;
}

TEST_F(LinkSpec, TheSameSpecTwiceIsTheSameHostAndAnotherSpecOnTheInterfaceIsRefused) {
  link_ = link_for("tap");
  ASSERT_EQ(create_kernel_side(link_), "");
  host_ = make_backend(link_.spec());
  EXPECT_EQ(make_backend(link_.spec()).get(), host_.get());
  EXPECT_EQ(make_backend("lwip+tap:iface=as_tap0").get(), host_.get());
  EXPECT_NE(invalid_argument_of(link_.spec(",mtu=1400")).find("already"), std::string::npos);
}

// The host's MAC is its own (locally administered, not the interface's), so the kernel's IPv6
// link-local address and the host's differ, and both answer.
TEST_F(LinkSpec, TheHostUsesALocallyAdministeredMacOfItsOwn) {
  for (const std::string driver : {"tap", "af_packet"}) {
    open(driver);
    ASSERT_FALSE(HasFatalFailure());
    ASSERT_EQ(run("ping -c 1 -W 2 " + link_.lwip_ip4()).first, 0);
    auto [status, neigh] = run("ip neigh show " + link_.lwip_ip4() + " dev " + link_.kernel_iface);
    const size_t at = neigh.find("lladdr ");
    ASSERT_NE(at, std::string::npos) << neigh;
    const std::string mac_text = neigh.substr(at + 7, 17);
    unsigned m[6] = {};
    ASSERT_EQ(std::sscanf(mac_text.c_str(), "%x:%x:%x:%x:%x:%x", &m[0], &m[1], &m[2], &m[3], &m[4],
                          &m[5]),
              6);
    EXPECT_EQ(m[0] & 0x03, 0x02u) << mac_text << " is not a locally administered unicast address";
    const auto iface_mac = sysfs_mac(link_.user_iface);
    bool same = true;
    for (int i = 0; i < 6; ++i) same = same && iface_mac[i] == m[i];
    EXPECT_FALSE(same) << mac_text << " is the interface's own address";
    // The host's link-local address (EUI-64 of its MAC) answers.
    char ll[64];
    std::snprintf(ll, sizeof ll, "fe80::%x:%x:%x:%x%%%s", ((m[0] ^ 0x02) << 8) | m[1],
                  (m[2] << 8) | 0xff, 0xfe00 | m[3], (m[4] << 8) | m[5],
                  link_.kernel_iface.c_str());
    auto [s6, out6] = run(std::string("ping -6 -c 1 -W 2 ") + ll + " 2>&1");
    EXPECT_EQ(s6, 0) << ll << ": " << out6;
    TearDown();
  }
}

TEST_F(LinkSpec, PcapKeyCapturesEveryFrameBothWaysAsEthernet) {
  const std::string file = ::testing::TempDir() + "links_capture.pcap";
  open("af_packet", ",pcap=" + file);
  ASSERT_FALSE(HasFatalFailure());
  ASSERT_EQ(run("ping -c 3 -i 0.2 -W 2 " + link_.lwip_ip4()).first, 0);
  host_.reset();  // closes the file
  std::ifstream f(file, std::ios::binary);
  std::string data((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  ASSERT_GE(data.size(), 24u);
  uint32_t link_type;
  std::memcpy(&link_type, data.data() + 20, 4);
  EXPECT_EQ(link_type, 1u) << "LINKTYPE_ETHERNET";
  // Count echo requests (in) and replies (out): IPv4, ICMP type 8 / 0.
  int requests = 0, replies = 0;
  for (size_t at = 24; at + 16 <= data.size();) {
    uint32_t len;
    std::memcpy(&len, data.data() + at + 8, 4);
    const char* frame = data.data() + at + 16;
    if (len >= 14 + 20 + 8 && frame[12] == 0x08 && frame[13] == 0x00 && frame[14 + 9] == 1) {
      const int type = static_cast<unsigned char>(frame[14 + 20]);
      requests += type == 8;
      replies += type == 0;
    }
    at += 16 + len;
  }
  EXPECT_EQ(requests, 3);
  EXPECT_EQ(replies, 3);
  std::remove(file.c_str());
}

TEST_F(LinkSpec, PcapNeverFollowsASymbolicLinkAndCreatesAFileOfTheOwnersOnly) {
  link_ = link_for("tap");
  ASSERT_EQ(create_kernel_side(link_), "");
  const std::string target = ::testing::TempDir() + "links_precious";
  const std::string file = ::testing::TempDir() + "links_capture_link.pcap";
  std::remove(target.c_str());
  std::remove(file.c_str());
  { std::ofstream(target) << "keep me"; }
  ASSERT_EQ(::symlink(target.c_str(), file.c_str()), 0);
  try {
    make_backend(link_.spec(",pcap=" + file));
    ADD_FAILURE() << "a capture through a symbolic link was opened";
  } catch (const error& e) {
    EXPECT_EQ(e.code().value(), ELOOP) << e.what();
    EXPECT_NE(std::string(e.what()).find(file), std::string::npos) << e.what();
  }
  std::ifstream kept(target);
  EXPECT_EQ(std::string((std::istreambuf_iterator<char>(kept)), std::istreambuf_iterator<char>()),
            "keep me");
  std::remove(file.c_str());
  std::remove(target.c_str());

  const mode_t old_umask = ::umask(0);
  host_ = make_backend(link_.spec(",pcap=" + file));
  struct stat st {};
  EXPECT_EQ(::stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  host_.reset();
  // pcap_mode= for a new file; an existing one would only be narrowed, never widened.
  std::remove(file.c_str());
  host_ = make_backend(link_.spec(",pcap=" + file + ",pcap_mode=0644"));
  EXPECT_EQ(::stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0644u);
  ::umask(old_umask);
  std::remove(file.c_str());
}

}  // namespace
}  // namespace anysock::testing
