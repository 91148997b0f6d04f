// lwip+sim specs: unknown keys and bad values are std::invalid_argument naming the problem (and
// start no engine); pcap=FILE captures every packet the host sends and receives, into a file of the
// owner's only (pcap_mode= says otherwise) that is never reached through a symbolic link; ip6=
// addresses Linux refuses are refused too.
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

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

namespace {

// The permission bits of `path` (-1 if it cannot be read).
int mode_of(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return -1;
  return static_cast<int>(st.st_mode & 07777);
}

std::string contents_of(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Sets the umask for the life of this object.
struct scoped_umask {
  mode_t old;
  explicit scoped_umask(mode_t m) : old(::umask(m)) {}
  ~scoped_umask() { ::umask(old); }
};

}  // namespace

TEST_F(Specs, PcapRefusesASymbolicLinkNamingTheFileAndLeavesItsTargetUntouched) {
  temp_dir dir;
  ASSERT_FALSE(dir.path.empty());
  const std::string target = (dir.path / "precious").string();
  const std::string link = (dir.path / "a.pcap").string();
  std::ofstream(target) << "keep me";
  ASSERT_EQ(::chmod(target.c_str(), 0644), 0);
  ASSERT_EQ(::symlink(target.c_str(), link.c_str()), 0);
  try {
    make_backend("lwip+sim:host=a,pcap=" + link);
    FAIL() << "a capture through a symbolic link was opened";
  } catch (const error& e) {
    EXPECT_EQ(e.code().value(), ELOOP) << e.what();
    EXPECT_NE(std::string(e.what()).find(link), std::string::npos) << e.what();
  }
  EXPECT_EQ(contents_of(target), "keep me");
  EXPECT_EQ(mode_of(target), 0644);
  EXPECT_FALSE(engine_runs());
  // A dangling link is refused too (O_CREAT would otherwise create its target).
  const std::string dangling = (dir.path / "b.pcap").string();
  const std::string nowhere = (dir.path / "nowhere").string();
  ASSERT_EQ(::symlink(nowhere.c_str(), dangling.c_str()), 0);
  EXPECT_EQ(errno_of([&] { make_backend("lwip+sim:host=b,pcap=" + dangling); }), ELOOP);
  EXPECT_FALSE(std::filesystem::exists(nowhere));
}

TEST_F(Specs, ANewCaptureFileIsTheOwnersOnlyEvenWithUmaskZero) {
  temp_dir dir;
  ASSERT_FALSE(dir.path.empty());
  scoped_umask open_umask(0);
  const std::string path = (dir.path / "a.pcap").string();
  auto a = make_backend("lwip+sim:host=a,link=capmode,pcap=" + path);
  EXPECT_EQ(mode_of(path), 0600);
  // An existing file is narrowed to the same mode (it is about to hold this run's payloads).
  const std::string old = (dir.path / "old.pcap").string();
  std::ofstream(old) << "last run";
  ASSERT_EQ(::chmod(old.c_str(), 0644), 0);
  auto b = make_backend("lwip+sim:host=b,link=capmode,pcap=" + old);
  EXPECT_EQ(mode_of(old), 0600);
}

TEST_F(Specs, PcapModeChoosesTheCaptureFilesModeAndRefusesWhatIsNotOctal) {
  temp_dir dir;
  ASSERT_FALSE(dir.path.empty());
  scoped_umask open_umask(0);
  const std::string path = (dir.path / "a.pcap").string();
  auto a = make_backend("lwip+sim:host=a,link=capmode2,pcap=" + path + ",pcap_mode=0640");
  EXPECT_EQ(mode_of(path), 0640);
  for (const char* bad : {"rw", "0800", "01644", "", "-1", "0x1a4"}) {
    SCOPED_TRACE(bad);
    const std::string message = rejection_of("lwip+sim:host=c,link=capmode2,pcap=" + path +
                                             ",pcap_mode=" + std::string(bad));
    EXPECT_NE(message.find("pcap_mode"), std::string::npos) << message;
  }
  EXPECT_NE(rejection_of("lwip+sim:host=c,link=capmode2,pcap_mode=0644").find("pcap="),
            std::string::npos)
      << "pcap_mode without pcap";
}

// Linux refuses these as interface addresses (EADDRNOTAVAIL / "address already assigned").
TEST_F(Specs, AnIpv6AddressNoInterfaceMayHoldIsInvalidArgumentNamingIt) {
  for (const char* address : {"ff02::5/64", "::/64", "::1/128"}) {
    SCOPED_TRACE(address);
    const std::string message =
        rejection_of("lwip+sim:host=x,link=bad6,ip6='" + std::string(address) + "'");
    EXPECT_NE(message.find(address), std::string::npos) << message;
  }
  // The host's own link-local address (the EUI-64 of its MAC) given again: already assigned.
  const std::string message =
      rejection_of("lwip+sim:host=x,link=bad6,mac=02:00:00:00:00:01,ip6='fe80::ff:fe00:1/64'");
  EXPECT_NE(message.find("fe80::ff:fe00:1"), std::string::npos) << message;
  EXPECT_NE(message.find("already"), std::string::npos) << message;
  // The failed hosts left nothing behind: a good one takes their place.
  auto x = make_backend("lwip+sim:host=x,link=bad6,ip6='fd00:6::1/64'");
  EXPECT_EQ(lwip::read_counters().links.size(), 1u);
}

}  // namespace anysock::testing
