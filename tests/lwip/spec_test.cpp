// lwip+sim specs: unknown keys and bad values are std::invalid_argument naming the problem (and
// start no engine); pcap=FILE captures every packet the host sends and receives.
#include <stdlib.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "lwip_support.hpp"

namespace anysock::testing {
namespace {

class Specs : public LwipTest {};

// The message of the std::invalid_argument make_backend(spec) throws ("" if it throws none).
std::string rejection_of(const std::string& spec) {
  try {
    make_backend(spec);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

bool engine_runs() { return !lwip::read_counters().links.empty(); }

// A fresh directory under the system's temporary directory, removed with this object.
struct temp_dir {
  std::filesystem::path path;
  temp_dir() {
    std::string templ = (std::filesystem::temp_directory_path() / "anysock-lwip-XXXXXX").string();
    if (mkdtemp(templ.data()) != nullptr) path = templ;
  }
  ~temp_dir() {
    std::error_code ignored;
    if (!path.empty()) std::filesystem::remove_all(path, ignored);
  }
};

template <class T>
T read_at(const std::string& bytes, size_t offset) {
  T v{};
  std::memcpy(&v, bytes.data() + offset, sizeof v);
  return v;
}

}  // namespace

TEST_F(Specs, AnUnknownKeyIsInvalidArgumentNamingTheKey) {
  const std::string message = rejection_of("lwip+sim:host=x,colour=blue");
  EXPECT_NE(message.find("colour"), std::string::npos) << message;
  EXPECT_FALSE(engine_runs());
}

TEST_F(Specs, ABadAddressIsInvalidArgumentNamingTheValue) {
  for (const char* spec : {"lwip+sim:host=x,ip=10.0.0.256/24", "lwip+sim:host=x,ip=10.0.0.1/33",
                           "lwip+sim:host=x,ip=ten", "lwip+sim:host=x,ip6='fd00::zz/64'",
                           "lwip+sim:host=x,ip6='fd00::1/129'", "lwip+sim:host=x,gw=10.0.0.1/24",
                           "lwip+sim:host=x,mac='02:00:00:00:00'"}) {
    SCOPED_TRACE(spec);
    const std::string message = rejection_of(spec);
    std::string value = std::string(spec).substr(std::string(spec).rfind('=') + 1);
    std::erase(value, '\'');
    EXPECT_NE(message, "");
    EXPECT_NE(message.find(value), std::string::npos) << message;
  }
  EXPECT_FALSE(engine_runs());
}

TEST_F(Specs, AnMtuOutsideTwelveEightyToSixtyFiveThousandIsInvalidArgument) {
  for (const char* mtu : {"1279", "65536", "0", "-1", "1500x", "", "99999999999999999999"}) {
    SCOPED_TRACE(mtu);
    EXPECT_NE(rejection_of(std::string("lwip+sim:host=x,mtu=") + mtu).find("mtu"),
              std::string::npos);
  }
  EXPECT_FALSE(engine_runs());
  auto low = make_backend("lwip+sim:host=x,mtu=1280");
  auto high = make_backend("lwip+sim:host=y,mtu=65535");
  EXPECT_EQ(lwip::read_counters().links.size(), 2u);
}

TEST_F(Specs, NamingAnExistingHostAloneReturnsItAndRedefiningItIsInvalidArgument) {
  auto a = make_backend("lwip+sim:host=a,link=specs,ip=10.66.0.1/24");
  EXPECT_EQ(make_backend("lwip+sim:host=a,link=specs").get(), a.get());
  EXPECT_NE(rejection_of("lwip+sim:host=a,link=specs,ip=10.66.0.9/24").find("'a'"),
            std::string::npos);
  EXPECT_NE(make_backend("lwip+sim:host=a,link=other").get(), a.get()) << "another link";
}

TEST_F(Specs, AnUnwritablePcapFileIsAnErrorAndStartsNoEngine) {
  temp_dir dir;
  ASSERT_FALSE(dir.path.empty());
  const std::string path = (dir.path / "missing" / "a.pcap").string();
  EXPECT_EQ(errno_of([&] { make_backend("lwip+sim:host=a,pcap=" + path); }), ENOENT);
  EXPECT_FALSE(engine_runs());
}

TEST_F(Specs, PcapWritesARecordForEveryPacketTheHostSentAndReceived) {
  temp_dir dir;
  ASSERT_FALSE(dir.path.empty());
  const std::string path = (dir.path / "a.pcap").string();
  uint64_t frames = 0;
  {
    auto a = make_backend("lwip+sim:host=a,link=cap,ip=10.67.0.1/24,pcap=" + path);
    auto b = make_backend("lwip+sim:host=b,link=cap,ip=10.67.0.2/24");
    {
      socket l(*a, AF_INET, SOCK_STREAM);
      l.bind({"10.67.0.1", 0});
      l.listen(1);
      l.settimeout(kGenerousWait);
      socket c(*b, AF_INET, SOCK_STREAM);
      c.settimeout(kGenerousWait);
      c.connect({"10.67.0.1", l.getsockname().port});
      socket s = l.accept().first;
      s.settimeout(kGenerousWait);
      for (int i = 0; i < 10; ++i) {
        c.sendall("ping");
        EXPECT_EQ(s.recv(4), "ping");
        s.sendall("pong");
        EXPECT_EQ(c.recv(4), "pong");
      }
    }
    EXPECT_EQ(lwip::leak_report(), "");
    const lwip::link_counters counted = link_of(lwip::read_counters(), "a");
    frames = counted.frames_in + counted.frames_out;
    EXPECT_GE(frames, 20u) << "10 pings in, 10 pongs out at least";
  }  // the hosts are gone: the capture file is complete

  std::ifstream in(path, std::ios::binary);
  ASSERT_TRUE(in.good()) << path;
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_GE(bytes.size(), 24u);
  EXPECT_EQ(read_at<uint32_t>(bytes, 0), 0xa1b2c3d4u);
  EXPECT_EQ(read_at<uint16_t>(bytes, 4), 2u);
  EXPECT_EQ(read_at<uint16_t>(bytes, 6), 4u);
  EXPECT_EQ(read_at<uint32_t>(bytes, 20), 101u) << "LINKTYPE_RAW: records start at the IP header";
  uint64_t records = 0;
  size_t at = 24;
  while (at + 16 <= bytes.size()) {
    const uint32_t incl = read_at<uint32_t>(bytes, at + 8);
    const uint32_t orig = read_at<uint32_t>(bytes, at + 12);
    EXPECT_LE(incl, orig);
    ASSERT_LE(at + 16 + incl, bytes.size()) << "record " << records << " is cut short";
    ASSERT_GE(incl, 1u);
    const int version = static_cast<unsigned char>(bytes[at + 16]) >> 4;
    EXPECT_TRUE(version == 4 || version == 6) << "record " << records;
    at += 16 + incl;
    ++records;
  }
  EXPECT_EQ(at, bytes.size()) << "the file ends with a whole record";
  EXPECT_GE(records, frames);
}

}  // namespace anysock::testing
