#include "af_packet_link.hpp"

#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <bit>
#include <cerrno>
#include <cstring>
#include <memory>
#include <thread>

#include "../link_support.hpp"
#include "../tx_kicker.hpp"

namespace anysock::drivers {
namespace {

constexpr std::array<std::string_view, 10> kKeys{
    "iface",     "promisc",      "blocks",  "block_size", "timeout_ms",
    "tx_frames", "qdisc_bypass", "version", "tx_thread",  "vnet_hdr"};

// The legacy virtio-net header PACKET_VNET_HDR puts before each frame (<linux/virtio_net.h>, whose
// other declarations use C++ keywords as member names). Fields in native byte order.
struct virtio_net_hdr {
  uint8_t flags;     // 0: no checksum offload asked for
  uint8_t gso_type;  // 0 (VIRTIO_NET_HDR_GSO_NONE): no segmentation offload
  uint16_t hdr_len;  // bytes the kernel copies into the skb's linear part
  uint16_t gso_size;
  uint16_t csum_start;
  uint16_t csum_offset;
};
static_assert(sizeof(virtio_net_hdr) == 10);

// Where frame data starts in a transmit slot (the kernel's rule without PACKET_TX_HAS_OFF).
constexpr size_t kTxDataOffsetV3 = TPACKET_ALIGN(sizeof(tpacket3_hdr));
constexpr size_t kTxDataOffsetV2 = TPACKET_ALIGN(sizeof(tpacket2_hdr));
// A TPACKET_V2 receive slot holds one frame: its header, the kernel's alignment padding and the
// frame (data starts at tp_mac, at most this far in for an Ethernet frame).
constexpr size_t kRxHeadroomV2 = TPACKET_ALIGN(TPACKET2_HDRLEN) + 16 + sizeof(virtio_net_hdr);
// Attempts flush() makes when the kernel stops early (socket buffer or device busy).
constexpr int kFlushAttempts = 4;

uint32_t load_acquire(const uint32_t& word) {
  return std::atomic_ref<const uint32_t>(word).load(std::memory_order_acquire);
}
void store_release(uint32_t& word, uint32_t value) {
  std::atomic_ref<uint32_t>(word).store(value, std::memory_order_release);
}

struct ring_layout {
  int version;  // TPACKET_V3 (blocks of packed frames) or TPACKET_V2 (a slot per frame)
  uint32_t rx_block_size;
  uint32_t rx_blocks;
  uint32_t rx_timeout_ms;
  uint32_t rx_frame_size;  // TPACKET_V2: the receive slot size
  uint32_t rx_frames;      // TPACKET_V2: how many receive slots
  uint32_t tx_frame_size;
  uint32_t tx_frames;
  uint32_t tx_block_size;
  bool tx_thread;  // sendto() on a thread of the link's own (detail::tx_kicker)
  // PACKET_VNET_HDR: each transmit slot starts with a virtio_net_hdr, through which the driver
  // asks the kernel to copy the whole frame into the skb's linear part (see transmit()).
  bool vnet;
  size_t rx_bytes() const { return size_t{rx_block_size} * rx_blocks; }
  size_t tx_bytes() const { return size_t{tx_frame_size} * tx_frames; }
};

class af_packet_link final : public link {
 public:
  af_packet_link(int fd, uint8_t* map, const ring_layout& layout,
                 const detail::interface_info& info)
      : link(info.name, info.ifindex, info.mtu, info.mac), fd_(fd), map_(map), layout_(layout) {
    if (layout_.tx_thread) {
      kicker_ = std::make_unique<detail::tx_kicker>([this] { return kick_from_thread(); },
                                                    "as-tx-" + info.name);
    }
  }

  ~af_packet_link() override {
    kicker_.reset();  // before the socket and the rings go
    ::munmap(map_, layout_.rx_bytes() + layout_.tx_bytes());
    ::close(fd_);
  }

  std::string_view kind() const noexcept override { return "af_packet"; }
  int fd() const noexcept override { return fd_; }

  burst receive(size_t max_frames, frame_sink sink) override {
    burst b;
    if ((b.error = standing_error()) != 0) return b;
    if (layout_.version == TPACKET_V2) {
      receive_v2(max_frames, sink, b);
    } else {
      receive_v3(max_frames, sink, b);
    }
    // An empty ring is when a dead or downed interface shows: the kernel leaves its error on the
    // socket (and wakes pollers with POLLERR).
    if (b.frames == 0) {
      if (int err = detail::socket_error(fd_)) {
        // ENETDOWN while the interface is up again is stale news: it is up, carry on.
        int now = check_interface();
        b.error = now != 0 ? now : err == ENETDOWN ? 0 : err;
      }
    }
    return b;
  }

  void receive_v3(size_t max_frames, frame_sink& sink, burst& b) {
    while (b.frames < max_frames) {
      if (left_in_block_ == 0 && !open_next_block()) break;
      while (left_in_block_ > 0 && b.frames < max_frames) {
        const auto* h = reinterpret_cast<const tpacket3_hdr*>(next_packet_);
        const uint8_t* data = next_packet_ + h->tp_mac;
        next_packet_ += h->tp_next_offset;
        --left_in_block_;
        if (h->tp_snaplen < h->tp_len) {  // cut short by the block: useless to a stack
          ++stats_.rx_dropped;
          continue;
        }
        sink(frame(data, h->tp_snaplen));
        ++b.frames;
        ++stats_.rx_frames;
        stats_.rx_bytes += h->tp_snaplen;
      }
      if (left_in_block_ == 0) release_block();
    }
  }

  // TPACKET_V2: every slot is handed over on its own (and wakes a poller at once), so a lone frame
  // waits for no block to fill or time out.
  void receive_v2(size_t max_frames, frame_sink& sink, burst& b) {
    while (b.frames < max_frames) {
      auto* h = reinterpret_cast<tpacket2_hdr*>(map_ + size_t{rx_slot_} * layout_.rx_frame_size);
      if ((load_acquire(h->tp_status) & TP_STATUS_USER) == 0) break;
      if (h->tp_snaplen < h->tp_len) {  // cut short by the slot: useless to a stack
        ++stats_.rx_dropped;
      } else {
        sink(frame(reinterpret_cast<const uint8_t*>(h) + h->tp_mac, h->tp_snaplen));
        ++b.frames;
        ++stats_.rx_frames;
        stats_.rx_bytes += h->tp_snaplen;
      }
      store_release(h->tp_status, TP_STATUS_KERNEL);
      rx_slot_ = (rx_slot_ + 1) % layout_.rx_frames;
    }
  }

  burst transmit(std::span<const tx_frame> frames) override {
    burst b;
    if ((b.error = standing_error()) != 0) return b;
    for (const tx_frame& f : frames) {
      if (f.size() > max_frame()) {
        b.error = EMSGSIZE;
        break;
      }
      uint8_t* slot = tx_slot(tx_next_);
      if (!slot_free(slot)) {
        // The ring is full of frames not yet sent or not yet released by the device. With a
        // transmit thread, that thread sends them: ask it once more (in case a kick stopped
        // early) and wait for room (POLLOUT) rather than contend for the ring's lock. Without
        // one, send what is queued and take the slot if that freed it.
        if (kicker_ != nullptr) {
          tx_queued_ = 0;
          kicker_->request();
          b.error = EAGAIN;
          break;
        }
        if (int err = kick(); err != 0 && err != EAGAIN) {
          b.error = err;
          break;
        }
        if (!slot_free(slot)) {
          b.error = EAGAIN;
          break;
        }
      }
      uint8_t* at = slot + tx_data_offset();
      size_t len = f.size();
      if (layout_.vnet) {
        // Without it the kernel copies only the Ethernet header and maps the rest of the slot as
        // page fragments; whoever receives the frame locally (a veth peer, a bridge) then copies
        // those pages out again (skb_copy_ubufs) and pulls the IP and TCP headers out of them
        // frame by frame. hdr_len = the whole frame: one linear copy, as a send() makes. No
        // checksum or segmentation offload is asked for (flags 0, GSO_NONE). Native byte order:
        // the legacy virtio header's.
        virtio_net_hdr vh{};
        vh.hdr_len = static_cast<uint16_t>(len);
        std::memcpy(at, &vh, sizeof vh);
        at += sizeof vh;
        len += sizeof vh;
      }
      f.copy_to(at);
      if (layout_.version == TPACKET_V2) {
        reinterpret_cast<tpacket2_hdr*>(slot)->tp_len = static_cast<uint32_t>(len);
      } else {
        auto* h = reinterpret_cast<tpacket3_hdr*>(slot);
        h->tp_len = static_cast<uint32_t>(len);
        h->tp_next_offset = 0;
      }
      store_release(tx_status(slot), TP_STATUS_SEND_REQUEST);
      tx_next_ = (tx_next_ + 1) & (layout_.tx_frames - 1);
      if (kicker_ != nullptr) {
        kicker_->frame_queued(tx_queued_);
      } else {
        ++tx_queued_;
      }
      ++b.frames;
      ++stats_.tx_frames;
      stats_.tx_bytes += f.size();
    }
    return b;
  }

  int flush() override {
    if (int err = standing_error()) return err;
    if (kicker_ != nullptr) {
      if (int err = kicker_->take_error()) {
        // A stale "went down" from before the interface came up again sent nothing: go again.
        if (err != ENETDOWN || check_interface() != 0) return failure(err);
        tx_queued_ = std::max(tx_queued_, 1u);
      }
      if (kicker_->take_flush(tx_queued_)) return 0;
    }
    return kick();
  }

  link_stats stats() const override {
    tpacket_stats_v3 st{};
    socklen_t len = sizeof st;
    if (::getsockopt(fd_, SOL_PACKET, PACKET_STATISTICS, &st, &len) == 0) {
      kernel_drops_ += st.tp_drops;  // reading resets the kernel's counters
    }
    link_stats s = stats_;
    s.rx_dropped += kernel_drops_;
    s.tx_dropped += thread_drops_.load(std::memory_order_relaxed);
    return s;
  }

 private:
  tpacket_block_desc* rx_block(uint32_t i) const {
    return reinterpret_cast<tpacket_block_desc*>(map_ + size_t{i} * layout_.rx_block_size);
  }
  uint8_t* tx_slot(uint32_t i) const {
    return map_ + layout_.rx_bytes() + size_t{i} * layout_.tx_frame_size;
  }
  // The slot header's status word and where the frame goes: the same meaning, other places.
  uint32_t& tx_status(uint8_t* slot) const {
    return layout_.version == TPACKET_V2 ? reinterpret_cast<tpacket2_hdr*>(slot)->tp_status
                                         : reinterpret_cast<tpacket3_hdr*>(slot)->tp_status;
  }
  size_t tx_data_offset() const {
    return layout_.version == TPACKET_V2 ? kTxDataOffsetV2 : kTxDataOffsetV3;
  }

  // Starts reading the next block if the kernel has handed it over. A block is open while
  // left_in_block_ > 0; receive() releases it when that reaches 0.
  bool open_next_block() {
    tpacket_block_desc* bd = rx_block(rx_block_);
    if ((load_acquire(bd->hdr.bh1.block_status) & TP_STATUS_USER) == 0) return false;
    // An empty block (num_pkts 0) is released by the caller like a fully read one.
    left_in_block_ = bd->hdr.bh1.num_pkts;
    next_packet_ = reinterpret_cast<const uint8_t*>(bd) + bd->hdr.bh1.offset_to_first_pkt;
    return true;
  }

  void release_block() {
    store_release(rx_block(rx_block_)->hdr.bh1.block_status, TP_STATUS_KERNEL);
    rx_block_ = (rx_block_ + 1) % layout_.rx_blocks;
  }

  // A slot is ours when the kernel has sent its frame and freed it (a malformed frame it skipped
  // under PACKET_LOSS comes back available too).
  bool slot_free(uint8_t* slot) const {
    uint32_t status = load_acquire(tx_status(slot));
    return status == TP_STATUS_AVAILABLE || status == TP_STATUS_WRONG_FORMAT;
  }

  // One sendto() hands every queued slot to the kernel, which sends them in order without
  // blocking. It stops early when the socket's send buffer is full or the device drops a frame:
  // then try again a few times, and report EAGAIN if frames are still left.
  int kick() {
    if (tx_queued_ == 0) return 0;
    uint8_t* last = tx_slot((tx_next_ + layout_.tx_frames - 1) & (layout_.tx_frames - 1));
    for (int attempt = 0; attempt < kFlushAttempts; ++attempt) {
      ssize_t r = ::sendto(fd_, nullptr, 0, MSG_DONTWAIT, nullptr, 0);
      if (r < 0) {
        int err = errno;
        if (err == ENOBUFS) {
          ++stats_.tx_dropped;  // the device dropped one frame; the rest are still queued
        } else if (err == ENETDOWN && check_interface() == 0) {
          // A stale "went down" left on the socket from before the interface came up again: the
          // send collected it and sent nothing. Go again.
        } else if (err != EINTR && err != EAGAIN) {
          return failure(err);
        }
      }
      if (load_acquire(tx_status(last)) != TP_STATUS_SEND_REQUEST) {
        tx_queued_ = 0;
        return 0;
      }
    }
    return EAGAIN;
  }

  // The transmit thread's round: one sendto() sends every slot marked for sending (the kernel walks
  // the ring up to the first slot that is not). It stops early when the device drops a frame
  // (ENOBUFS) or the send buffer is full (EAGAIN, until sent frames are freed): go again a few
  // times, yielding to whoever frees them. Touches nothing but the socket. Frames still left are
  // sent at the next request (every transmit() into a full ring makes one).
  int kick_from_thread() {
    for (int attempt = 0; attempt < 4 * kFlushAttempts; ++attempt) {
      if (::sendto(fd_, nullptr, 0, MSG_DONTWAIT, nullptr, 0) >= 0) return 0;
      const int err = errno;
      if (err == ENOBUFS) {
        thread_drops_.fetch_add(1, std::memory_order_relaxed);
      } else if (err == EAGAIN) {
        std::this_thread::yield();
      } else if (err != EINTR) {
        return err;  // ENETDOWN, ENXIO, ...: the next flush() reports it
      }
    }
    return 0;
  }

  int fd_;
  uint8_t* map_;
  ring_layout layout_;
  // Receive position: the block being read, the next packet in it and how many are left.
  uint32_t rx_block_ = 0;
  uint32_t rx_slot_ = 0;  // TPACKET_V2
  uint32_t left_in_block_ = 0;
  const uint8_t* next_packet_ = nullptr;
  // Transmit position: the next slot to fill, and whether slots were queued since the last kick.
  uint32_t tx_next_ = 0;
  uint32_t tx_queued_ = 0;
  mutable uint64_t kernel_drops_ = 0;
  std::atomic<uint64_t> thread_drops_{0};
  std::unique_ptr<detail::tx_kicker> kicker_;  // last: stopped first
};

// Closes the socket on every early exit of open_af_packet().
struct socket_guard {
  int fd;
  ~socket_guard() {
    if (fd >= 0) ::close(fd);
  }
};

void set_option(int fd, int level, int name, int value, const char* what,
                const std::string& iface) {
  if (::setsockopt(fd, level, name, &value, sizeof value) != 0) {
    detail::fail(errno, "af_packet",
                 std::string("cannot set ") + what + " on " + iface +
                     "'s socket (needs Linux 4.20 or later)");
  }
}

// Reads the ring options (before the interface is looked up, so a bad value is reported as such).
ring_layout read_ring_options(const detail::option_reader& opts) {
  ring_layout l{};
  size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  const std::string_view versions[] = {"2", "3"};
  l.version = opts.choice("version", "3", versions) == "2" ? TPACKET_V2 : TPACKET_V3;
  l.rx_blocks = static_cast<uint32_t>(opts.number("blocks", 64, 2, 4096));
  l.rx_block_size = static_cast<uint32_t>(opts.number("block_size", 128u << 10, page, 1u << 30));
  if (!std::has_single_bit(l.rx_block_size)) {
    opts.bad_value("block_size", std::to_string(l.rx_block_size), "a power of two, e.g. 131072");
  }
  l.rx_timeout_ms = static_cast<uint32_t>(opts.number("timeout_ms", 1, 1, 1000));
  l.tx_frames = static_cast<uint32_t>(opts.number("tx_frames", 2048, 8, 1u << 16));
  l.tx_thread = opts.flag("tx_thread", detail::tx_kicker::useful_by_default());
  l.vnet = opts.flag("vnet_hdr", true);
  if (!std::has_single_bit(l.tx_frames)) {
    opts.bad_value("tx_frames", std::to_string(l.tx_frames), "a power of two, e.g. 512");
  }
  return l;
}

// Sizes the slots for the interface's MTU: the largest frame (plus a VLAN tag) must fit a transmit
// slot after its header, and one receive block after the block and packet headers.
void size_slots(ring_layout& l, const detail::option_reader& opts, int mtu) {
  size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  const size_t frame_room = (l.version == TPACKET_V2 ? kTxDataOffsetV2 : kTxDataOffsetV3) +
                            sizeof(virtio_net_hdr) + static_cast<size_t>(mtu) + 14 + 4;
  if (frame_room + 128 > l.rx_block_size) {
    opts.bad_value("block_size", std::to_string(l.rx_block_size),
                   "a block larger than one frame of this interface (MTU " + std::to_string(mtu) +
                       "): " + std::to_string(std::bit_ceil(frame_room + 128)) + " or more");
  }
  l.tx_frame_size = static_cast<uint32_t>(std::bit_ceil(std::max<size_t>(frame_room, 2048)));
  if (l.version == TPACKET_V2) {
    // Slots of the same size as the transmit ring's, as many as fit the blocks.
    l.rx_frame_size = static_cast<uint32_t>(
        std::bit_ceil(std::max<size_t>(kRxHeadroomV2 + static_cast<size_t>(mtu) + 14 + 4, 2048)));
    l.rx_frames = static_cast<uint32_t>(l.rx_bytes() / l.rx_frame_size);
  }
  l.tx_block_size = static_cast<uint32_t>(std::max<size_t>(l.tx_frame_size, page));
  if (size_t{l.tx_frames} * l.tx_frame_size < l.tx_block_size) {
    l.tx_frames = l.tx_block_size / l.tx_frame_size;
  }
}

void setup_rings(int fd, const ring_layout& l, const std::string& iface) {
  tpacket_req3 rx{};  // TPACKET_V2 reads the leading tpacket_req part
  rx.tp_block_size = l.rx_block_size;
  rx.tp_block_nr = l.rx_blocks;
  if (l.version == TPACKET_V2) {
    rx.tp_frame_size = l.rx_frame_size;
    rx.tp_frame_nr = l.rx_frames;
  } else {
    rx.tp_frame_size = 2048;  // V3 packs frames of any size; the kernel only checks the arithmetic
    rx.tp_frame_nr = l.rx_block_size / rx.tp_frame_size * l.rx_blocks;
    rx.tp_retire_blk_tov = l.rx_timeout_ms;
  }
  if (::setsockopt(fd, SOL_PACKET, PACKET_RX_RING, &rx, sizeof rx) != 0) {
    detail::fail(errno, "af_packet",
                 "cannot set up a receive ring of " + std::to_string(l.rx_blocks) + " x " +
                     std::to_string(l.rx_block_size) + " bytes on " + iface +
                     " (try fewer or smaller blocks: blocks=, block_size=)");
  }
  tpacket_req3 tx{};
  tx.tp_block_size = l.tx_block_size;
  tx.tp_frame_size = l.tx_frame_size;
  tx.tp_frame_nr = l.tx_frames;
  tx.tp_block_nr = static_cast<uint32_t>(size_t{l.tx_frames} * l.tx_frame_size / l.tx_block_size);
  if (::setsockopt(fd, SOL_PACKET, PACKET_TX_RING, &tx, sizeof tx) != 0) {
    detail::fail(errno, "af_packet",
                 "cannot set up a transmit ring of " + std::to_string(l.tx_frames) + " x " +
                     std::to_string(l.tx_frame_size) + " bytes on " + iface + " (try tx_frames=)");
  }
}

}  // namespace

std::span<const std::string_view> af_packet_option_keys() { return kKeys; }

std::unique_ptr<link> open_af_packet(const link_options& options) {
  detail::option_reader opts("af_packet", options, kKeys);
  std::string iface = opts.iface();
  bool promisc = opts.flag("promisc", true);
  bool bypass = opts.flag("qdisc_bypass", true);
  ring_layout layout = read_ring_options(opts);
  detail::interface_info info = detail::find_interface("af_packet", iface);
  size_slots(layout, opts, info.mtu);

  // Protocol 0: nothing is received until bind(), after the rings exist.
  socket_guard s{::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)};
  if (s.fd < 0) {
    int err = errno;
    if (err == EPERM || err == EACCES) {
      detail::fail(EPERM, "af_packet",
                   "opening a packet socket " + detail::privilege_hint("CAP_NET_RAW"));
    }
    detail::fail(err, "af_packet", "cannot open a packet socket");
  }
  set_option(s.fd, SOL_PACKET, PACKET_VERSION, layout.version,
             layout.version == TPACKET_V2 ? "TPACKET_V2" : "TPACKET_V3", iface);
  set_option(s.fd, SOL_PACKET, PACKET_LOSS, 1, "PACKET_LOSS", iface);
  if (layout.vnet) {  // before the rings; a kernel without it sends as before
    const int on = 1;
    layout.vnet = ::setsockopt(s.fd, SOL_PACKET, PACKET_VNET_HDR, &on, sizeof on) == 0;
  }
  set_option(s.fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, 1, "PACKET_IGNORE_OUTGOING", iface);
  if (bypass) set_option(s.fd, SOL_PACKET, PACKET_QDISC_BYPASS, 1, "PACKET_QDISC_BYPASS", iface);
  // Room in the send buffer for a whole transmit ring, so one sendto() can send all of it.
  int sndbuf = static_cast<int>(std::min<size_t>(layout.tx_bytes() * 2, 64u << 20));
  if (::setsockopt(s.fd, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof sndbuf) != 0) {
    ::setsockopt(s.fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);  // best effort unprivileged
  }
  setup_rings(s.fd, layout, iface);

  size_t map_size = layout.rx_bytes() + layout.tx_bytes();
  void* map = ::mmap(nullptr, map_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, s.fd, 0);
  if (map == MAP_FAILED) detail::fail(errno, "af_packet", "cannot map the rings of " + iface);

  sockaddr_ll addr{};
  addr.sll_family = AF_PACKET;
  addr.sll_protocol = htons(ETH_P_ALL);
  addr.sll_ifindex = info.ifindex;
  if (::bind(s.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    int err = errno;
    ::munmap(map, map_size);
    if (err == ENODEV || err == ENXIO) detail::find_interface("af_packet", iface);  // says how
    detail::fail(err, "af_packet", "cannot bind a packet socket to " + iface);
  }
  if (promisc) {
    packet_mreq mreq{};
    mreq.mr_ifindex = info.ifindex;
    mreq.mr_type = PACKET_MR_PROMISC;
    if (::setsockopt(s.fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mreq, sizeof mreq) != 0) {
      int err = errno;
      ::munmap(map, map_size);
      detail::fail(err, "af_packet",
                   "cannot put " + iface + " in promiscuous mode (promisc=0 to skip)");
    }
  }
  try {
    auto l = std::make_unique<af_packet_link>(s.fd, static_cast<uint8_t*>(map), layout, info);
    s.fd = -1;  // the link owns it now
    return l;
  } catch (...) {
    ::munmap(map, map_size);
    throw;
  }
}

}  // namespace anysock::drivers
