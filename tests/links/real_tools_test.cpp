// Programs no one here wrote, against anysock programs on an lwIP host over a TAP device, in the
// test's own namespace: curl fetches a page from tools/examples/http_server and moves 100 MiB each
// way (SHA-256 checked on both sides), nc echoes through the echo example, the anysock client side
// fetches from python3's http.server, and names resolve through dnsmasq (lwIP's DNS client).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "anysock/socket.hpp"
#include "links_support.hpp"

namespace anysock::testing {
namespace {

class RealTools : public LinkTest {
 protected:
  void SetUp() override {
    if (!in_private_namespace()) GTEST_SKIP() << namespace_unavailable_reason();
    link_ = link_for("tap");
    ASSERT_EQ(create_kernel_side(link_), "");
    dir_ = ::testing::TempDir() + "links_tools_" + std::to_string(::getpid());
    ASSERT_EQ(shell("mkdir -p " + dir_), "");
  }
  void TearDown() override {
    LinkTest::TearDown();
    (void)shell("rm -rf " + dir_);
  }

  // An example program on an lwIP host of its own over the TAP (ANYSOCK_BACKEND).
  std::unique_ptr<child> example(const std::vector<std::string>& argv) {
    return std::make_unique<child>(argv,
                                   std::vector<std::string>{"ANYSOCK_BACKEND=" + link_.spec()});
  }
  // The SHA-256 column of the server's log line for `request` ("GET /bytes/..."), or "".
  static std::string logged_sha256(child& server, const std::string& request) {
    std::optional<std::string> line = server.wait_for_line(request, 60);
    if (!line) return "";
    const size_t at = line->find("sha256 ");
    return at == std::string::npos ? "" : line->substr(at + 7, 64);
  }

  std::string dir_;
};

#ifdef ANYSOCK_HTTP_SERVER
TEST_F(RealTools, CurlFetchesAPageFromTheAnysockHttpServer) {
  auto server = example({ANYSOCK_HTTP_SERVER, "-d", dir_});
  ASSERT_TRUE(server->wait_for_line("listening", 10)) << server->output();
  auto [status, page] = run("curl -sS --max-time 20 http://" + link_.lwip_ip4() + ":8080/");
  EXPECT_EQ(status, 0) << page;
  EXPECT_NE(page.find("Hello from anysock"), std::string::npos) << page;
  auto [status6, page6] =
      run("curl -sS --max-time 20 'http://[" + link_.lwip_ip6() + "]:8080/' 2>&1");
  EXPECT_EQ(status6, 1 + 6) << "the example listens on IPv4 only, so IPv6 is refused: " << page6;
}

TEST_F(RealTools, CurlDownloads100MiBWithTheSameSha256OnBothSides) {
  auto server = example({ANYSOCK_HTTP_SERVER});
  ASSERT_TRUE(server->wait_for_line("listening", 10)) << server->output();
  auto [status, out] = run("bash -o pipefail -c 'curl -sS --max-time 120 http://" +
                           link_.lwip_ip4() + ":8080/bytes/104857600 | sha256sum'");
  ASSERT_EQ(status, 0) << out;
  const std::string sent = logged_sha256(*server, "GET /bytes/104857600 200 104857600 bytes");
  ASSERT_EQ(sent.size(), 64u) << server->output();
  EXPECT_EQ(out.substr(0, 64), sent);
}

TEST_F(RealTools, CurlUploads100MiBWithTheSameSha256OnBothSides) {
  auto server = example({ANYSOCK_HTTP_SERVER, "-d", dir_});
  ASSERT_TRUE(server->wait_for_line("listening", 10)) << server->output();
  const std::string upload = dir_ + "/upload.bin";
  ASSERT_EQ(shell("head -c 104857600 /dev/urandom > " + upload), "");
  auto [s1, local] = run("sha256sum " + upload);
  ASSERT_EQ(s1, 0);
  // PUT stores the body as a file; the server answers with what it hashed.
  auto [status, reply] = run("curl -sS --max-time 120 -T " + upload + " http://" +
                             link_.lwip_ip4() + ":8080/stored.bin");
  ASSERT_EQ(status, 0) << reply;
  EXPECT_EQ(reply, "104857600 bytes, sha256 " + local.substr(0, 64) + "\n");
  EXPECT_EQ(logged_sha256(*server, "PUT /stored.bin 201"), local.substr(0, 64));
  auto [s2, stored] = run("sha256sum " + dir_ + "/stored.bin");
  EXPECT_EQ(stored.substr(0, 64), local.substr(0, 64));
  // POST with a chunked body (curl reads stdin).
  auto [s3, reply2] =
      run("curl -sS --max-time 120 -H 'Transfer-Encoding: chunked' "
          "--data-binary @- http://" +
          link_.lwip_ip4() + ":8080/post < " + upload);
  EXPECT_EQ(reply2, "104857600 bytes, sha256 " + local.substr(0, 64) + "\n");
}
#endif

#ifdef ANYSOCK_ECHO_SERVER
TEST_F(RealTools, NcEchoesThroughTheEchoExample) {
  auto server = example({ANYSOCK_ECHO_SERVER, "", "50007"});
  // The server prints nothing until a client connects: retry while it is still starting.
  std::string out;
  int status = -1;
  for (int attempt = 0; attempt < 50 && status != 0; ++attempt) {
    std::tie(status, out) =
        run("printf 'hello from nc\\n' | nc -N -w 5 " + link_.lwip_ip4() + " 50007");
    if (status != 0) usleep(100000);
  }
  EXPECT_EQ(status, 0);
  EXPECT_EQ(out, "hello from nc\n");
  EXPECT_EQ(server->wait(10), 0) << server->output();
  EXPECT_NE(server->output().find("Connected by ('" + link_.kernel_ip4() + "'"), std::string::npos)
      << server->output();
}
#endif

TEST_F(RealTools, AnysockClientFetchesFromPythonHttpServer) {
  const std::string body = pattern(4 << 20, 41);
  {
    std::ofstream f(dir_ + "/file.bin", std::ios::binary);
    f << body;
  }
  child python({"python3", "-u", "-m", "http.server", "8000", "--bind", link_.kernel_ip4(),
                "--directory", dir_});
  ASSERT_TRUE(python.wait_for_line("Serving HTTP", 20)) << python.output();
  host_ = make_backend(link_.spec());
  socket s(*host_, AF_INET, SOCK_STREAM);
  s.settimeout(kGenerousWait);
  s.connect({link_.kernel_ip4(), 8000});
  s.sendall("GET /file.bin HTTP/1.0\r\nHost: " + link_.kernel_ip4() + "\r\n\r\n");
  std::string response;
  while (true) {
    std::string piece = s.recv(1 << 16);
    if (piece.empty()) break;
    response += piece;
  }
  const size_t head_end = response.find("\r\n\r\n");
  ASSERT_NE(head_end, std::string::npos) << response.substr(0, 200);
  EXPECT_EQ(response.rfind("HTTP/1.0 200", 0), 0u) << response.substr(0, head_end);
  EXPECT_NE(response.find("Content-Length: " + std::to_string(body.size())), std::string::npos);
  EXPECT_EQ(sha256_hex(response.substr(head_end + 4)), sha256_hex(body));
}

TEST_F(RealTools, NamesResolveThroughDnsmasqOnADnsHost) {
  child dnsmasq({"dnsmasq", "-k", "-C", "/dev/null", "--no-resolv", "--no-hosts",
                 "--bind-interfaces", "--listen-address=" + link_.kernel_ip4(), "--user=root",
                 "--pid-file=" + dir_ + "/dnsmasq.pid", "--log-facility=-",
                 "--address=/test.example/" + link_.kernel_ip4(),
                 "--address=/test.example/" + link_.kernel_ip6()});
  ASSERT_TRUE(dnsmasq.wait_for_line("started", 10)) << dnsmasq.output();
  host_ = make_backend(link_.spec(",dns=" + link_.kernel_ip4()));
  backend_scope on_lwip(*host_);
  std::vector<addr_info> v4 = getaddrinfo("test.example", 80, AF_INET, SOCK_STREAM);
  ASSERT_EQ(v4.size(), 1u);
  EXPECT_EQ(v4[0].addr.host, link_.kernel_ip4());
  std::vector<addr_info> v6 = getaddrinfo("test.example", 80, AF_INET6, SOCK_STREAM);
  ASSERT_EQ(v6.size(), 1u);
  EXPECT_EQ(v6[0].addr.host, link_.kernel_ip6());
  std::vector<addr_info> both = getaddrinfo("test.example", 80, AF_UNSPEC, SOCK_STREAM);
  EXPECT_EQ(both.size(), 2u);
  EXPECT_EQ(gethostbyname("test.example"), link_.kernel_ip4());
  // A name dnsmasq does not know.
  try {
    getaddrinfo("nothere.example", 80, AF_INET, SOCK_STREAM);
    ADD_FAILURE() << "an unknown name resolved";
  } catch (const gaierror& e) {
    EXPECT_EQ(e.code().value(), EAI_NONAME) << e.what();
  }
  // A connection by name, to a kernel listener.
  socket listener(kernel_backend(), AF_INET, SOCK_STREAM);
  listener.bind({link_.kernel_ip4(), 5030});
  listener.listen(1);
  socket c = create_connection({"test.example", 5030}, kGenerousWait);
  EXPECT_EQ(c.getpeername().host, link_.kernel_ip4());
}

}  // namespace
}  // namespace anysock::testing
