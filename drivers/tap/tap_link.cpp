#include "tap_link.hpp"

#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <vector>

#include "../link_support.hpp"

namespace anysock::drivers {
namespace {

constexpr std::array<std::string_view, 2> kKeys{"iface", "create"};
// The largest frame a TAP can carry: its MTU may be raised up to 65535 after the link opened.
constexpr size_t kReadBuffer = 65535 + 14;

class tap_link final : public link {
 public:
  tap_link(int fd, const detail::interface_info& info)
      : link(info.name, info.ifindex, info.mtu, info.mac), fd_(fd), buffer_(kReadBuffer) {}
  ~tap_link() override { ::close(fd_); }

  std::string_view kind() const noexcept override { return "tap"; }
  int fd() const noexcept override { return fd_; }

  burst receive(size_t max_frames, frame_sink sink) override {
    burst b;
    if ((b.error = standing_error()) != 0) return b;
    while (b.frames < max_frames) {
      ssize_t n = ::read(fd_, buffer_.data(), buffer_.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno != EAGAIN) b.error = failure(errno);
        break;
      }
      sink(frame(buffer_.data(), static_cast<size_t>(n)));
      ++b.frames;
      ++stats_.rx_frames;
      stats_.rx_bytes += static_cast<size_t>(n);
    }
    return b;
  }

  burst transmit(std::span<const tx_frame> frames) override {
    burst b;
    if ((b.error = standing_error()) != 0) return b;
    for (const tx_frame& f : frames) {
      if (f.size() > max_frame()) {
        b.error = EMSGSIZE;
        break;
      }
      std::span<const iovec> pieces = f.pieces();
      ssize_t n;
      do {
        n = ::writev(fd_, pieces.data(), static_cast<int>(pieces.size()));
      } while (n < 0 && errno == EINTR);
      if (n < 0) {
        // A TAP that is down refuses writes with EIO; one that was deleted with EBADFD.
        b.error = errno == EAGAIN ? EAGAIN : failure(errno);
        break;
      }
      ++b.frames;
      ++stats_.tx_frames;
      stats_.tx_bytes += f.size();
    }
    return b;
  }

  int flush() override { return standing_error(); }

 private:
  int fd_;
  std::vector<uint8_t> buffer_;
};

[[noreturn]] void attach_failed(int err, const std::string& iface, bool existed) {
  if (err == EPERM || err == EACCES) {
    detail::fail(EPERM, "tap",
                 (existed ? "attaching to " : "creating ") + iface + " " +
                     detail::privilege_hint("CAP_NET_ADMIN") +
                     "; or let root create it for you first: ip tuntap add dev " + iface +
                     " mode tap user <you>");
  }
  if (existed) {
    detail::fail(EBUSY, "tap",
                 iface + " exists but cannot be attached as a TAP (" + std::strerror(err) +
                     "): it is not a TAP device, was made with other flags (multi_queue, pi), or "
                     "another process holds it; see `ip -d link show " +
                     iface + "`, or pick another name");
  }
  detail::fail(err, "tap", "cannot create the TAP device " + iface);
}

}  // namespace

std::span<const std::string_view> tap_option_keys() { return kKeys; }

std::unique_ptr<link> open_tap(const link_options& options) {
  detail::option_reader opts("tap", options, kKeys);
  std::string iface = opts.iface();
  bool create = opts.flag("create", true);

  detail::interface_info existing;
  bool existed = detail::query_interface(iface, existing) != ENODEV;
  if (!existed && !create) {
    detail::fail(ENODEV, "tap",
                 "no interface " + iface + ": create it (ip tuntap add dev " + iface +
                     " mode tap) or drop create=0 to let the driver create it");
  }

  int fd = ::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    if (err == ENOENT || err == ENODEV || err == ENXIO) {
      detail::fail(ENODEV, "tap",
                   "no /dev/net/tun: load the tun module (modprobe tun), or create the node "
                   "(mkdir -p /dev/net && mknod /dev/net/tun c 10 200)");
    }
    if (err == EACCES || err == EPERM) {
      detail::fail(EPERM, "tap",
                   "cannot open /dev/net/tun: " + detail::privilege_hint("CAP_NET_ADMIN"));
    }
    detail::fail(err, "tap", "cannot open /dev/net/tun");
  }

  ifreq ifr{};
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
  std::memcpy(ifr.ifr_name, iface.c_str(), iface.size());
  if (::ioctl(fd, TUNSETIFF, &ifr) != 0) {
    int err = errno;
    ::close(fd);
    attach_failed(err, iface, existed);
  }
  try {
    return std::make_unique<tap_link>(fd, detail::find_interface("tap", iface));
  } catch (...) {
    ::close(fd);
    throw;
  }
}

}  // namespace anysock::drivers
