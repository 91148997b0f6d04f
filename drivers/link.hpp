// drivers/link.hpp: the one interface every Ethernet link driver implements (tap, pcap, af_packet,
// af_xdp), and the factory that opens one by kind and options.
//
// A link moves whole Ethernet frames (destination MAC first, no preamble or FCS) between the caller
// and an OS interface, in bursts:
// - receive(max, sink) hands up to `max` waiting frames to `sink`, each as a view into the driver's
//   own memory (the AF_PACKET block, the AF_XDP UMEM frame, libpcap's ring, the TAP read buffer),
//   valid only while `sink` runs. The caller copies what it keeps (lwIP copies into a pbuf) and the
//   slot goes straight back to the kernel: one copy at most, and no buffer sizing for the caller.
// - transmit(frames) queues a burst; each frame may be a gather list (an lwIP pbuf chain), copied
//   straight into the ring slot. Frames leave at the latest at flush(): batching drivers
//   (af_packet, af_xdp) send everything queued with one system call there, or hand it to their
//   transmit thread (tx_thread), which makes that call at once; the others send at once.
// - fd() is a descriptor to poll(2): POLLIN when frames may be waiting (spurious wake-ups are
//   possible; receive() then returns 0 frames) or the interface changed state. After a transmit or
//   flush reported EAGAIN, poll for POLLIN | POLLOUT and try again on either (af_xdp's descriptor
//   is an epoll set, which signals POLLIN for both). POLLERR/POLLHUP: call receive() to learn why.
// - The sink must not call back into the link (the ring position is mid-update).
// - A device that is deleted makes receive()/transmit()/flush() report ENODEV from the first call
//   after the OS tells (fd() wakes for it), and every call after; an administratively down one
//   makes them report ENETDOWN once a call notices (a send fails, or the OS tells), until it is up
//   again. Neither ever crashes or blocks. Nothing in a link blocks: every call returns at once.
//
// Thread safety: a link is used by one thread at a time (the lwIP engine's lock); fd() may be
// polled from any thread. A driver's transmit thread only makes the send system call and reads
// what the kernel publishes; errors it meets are reported by the next flush(). Opening throws; the
// data path returns errno values.
#pragma once

#include <sys/uio.h>

#include <array>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace anysock::drivers {

/// A received frame: a view into the driver's memory, valid only during the sink call.
using frame = std::span<const uint8_t>;

/// A 48-bit Ethernet address, in wire order.
using mac_address = std::array<uint8_t, 6>;

/// Driver options, as the spec gives them (`iface=as_u0,queue=0`): keys in order, no duplicates.
using link_options = std::vector<std::pair<std::string, std::string>>;

/// Where a call left off: how many frames it handled, and 0 or an errno for why it stopped early:
/// EAGAIN (transmit: the ring is full; poll as said above), EMSGSIZE (a frame longer than
/// max_frame()), ENETDOWN (the interface is down), ENODEV (the interface no longer exists; final),
/// or another errno from the OS. `frames` counts what was done before the error.
struct burst {
  size_t frames = 0;
  int error = 0;
};

class frame_sink;

/// What frame_sink accepts: anything callable with a frame (other than a frame_sink itself).
template <class F>
concept frame_consumer =
    std::invocable<F&, frame> && !std::same_as<std::remove_cvref_t<F>, frame_sink>;

/// A non-owning reference to the callable that receive() hands frames to (like std::function_ref):
/// no allocation, one indirect call per frame. The callable must not throw.
class frame_sink {
 public:
  template <frame_consumer F>
  frame_sink(F&& f) noexcept  // NOLINT(google-explicit-constructor): lambdas convert implicitly
      : object_(const_cast<void*>(static_cast<const void*>(std::addressof(f)))),
        call_([](void* object, frame fr) {
          (*static_cast<std::remove_reference_t<F>*>(object))(fr);
        }) {}

  void operator()(frame fr) const noexcept { call_(object_, fr); }

 private:
  void* object_;
  void (*call_)(void*, frame);
};

/// An outgoing frame: one contiguous buffer, or a gather list of pieces (e.g. an lwIP pbuf chain)
/// that the driver copies straight into its ring slot. Refers to the caller's memory, which must
/// stay valid until transmit() returns (drivers copy or send before returning).
class tx_frame {
 public:
  tx_frame(frame bytes) noexcept  // NOLINT(google-explicit-constructor)
      : one_{const_cast<uint8_t*>(bytes.data()), bytes.size()}, size_(bytes.size()) {}
  tx_frame(const void* data, size_t len) noexcept
      : tx_frame(frame(static_cast<const uint8_t*>(data), len)) {}
  /// `pieces` (the iovec array itself) must outlive the tx_frame.
  explicit tx_frame(std::span<const iovec> pieces) noexcept;

  /// The pieces in order (one for a contiguous frame).
  std::span<const iovec> pieces() const noexcept {
    return many_ != nullptr ? std::span<const iovec>(many_, count_)
                            : std::span<const iovec>(&one_, 1);
  }
  /// Total length in bytes.
  size_t size() const noexcept { return size_; }
  /// Copies all size() bytes to `out`.
  void copy_to(uint8_t* out) const noexcept;

 private:
  iovec one_{};
  const iovec* many_ = nullptr;
  size_t count_ = 1;
  size_t size_ = 0;
};

/// The interface's administrative and carrier state, read from the OS when asked.
enum class link_state {
  up,    // IFF_UP and IFF_RUNNING (carrier): frames can flow
  down,  // exists, but administratively down or without carrier
  gone,  // deleted: the link is dead for good (receive/transmit report ENODEV)
};

/// Frame counters since the link opened (totals, never reset).
struct link_stats {
  uint64_t rx_frames = 0;  // frames handed to receive sinks
  uint64_t rx_bytes = 0;
  uint64_t tx_frames = 0;  // frames accepted by transmit()
  uint64_t tx_bytes = 0;
  uint64_t rx_dropped = 0;  // frames lost on the way in: OS ring overruns (where the OS reports
                            // them) and truncated frames the driver discarded
  uint64_t tx_dropped = 0;  // accepted frames the OS refused afterwards (where it reports them)
};

/// One Ethernet link driver, opened on one OS interface. See the top of this file.
class link {
 public:
  virtual ~link() = default;
  link(const link&) = delete;
  link& operator=(const link&) = delete;

  /// The driver kind ("tap", "pcap", "af_packet", "af_xdp").
  virtual std::string_view kind() const noexcept = 0;
  /// A one-line description for logs, e.g. "af_xdp on as_u0 queue 0 (copy mode)".
  virtual std::string description() const { return std::string(kind()) + " on " + iface_; }
  /// The OS interface's name and index (as they were when the link opened).
  const std::string& iface() const noexcept { return iface_; }
  int ifindex() const noexcept { return ifindex_; }
  /// The interface's MTU in bytes (IP packet size, read when the link opened).
  int mtu() const noexcept { return mtu_; }
  /// The longest frame transmit() takes and receive() delivers: mtu() + 14 (the Ethernet header).
  size_t max_frame() const noexcept { return static_cast<size_t>(mtu_) + 14; }
  /// The interface's own MAC address (the kernel's, for a TAP device; a stack on the link should
  /// use one of its own).
  const mac_address& mac() const noexcept { return mac_; }
  /// The interface's state now (one ioctl).
  link_state state() const;

  /// The descriptor to poll(2): POLLIN when frames may be waiting; after EAGAIN, POLLIN or POLLOUT
  /// means try again (see the top).
  virtual int fd() const noexcept = 0;

  /// Hands up to `max_frames` waiting frames to `sink`, in arrival order; never blocks.
  /// Returns {0, 0} when none is waiting.
  virtual burst receive(size_t max_frames, frame_sink sink) = 0;

  /// Queues `frames` in order for sending; never blocks. Stops at the first frame it cannot take
  /// (see burst). Accepted frames are sent by the time flush() returns, possibly sooner.
  virtual burst transmit(std::span<const tx_frame> frames) = 0;
  /// Sends every frame transmit() queued. Returns 0 or an errno (EAGAIN: the OS took only part;
  /// call again when fd() says so; ENETDOWN/ENODEV as above).
  virtual int flush() = 0;

  /// Counters since the link opened (may ask the OS for its drop counters).
  virtual link_stats stats() const { return stats_; }

 protected:
  link(std::string iface, int ifindex, int mtu, const mac_address& mac)
      : iface_(std::move(iface)), ifindex_(ifindex), mtu_(mtu), mac_(mac) {}

  /// Turns an OS failure on the data path into the error to report: ENODEV (and the link is dead
  /// from now on) when the interface is gone, ENETDOWN when it is down, else `os_error` itself.
  int failure(int os_error);
  /// Asks the OS now: ENODEV (latched, as above) when the interface is gone, ENETDOWN (latched
  /// until it is up again) when it is down, else 0.
  int check_interface();
  /// The error a data-path call must report before doing anything: ENODEV once the interface is
  /// gone; ENETDOWN while it stays down after a failure said so (rechecked on every call); else 0.
  int standing_error();

  link_stats stats_;

 private:
  std::string iface_;
  int ifindex_;
  int mtu_;
  mac_address mac_;
  bool gone_ = false;
  bool down_ = false;
};

/// Opens a link of `kind` ("tap", "pcap", "af_packet", "af_xdp") with `options` (every kind takes
/// `iface`; see drivers/README.md for the rest). Throws std::invalid_argument for an unknown kind,
/// an unknown or repeated key or a malformed value, and anysock::error for what the OS refuses
/// (ENODEV: no such interface; EPERM: missing privileges; ...), each message saying how to fix it.
std::unique_ptr<link> open_link(std::string_view kind, const link_options& options);

/// The option keys `kind` accepts (so a stack can tell its own keys from the driver's); empty for
/// an unknown kind.
std::span<const std::string_view> link_option_keys(std::string_view kind);

/// The kinds open_link() knows, in a fixed order.
std::span<const std::string_view> link_kinds();

}  // namespace anysock::drivers
