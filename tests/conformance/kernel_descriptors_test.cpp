// What only the kernel backend has: OS descriptors. fromfd() validates the descriptor it is given
// and close() reports a descriptor that was closed behind the socket's back, as CPython 3.7+
// does. (Plain tests: these do not depend on the environment.)
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <type_traits>

#include "fixture.hpp"

namespace anysock::testing {

TEST(KernelDescriptors, FromfdOfADescriptorThatIsNoSocketRaisesEnotsock) {
  int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(errno_of([&] { fromfd(fd, AF_INET, SOCK_STREAM); }), ENOTSOCK);
  // The caller's descriptor is still theirs, and no duplicate was left open.
  EXPECT_EQ(::fcntl(fd, F_GETFD), FD_CLOEXEC);
  int probe = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  EXPECT_EQ(probe, fd + 1);
  ::close(probe);
  ::close(fd);
}

TEST(KernelDescriptors, FromfdOfAClosedDescriptorRaisesEbadf) {
  int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  ::close(fd);
  EXPECT_EQ(errno_of([&] { fromfd(fd, AF_INET, SOCK_STREAM); }), EBADF);
  EXPECT_EQ(errno_of([&] { fromfd(-1, AF_INET, SOCK_STREAM); }), EBADF);
}

TEST(KernelDescriptors, FromfdOfASocketWorks) {
  socket s(kernel_backend(), AF_INET, SOCK_STREAM);
  socket copy = fromfd(s.fileno(), AF_INET, SOCK_STREAM);
  EXPECT_NE(copy.fileno(), s.fileno());
  copy.bind({"127.0.0.1", 0});
  EXPECT_EQ(s.getsockname(), copy.getsockname());  // the same socket
}

TEST(KernelDescriptors, CloseRaisesEbadfWhenTheDescriptorWasClosedBehindItsBack) {
  socket s(kernel_backend(), AF_INET, SOCK_STREAM);
  ASSERT_EQ(::close(s.fileno()), 0);
  EXPECT_EQ(errno_of([&] { s.close(); }), EBADF);
  EXPECT_EQ(s.fileno(), -1);                   // closed all the same
  EXPECT_EQ(errno_of([&] { s.close(); }), 0);  // closing a closed socket object: a no-op
  EXPECT_EQ(errno_of([&] { s.listen(); }), EBADF);
}

TEST(KernelDescriptors, DestroyingASocketWhoseDescriptorIsGoneDoesNotThrow) {
  static_assert(std::is_nothrow_destructible_v<socket>);
  auto s = std::make_unique<socket>(kernel_backend(), AF_INET, SOCK_STREAM);
  ASSERT_EQ(::close(s->fileno()), 0);
  EXPECT_NO_THROW(s.reset());
}

}  // namespace anysock::testing
