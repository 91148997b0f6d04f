#include "af_xdp_link.hpp"

#include <linux/if_link.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>
#include <xdp/libxdp.h>
#include <xdp/xsk.h>

#include <array>
#include <atomic>
#include <bit>
#include <cassert>
#include <cerrno>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "../link_support.hpp"
#include "../tx_kicker.hpp"

namespace anysock::drivers {
namespace {

constexpr std::array<std::string_view, 7> kKeys{"iface",  "queue",      "mode",     "xdp_mode",
                                                "frames", "frame_size", "tx_thread"};
constexpr std::array<std::string_view, 3> kModes{"auto", "zerocopy", "copy"};
constexpr std::array<std::string_view, 3> kXdpModes{"auto", "native", "skb"};
// A queue just released by another socket stays busy until the kernel's deferred clean-up ran.
constexpr auto kBusyRetryFor = std::chrono::seconds(1);

// libxdp and libbpf print to stderr through process-wide hooks. While a link opens or closes, the
// hooks are borrowed to collect the messages instead: they explain a failure (and go into the
// exception), and are noise otherwise ("No bpffs found ... falling back" is routine). Links that
// open or close at the same time in several threads take turns, so the hooks are put back in order.
class library_messages {
 public:
  library_messages()
      : turn_(turns()),
        previous_xdp_(libxdp_set_print(&library_messages::on_xdp)),
        previous_bpf_(libbpf_set_print(&library_messages::on_bpf)),
        outer_(current_) {
    current_ = &text_;
  }
  ~library_messages() {
    current_ = outer_;
    libxdp_set_print(previous_xdp_);
    libbpf_set_print(previous_bpf_);
  }
  library_messages(const library_messages&) = delete;
  library_messages& operator=(const library_messages&) = delete;

  /// The warnings collected so far, one line each, prefixed "; " for use in a message.
  std::string text() const { return text_.empty() ? std::string() : "; " + text_; }

 private:
  static void append(bool warning, const char* format, va_list args) {
    if (current_ == nullptr || !warning) return;
    char line[512];
    std::vsnprintf(line, sizeof line, format, args);
    std::string s(line);
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    if (!current_->empty()) *current_ += "; ";
    *current_ += s;
  }
  static int on_xdp(libxdp_print_level level, const char* format, va_list args) {
    append(level == LIBXDP_WARN, format, args);
    return 0;
  }
  static int on_bpf(libbpf_print_level level, const char* format, va_list args) {
    append(level == LIBBPF_WARN, format, args);
    return 0;
  }

  static std::recursive_mutex& turns() {
    static std::recursive_mutex m;
    return m;
  }

  static thread_local std::string* current_;
  std::lock_guard<std::recursive_mutex> turn_;
  libxdp_print_fn_t previous_xdp_;
  libbpf_print_fn_t previous_bpf_;
  std::string* outer_;
  std::string text_;
};
thread_local std::string* library_messages::current_ = nullptr;

struct xdp_config {
  std::string iface;
  uint32_t queue;
  std::string mode;
  uint32_t xdp_flags;
  uint32_t frames;
  uint32_t frame_size;
  bool tx_thread;  // copy mode: sendto() on a thread of the link's own (detail::tx_kicker)
};

class af_xdp_link final : public link {
 public:
  af_xdp_link(const xdp_config& cfg, const detail::interface_info& info)
      : link(info.name, info.ifindex, info.mtu, info.mac),
        queue_(cfg.queue),
        frame_size_(cfg.frame_size),
        rx_frames_(cfg.frames / 2),
        tx_frames_(cfg.frames / 2),
        area_size_(size_t{cfg.frames} * cfg.frame_size) {
    void* area = ::mmap(nullptr, area_size_, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (area == MAP_FAILED) {
      detail::fail(errno, "af_xdp",
                   "cannot allocate " + std::to_string(area_size_) + " bytes of UMEM");
    }
    area_ = static_cast<uint8_t*>(area);
    try {
      bind(cfg);
      start();
      // Zero-copy needs no system call per burst (the driver is woken only when it sleeps).
      if (cfg.tx_thread && !zero_copy_) {
        kicker_ = std::make_unique<detail::tx_kicker>([this] { return kick_from_thread(); },
                                                      "as-tx-" + info.name);
      }
    } catch (...) {
      release();
      throw;
    }
  }

  ~af_xdp_link() override {
    kicker_.reset();  // before the socket goes
    release();
  }

  std::string_view kind() const noexcept override { return "af_xdp"; }
  int fd() const noexcept override { return epoll_fd_; }
  std::string description() const override {
    return "af_xdp on " + iface() + " queue " + std::to_string(queue_) +
           (zero_copy_ ? " (zero-copy)" : " (copy mode)");
  }

  burst receive(size_t max_frames, frame_sink sink) override {
    burst b;
    if ((b.error = standing_error()) != 0) return b;
    uint32_t rx_at = 0;
    uint32_t n = xsk_ring_cons__peek(
        &rx_, static_cast<uint32_t>(std::min<size_t>(max_frames, rx_frames_)), &rx_at);
    if (n == 0) {
      if (xsk_ring_prod__needs_wakeup(&fill_)) {
        ::recvfrom(xsk_fd_, nullptr, 0, MSG_DONTWAIT, nullptr, nullptr);
      }
      // Nothing waiting: the moment to notice a device that went down or away.
      if (monitor_.drain(ifindex())) b.error = check_interface();
      return b;
    }
    // Every receive frame is in the fill ring, the receive ring or this batch, so the fill ring
    // has room for the whole batch: each frame goes straight back once its sink call returns.
    uint32_t fill_at = 0;
    [[maybe_unused]] uint32_t reserved = xsk_ring_prod__reserve(&fill_, n, &fill_at);
    assert(reserved == n);
    for (uint32_t i = 0; i < n; ++i) {
      const xdp_desc* d = xsk_ring_cons__rx_desc(&rx_, rx_at + i);
      sink(frame(area_ + d->addr, d->len));
      *xsk_ring_prod__fill_addr(&fill_, fill_at + i) = d->addr & ~uint64_t{frame_size_ - 1};
      stats_.rx_bytes += d->len;
    }
    xsk_ring_prod__submit(&fill_, n);
    xsk_ring_cons__release(&rx_, n);
    stats_.rx_frames += n;
    b.frames = n;
    return b;
  }

  burst transmit(std::span<const tx_frame> frames) override {
    burst b;
    if ((b.error = standing_error()) != 0) return b;
    reclaim();
    for (const tx_frame& f : frames) {
      if (f.size() > max_frame() || f.size() > frame_size_) {
        b.error = EMSGSIZE;
        break;
      }
      if (free_.empty()) {
        // Every transmit frame is queued or in flight: send the queue (or have the transmit
        // thread send it: then wait for room rather than contend for the socket's lock), take
        // back what completed.
        if (kicker_ != nullptr) {
          queued_ = 0;
          kicker_->request();  // even with nothing new: a kick may have stopped early
        } else if (int err = kick(); err != 0 && err != EAGAIN) {
          b.error = err;
          break;
        }
        reclaim();
      }
      uint32_t at = 0;
      if (free_.empty() || xsk_ring_prod__reserve(&tx_, 1, &at) != 1) {
        b.error = EAGAIN;
        break;
      }
      uint64_t addr = free_.back();
      free_.pop_back();
      f.copy_to(area_ + addr);
      xdp_desc* d = xsk_ring_prod__tx_desc(&tx_, at);
      d->addr = addr;
      d->len = static_cast<uint32_t>(f.size());
      xsk_ring_prod__submit(&tx_, 1);
      if (kicker_ != nullptr) {
        kicker_->frame_queued(queued_);
      } else {
        ++queued_;
      }
      ++b.frames;
      ++stats_.tx_frames;
      stats_.tx_bytes += f.size();
    }
    watch_writable(b.error == EAGAIN);
    return b;
  }

  int flush() override {
    if (int err = standing_error()) return err;
    int err = kicker_ != nullptr ? thread_error() : 0;
    if (err == 0) {
      if (kicker_ == nullptr || !kicker_->take_flush(queued_)) err = kick();
    }
    reclaim();
    watch_writable(err == EAGAIN);
    return err;
  }

  link_stats stats() const override {
    link_stats s = stats_;
    xdp_statistics st{};
    socklen_t len = sizeof st;
    if (::getsockopt(xsk_fd_, SOL_XDP, XDP_STATISTICS, &st, &len) == 0) {
      s.rx_dropped += st.rx_dropped + st.rx_ring_full;
      s.tx_dropped += st.tx_invalid_descs;
    }
    s.tx_dropped += thread_drops_.load(std::memory_order_relaxed);
    return s;
  }

 private:
  // Creates the UMEM and the socket, zero-copy first when allowed, retrying a queue that is still
  // being released.
  void bind(const xdp_config& cfg) {
    library_messages messages;
    auto deadline = std::chrono::steady_clock::now() + kBusyRetryFor;
    int rc;
    for (;;) {
      zero_copy_ = cfg.mode != "copy";
      rc = create_socket(cfg, zero_copy_);
      if (rc != 0 && cfg.mode == "auto" && rc != -EPERM && rc != -EBUSY && rc != -ENODEV) {
        zero_copy_ = false;
        rc = create_socket(cfg, false);
      }
      if (rc != -EBUSY || std::chrono::steady_clock::now() >= deadline) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (rc == 0) return;
    int err = -rc;
    std::string where = iface() + " queue " + std::to_string(cfg.queue);
    switch (err) {
      case EPERM:
      case EACCES:
        detail::fail(EPERM, "af_xdp",
                     "binding to " + where + " " +
                         detail::privilege_hint("CAP_NET_RAW,CAP_NET_ADMIN,CAP_BPF") +
                         messages.text());
      case EBUSY:
        detail::fail(EBUSY, "af_xdp",
                     where +
                         " is taken by another AF_XDP socket or XDP program (see `ip link show " +
                         iface() + "`; detach one with `ip link set " + iface() + " xdp off`)" +
                         messages.text());
      case EOPNOTSUPP:
        detail::fail(EOPNOTSUPP, "af_xdp",
                     iface() + " refuses " +
                         (cfg.mode == "zerocopy" ? "zero-copy" : "this XDP mode") +
                         ": use mode=auto or mode=copy, xdp_mode=skb" + messages.text());
      case ENODEV:
        detail::find_interface("af_xdp", iface());  // throws, saying how to create it
        [[fallthrough]];
      default:
        detail::fail(err, "af_xdp",
                     "cannot bind to " + where + " (does the queue exist? `ethtool -l " + iface() +
                         "`; is the MTU small enough for XDP?)" + messages.text());
    }
  }

  // 0 or a negative errno; on failure nothing is left behind.
  int create_socket(const xdp_config& cfg, bool zero_copy) {
    xsk_umem_config uc{};
    uc.fill_size = rx_frames_;
    uc.comp_size = tx_frames_;
    uc.frame_size = frame_size_;
    uc.frame_headroom = 0;
    uc.flags = 0;
    xsk_umem* umem = nullptr;
    if (int rc = xsk_umem__create(&umem, area_, area_size_, &fill_, &comp_, &uc)) return rc;
    xsk_socket_config sc{};
    sc.rx_size = rx_frames_;
    sc.tx_size = tx_frames_;
    sc.libxdp_flags = 0;
    sc.xdp_flags = cfg.xdp_flags;
    // need_wakeup only for zero-copy: in copy mode every transmit needs a sendto() anyway, and
    // with the flag the kernel's poll() on the socket also drives transmission (xsk_poll), so a
    // thread merely waiting for frames contends for the socket's transmit mutex with the thread
    // sending (measured: 10% of the receiving thread's time spinning on it).
    sc.bind_flags = zero_copy ? (XDP_USE_NEED_WAKEUP | XDP_ZEROCOPY) : XDP_COPY;
    xsk_socket* xsk = nullptr;
    if (int rc = xsk_socket__create(&xsk, cfg.iface.c_str(), cfg.queue, umem, &rx_, &tx_, &sc)) {
      xsk_umem__delete(umem);
      return rc;
    }
    umem_ = umem;
    xsk_ = xsk;
    xsk_fd_ = xsk_socket__fd(xsk);
    return 0;
  }

  // Fills the fill ring with every receive frame, lists the transmit frames as free, and sets up
  // the epoll descriptor.
  void start() {
    uint32_t at = 0;
    [[maybe_unused]] uint32_t reserved = xsk_ring_prod__reserve(&fill_, rx_frames_, &at);
    assert(reserved == rx_frames_);
    for (uint32_t i = 0; i < rx_frames_; ++i) {
      *xsk_ring_prod__fill_addr(&fill_, at + i) = uint64_t{i} * frame_size_;
    }
    xsk_ring_prod__submit(&fill_, rx_frames_);
    free_.reserve(tx_frames_);
    for (uint32_t i = 0; i < tx_frames_; ++i) {
      free_.push_back(uint64_t{rx_frames_ + i} * frame_size_);
    }
    epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd_ < 0) detail::fail(errno, "af_xdp", "cannot create an epoll descriptor");
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = xsk_fd_;
    epoll_event mon{};
    mon.events = EPOLLIN;
    mon.data.fd = monitor_.fd();
    if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, xsk_fd_, &ev) != 0 ||
        ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, monitor_.fd(), &mon) != 0) {
      detail::fail(errno, "af_xdp", "cannot watch the socket with epoll");
    }
  }

  void release() noexcept {
    library_messages quiet;  // deleting the socket of a deleted device complains; nothing to do
    if (epoll_fd_ >= 0) ::close(epoll_fd_);
    if (xsk_ != nullptr) xsk_socket__delete(xsk_);
    if (umem_ != nullptr) xsk_umem__delete(umem_);
    if (area_ != nullptr) ::munmap(area_, area_size_);
    epoll_fd_ = -1;
    xsk_ = nullptr;
    umem_ = nullptr;
    area_ = nullptr;
  }

  // Takes back the transmit frames the kernel has finished with.
  void reclaim() {
    uint32_t at = 0;
    uint32_t n = xsk_ring_cons__peek(&comp_, tx_frames_, &at);
    for (uint32_t i = 0; i < n; ++i) free_.push_back(*xsk_ring_cons__comp_addr(&comp_, at + i));
    if (n > 0) xsk_ring_cons__release(&comp_, n);
  }

  // Tells the kernel to send the transmit ring. In copy mode one sendto() sends a bounded batch
  // (the kernel answers EAGAIN while more is left), so repeat while the kernel makes progress.
  int kick() {
    if (queued_ == 0) return 0;
    if (zero_copy_ && !xsk_ring_prod__needs_wakeup(&tx_)) {  // a zero-copy driver already running
      queued_ = 0;
      return 0;
    }
    for (;;) {
      uint32_t before = __atomic_load_n(tx_.consumer, __ATOMIC_ACQUIRE);
      if (::sendto(xsk_fd_, nullptr, 0, MSG_DONTWAIT, nullptr, 0) < 0) {
        int err = errno;
        if (err == EBUSY) {  // the device dropped a frame: down, or its queue was full
          if (int why = failure(EBUSY); why != EBUSY) return why;
          ++stats_.tx_dropped;
        } else if (err != EAGAIN && err != ENOBUFS && err != EINTR) {
          return failure(err);
        }
      }
      uint32_t after = __atomic_load_n(tx_.consumer, __ATOMIC_ACQUIRE);
      if (after == *tx_.producer) {
        queued_ = 0;
        return 0;
      }
      if (after == before) return EAGAIN;  // the device takes no more for now
    }
  }

  // The transmit thread's round: like kick(), touching nothing but the socket and the ring indices
  // (the kernel serialises it with any kick() the driver makes itself).
  int kick_from_thread() {
    for (;;) {
      const uint32_t before = __atomic_load_n(tx_.consumer, __ATOMIC_ACQUIRE);
      if (::sendto(xsk_fd_, nullptr, 0, MSG_DONTWAIT, nullptr, 0) < 0) {
        const int err = errno;
        if (err == EBUSY) {  // the device dropped a frame: flush() asks whether it is down
          thread_drops_.fetch_add(1, std::memory_order_relaxed);
          return EBUSY;
        }
        if (err != EAGAIN && err != ENOBUFS && err != EINTR) return err;
      }
      const uint32_t after = __atomic_load_n(tx_.consumer, __ATOMIC_ACQUIRE);
      if (after == __atomic_load_n(tx_.producer, __ATOMIC_ACQUIRE) || after == before) return 0;
    }
  }

  // What the transmit thread ran into since last asked: 0, or the error to report.
  int thread_error() {
    const int err = kicker_->take_error();
    if (err == 0) return 0;
    if (err == EBUSY) {  // a dropped frame: an error only if the device is down or gone
      const int why = failure(EBUSY);
      return why == EBUSY ? 0 : why;
    }
    return failure(err);
  }

  // Adds POLLOUT interest to the epoll set while a transmit waits for room, removes it after.
  void watch_writable(bool on) {
    if (on == watching_writable_) return;
    epoll_event ev{};
    ev.events = on ? EPOLLIN | EPOLLOUT : EPOLLIN;
    ev.data.fd = xsk_fd_;
    if (::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, xsk_fd_, &ev) == 0) watching_writable_ = on;
  }

  uint32_t queue_;
  uint32_t frame_size_;
  uint32_t rx_frames_;  // UMEM frames [0, rx_frames_) receive, the rest transmit
  uint32_t tx_frames_;
  size_t area_size_;
  uint8_t* area_ = nullptr;
  xsk_umem* umem_ = nullptr;
  xsk_socket* xsk_ = nullptr;
  int xsk_fd_ = -1;
  int epoll_fd_ = -1;
  bool zero_copy_ = false;
  bool watching_writable_ = false;
  // libxdp keeps pointers to these rings: the link lives on the heap and never moves.
  xsk_ring_prod fill_{};
  xsk_ring_cons comp_{};
  xsk_ring_cons rx_{};
  xsk_ring_prod tx_{};
  std::vector<uint64_t> free_;  // transmit frames not queued or in flight
  uint32_t queued_ = 0;         // frames submitted since the kernel last took the whole ring
  detail::link_monitor monitor_;
  std::atomic<uint64_t> thread_drops_{0};
  std::unique_ptr<detail::tx_kicker> kicker_;  // stopped first
};

}  // namespace

std::span<const std::string_view> af_xdp_option_keys() { return kKeys; }

std::unique_ptr<link> open_af_xdp(const link_options& options) {
  detail::option_reader opts("af_xdp", options, kKeys);
  xdp_config cfg;
  cfg.iface = opts.iface();
  cfg.queue = static_cast<uint32_t>(opts.number("queue", 0, 0, 1023));
  cfg.mode = opts.choice("mode", "auto", kModes);
  std::string xdp_mode = opts.choice("xdp_mode", "auto", kXdpModes);
  cfg.xdp_flags = xdp_mode == "native" ? XDP_FLAGS_DRV_MODE
                  : xdp_mode == "skb"  ? XDP_FLAGS_SKB_MODE
                                       : 0;
  cfg.frames = static_cast<uint32_t>(opts.number("frames", 4096, 64, 1u << 20));
  if (!std::has_single_bit(cfg.frames)) {
    opts.bad_value("frames", std::to_string(cfg.frames), "a power of two, e.g. 4096");
  }
  cfg.frame_size = static_cast<uint32_t>(opts.number("frame_size", 4096, 2048, 4096));
  cfg.tx_thread = opts.flag("tx_thread", detail::tx_kicker::useful_by_default());
  if (cfg.frame_size != 2048 && cfg.frame_size != 4096) {
    opts.bad_value("frame_size", std::to_string(cfg.frame_size), "2048 or 4096");
  }
  detail::interface_info info = detail::find_interface("af_xdp", cfg.iface);
  if (static_cast<size_t>(info.mtu) + 14 > cfg.frame_size) {
    detail::fail(EMSGSIZE, "af_xdp",
                 cfg.iface + "'s MTU " + std::to_string(info.mtu) + " does not fit a " +
                     std::to_string(cfg.frame_size) + "-byte UMEM frame: lower it (ip link set " +
                     cfg.iface + " mtu 1500) or use frame_size=4096");
  }
  return std::make_unique<af_xdp_link>(cfg, info);
}

}  // namespace anysock::drivers
