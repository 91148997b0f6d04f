// socket::makefile(): socket_stream as a std::iostream over a connection — line reading, writing
// and flushing, the modes, living on after socket::close(), timeouts that leave the stream failed,
// and end of stream.
#include <cstdint>
#include <ios>
#include <istream>
#include <string>
#include <string_view>
#include <vector>

#include "fixture.hpp"

namespace anysock::testing {
namespace {

// Reads exactly `n` bytes from a socket (with a timeout set), or fewer at end of stream.
std::string recv_exactly(socket& s, size_t n) {
  std::string out;
  while (out.size() < n) {
    std::string chunk = s.recv(n - out.size());
    if (chunk.empty()) break;
    out += chunk;
  }
  return out;
}

}  // namespace

TEST_P(Conformance, MakefileReadsLinesWrittenThroughAnotherStream) {
  auto [c, s] = tcp_pair();
  c.settimeout(5.0);
  s.settimeout(5.0);
  socket_stream out = s.makefile("w");
  socket_stream in = c.makefile("r");
  out << "first line\n"
      << "second " << 2 << "\n";
  out.flush();
  std::string line;
  ASSERT_TRUE(std::getline(in, line));
  EXPECT_EQ(line, "first line");
  ASSERT_TRUE(std::getline(in, line));
  EXPECT_EQ(line, "second 2");
}

TEST_P(Conformance, MakefileWritesReachThePeerOnlyAfterFlush) {
  auto [c, s] = tcp_pair();
  s.settimeout(5.0);
  socket_stream out = c.makefile("w");
  out << "buffered";
  EXPECT_TRUE(select({&s}, {}, {}, 0.1).read.empty());  // still in the stream's buffer
  out.flush();
  EXPECT_EQ(recv_exactly(s, 8), "buffered");
}

TEST_P(Conformance, UnbufferedMakefileSendsEachWriteAtOnce) {
  auto [c, s] = tcp_pair();
  s.settimeout(5.0);
  socket_stream out = c.makefile("wb", 0);
  out << "unbuffered";
  EXPECT_EQ(recv_exactly(s, 10), "unbuffered");
}

TEST_P(Conformance, ReadWriteModesBothReadAndWrite) {
  for (std::string_view mode : {"rw", "rwb"}) {
    SCOPED_TRACE(mode);
    auto [c, s] = tcp_pair();
    c.settimeout(5.0);
    s.settimeout(5.0);
    socket_stream client_io = c.makefile(mode);
    socket_stream server_io = s.makefile(mode);
    client_io << "question\n" << std::flush;
    std::string line;
    ASSERT_TRUE(std::getline(server_io, line));
    EXPECT_EQ(line, "question");
    server_io << "answer\n" << std::flush;
    ASSERT_TRUE(std::getline(client_io, line));
    EXPECT_EQ(line, "answer");
  }
}

TEST_P(Conformance, BinaryStreamCarriesAMebibyteIntact) {
  auto [c, s] = tcp_pair();
  c.settimeout(30.0);
  s.settimeout(30.0);
  const std::string data = pattern(1 << 20, 7);
  {
    socket_stream out = c.makefile("wb");
    out.write(data.data(), static_cast<std::streamsize>(data.size()));
    out.flush();
    ASSERT_TRUE(out.good());
  }
  c.shutdown(SHUT_WR);
  socket_stream in = s.makefile("rb");
  std::string got(data.size() + 1, '\0');
  in.read(got.data(), static_cast<std::streamsize>(got.size()));
  EXPECT_TRUE(in.eof());
  ASSERT_EQ(static_cast<size_t>(in.gcount()), data.size());
  got.resize(data.size());
  EXPECT_TRUE(got == data);
}

TEST_P(Conformance, StreamKeepsTheConnectionAfterSocketClose) {
  auto [c, s] = tcp_pair();
  s.settimeout(5.0);
  c.settimeout(5.0);
  socket_stream io = c.makefile("rw");
  c.close();
  EXPECT_EQ(c.fileno(), -1);
  io << "still here\n" << std::flush;
  EXPECT_TRUE(io.good());
  EXPECT_EQ(recv_exactly(s, 11), "still here\n");
  s.sendall("and back\n");
  std::string line;
  ASSERT_TRUE(std::getline(io, line));
  EXPECT_EQ(line, "and back");
  io.close();  // the last reference: now the peer sees end of stream
  EXPECT_EQ(s.recv(64), "");
}

TEST_P(Conformance, StreamReadTimeoutLeavesTheStreamFailedForGood) {
  auto [c, s] = tcp_pair();
  c.settimeout(0.2);
  socket_stream in = c.makefile("r");
  std::string line;
  EXPECT_FALSE(std::getline(in, line));
  EXPECT_TRUE(in.fail());
  EXPECT_TRUE(in.timed_out());
  s.sendall("too late\n");
  c.settimeout(5.0);
  in.clear();
  EXPECT_FALSE(std::getline(in, line));  // a timed-out stream never reads again
  EXPECT_TRUE(in.fail());
  EXPECT_TRUE(in.timed_out());
  EXPECT_EQ(c.recv(64), "too late\n");  // the data was left on the socket
}

TEST_P(Conformance, StreamReadTimeoutRethrowsTimeoutWhenBadbitThrows) {
  auto [c, s] = tcp_pair();
  c.settimeout(0.2);
  socket_stream in = c.makefile("r");
  in.exceptions(std::ios::badbit);
  std::string line;
  try {
    std::getline(in, line);
    ADD_FAILURE() << "getline returned '" << line << "'";
  } catch (const timeout& e) {
    EXPECT_STREQ(e.what(), "timed out");
    EXPECT_EQ(e.code().value(), ETIMEDOUT);
  }
  EXPECT_TRUE(in.bad());
  EXPECT_TRUE(in.timed_out());
  in.clear();
  EXPECT_THROW(std::getline(in, line), error);  // later reads fail too
}

TEST_P(Conformance, MakefileOnANonBlockingSocketThrowsError) {
  auto [c, s] = tcp_pair();
  c.setblocking(false);
  EXPECT_THROW(c.makefile("r"), error);
  c.settimeout(1.0);
  EXPECT_NO_THROW(c.makefile("r"));
}

TEST_P(Conformance, MakefileWithAnInvalidModeThrowsInvalidArgument) {
  auto [c, s] = tcp_pair();
  EXPECT_THROW(c.makefile("x"), std::invalid_argument);
  EXPECT_THROW(c.makefile("ra"), std::invalid_argument);
}

TEST_P(Conformance, StreamSetsEofAtTheEndOfTheStream) {
  auto [c, s] = tcp_pair();
  c.settimeout(5.0);
  s.sendall("line\nno newline");
  s.close();
  socket_stream in = c.makefile("r");
  std::string line;
  ASSERT_TRUE(std::getline(in, line));
  EXPECT_EQ(line, "line");
  EXPECT_FALSE(in.eof());
  ASSERT_TRUE(std::getline(in, line));
  EXPECT_EQ(line, "no newline");
  EXPECT_TRUE(in.eof());
  EXPECT_FALSE(std::getline(in, line));
  EXPECT_FALSE(in.bad());
  EXPECT_FALSE(in.timed_out());
}

}  // namespace anysock::testing
