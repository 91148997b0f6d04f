// ANYSOCK_BACKEND is read with secure_getenv: a set-uid, set-gid or capability-raising program
// ignores it (and uses the kernel), as glibc ignores LD_PRELOAD there, so whoever runs such a
// program cannot point its sockets at a network of their choosing. Proved with a set-gid copy of
// secure_env_probe (root only: it chowns the copy; skipped where set-gid has no effect, e.g. a
// nosuid mount or no_new_privs).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

namespace {

struct probe_run {
  std::string output;
  int status = -1;
};

probe_run run_probe(const std::string& path, const std::string& backend_env) {
  const std::string command = "ANYSOCK_BACKEND='" + backend_env + "' " + path + " 2>&1";
  probe_run r;
  FILE* p = ::popen(command.c_str(), "r");
  if (p == nullptr) return r;
  std::array<char, 512> buf{};
  while (std::fgets(buf.data(), buf.size(), p) != nullptr) r.output += buf.data();
  r.status = ::pclose(p);
  return r;
}

class SecureEnvironment : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (chown of a set-gid copy)";
    std::string templ =
        (std::filesystem::temp_directory_path() / "anysock-secure-env-XXXXXX").string();
    ASSERT_NE(::mkdtemp(templ.data()), nullptr);
    dir_ = templ;
    ASSERT_EQ(::chmod(dir_.c_str(), 0755), 0);
    copy_ = (std::filesystem::path(dir_) / "secure_env_probe").string();
    std::filesystem::copy_file(ANYSOCK_SECURE_ENV_PROBE, copy_);
  }
  void TearDown() override {
    std::error_code ignored;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ignored);
  }
  std::string dir_, copy_;
};

TEST_F(SecureEnvironment, ASetGidProgramIgnoresAnysockBackend) {
  // Not set-gid: the variable is read (a malformed spec is an error naming it).
  probe_run plain = run_probe(copy_, "kernel:bogus");
  ASSERT_EQ(plain.status, 0) << plain.output;
  ASSERT_NE(plain.output.find("secure=0"), std::string::npos) << plain.output;
  EXPECT_NE(plain.output.find("error="), std::string::npos) << plain.output;
  EXPECT_NE(plain.output.find("bogus"), std::string::npos) << plain.output;

  // Set-gid to a group root is not in: the kernel marks the exec secure.
  ASSERT_EQ(::chown(copy_.c_str(), 0, 65534), 0);
  ASSERT_EQ(::chmod(copy_.c_str(), 02755), 0);
  probe_run secure = run_probe(copy_, "kernel:bogus");
  ASSERT_EQ(secure.status, 0) << secure.output;
  if (secure.output.find("secure=1") == std::string::npos) {
    GTEST_SKIP() << "set-gid did not make the exec secure here (nosuid mount?): " << secure.output;
  }
  EXPECT_NE(secure.output.find("backend=kernel\n"), std::string::npos) << secure.output;
}

}  // namespace
